"""Test support for pyscan and for code that uses it.

- :mod:`pyscan.testing.netlab`: a real network in Linux network namespaces (root only), with
  real TCP/UDP listeners, iptables-made filtered and rejected ports, an absent address, a
  host ignoring ICMP echo, a delayed and lossy path, and the expected nmap port states as data.
  Used by the integration tests (``tests/lab/``) and the benchmarks.
"""
