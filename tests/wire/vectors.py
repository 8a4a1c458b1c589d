"""Known-good packets shared by the parse and build tests.

Where they come from (none was produced by pyscan's own checksum code):

- ``NMAP_SYN_22``, ``NMAP_SYN_9``, ``NMAP_UDP_9``: probes nmap 7.93 sent for
  ``nmap -sS -Pn -n -p 9,22 127.0.0.1`` and ``nmap -sU -Pn -n -p 9 127.0.0.1`` (as root, Debian
  12), captured on ``lo`` with tcpdump 4.99, which reported every checksum "correct" /
  "sum ok". nmap computes its checksums in user space, so these are an independent oracle.
- ``KERNEL_RST_22``, ``KERNEL_PORT_UNREACH``, ``KERNEL_ECHO_REPLY``,
  ``KERNEL_TIMESTAMP_REPLY``: the Linux 6.x kernel's answers to those probes and to an ICMP
  echo (data ``b"pyscan-vector"``, id 0x1234, seq 1) and a timestamp request (originate
  0x01020304); the kernel computes these checksums in software (tcpdump: correct).
- ``KERNEL_SYN_OPTIONS``: a SYN the kernel sent for ``connect()`` on loopback. Its TCP
  checksum is NOT valid (checksum offload on ``lo`` leaves only the pseudo-header sum,
  0xfe30); it is here for its option list (MSS, SACK permitted, timestamps, NOP, window
  scale) and its IP checksum, which the kernel did finish.
- ``WIKIPEDIA_IPV4_HEADER``: the worked example of Wikipedia's "Internet checksum" article
  (``c0a8 0001 -> c0a8 00c7``, checksum 0xb861), a header without its 95 payload bytes.
- ``IPV6_UDP``: 2001:db8::1.5353 -> 2001:db8::2.53, payload ``b"pyscan"``; checksum 0x49f4
  worked out by hand (sum written out below) and confirmed by tcpdump 4.99 ``-vv``
  reading it from a pcap file ("udp sum ok"; the same packet with one payload bit flipped
  gave "bad udp cksum").
"""

from __future__ import annotations

NMAP_SYN_22 = bytes.fromhex(
    "4500002c381900002f0655b17f0000017f000001c35800163662d7730000000060020400c4df0000020405b4"
)
NMAP_SYN_9 = bytes.fromhex(
    "4500002c67d700002a062af37f0000017f000001c35800093662d7730000000060020400c4ec0000020405b4"
)
KERNEL_RST_22 = bytes.fromhex(
    "450000280000400040063cce7f0000017f0000010016c358000000003662d77450140000e0880000"
)
KERNEL_SYN_OPTIONS = bytes.fromhex(
    "4500003c1e2e400040061e8c7f0000017f000001"
    "98fa01bb42d1338b00000000a002ffd7fe300000"
    "0204ffd70402080a92773890000000000103030a"
)
NMAP_UDP_9 = bytes.fromhex("4500001c62b000003711231f7f0000017f000001ea7f000900081753")
KERNEL_PORT_UNREACH = bytes.fromhex(
    "45c000382a6e0000400151957f0000017f000001"
    "0303fb1800000000"
    "4500001c62b000003711231f7f0000017f000001ea7f000900081753"
)
KERNEL_ECHO_REPLY = bytes.fromhex(
    "450000292fce000040014d047f0000017f00000100002f361234000170797363616e2d766563746f72"
)
KERNEL_TIMESTAMP_REPLY = bytes.fromhex(
    "450000282fd0000040014d037f0000017f0000010e007eae123400010102030404612a2a04612a2a"
)
WIKIPEDIA_IPV4_HEADER = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
WIKIPEDIA_IPV4_CHECKSUM = 0xB861

# Worked by hand: pseudo-header 2dba (src) + 2dbb (dst) + 000e (length) + 0011 = 5b94;
# UDP 14e9 + 0035 + 000e + 7079 + 7363 + 616e = 15a76; 5b94 + 15a76 = 1b60a -> b60b;
# checksum ~b60b = 49f4.
IPV6_UDP = bytes.fromhex(
    "60000000000e1140"
    "20010db8000000000000000000000001"
    "20010db8000000000000000000000002"
    "14e90035000e49f470797363616e"
)
IPV6_UDP_CHECKSUM = 0x49F4

ALL_VALID = {
    "nmap_syn_22": NMAP_SYN_22,
    "nmap_syn_9": NMAP_SYN_9,
    "kernel_rst_22": KERNEL_RST_22,
    "kernel_syn_options": KERNEL_SYN_OPTIONS,
    "nmap_udp_9": NMAP_UDP_9,
    "kernel_port_unreach": KERNEL_PORT_UNREACH,
    "kernel_echo_reply": KERNEL_ECHO_REPLY,
    "kernel_timestamp_reply": KERNEL_TIMESTAMP_REPLY,
    "ipv6_udp": IPV6_UDP,
}
"""Complete datagrams that ``parse_packet`` must accept."""
