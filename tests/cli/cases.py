"""Bad invocations of the pyscan command and their exact one-line errors (exit 2).

docs/cli.md carries the same table; ``test_errors.py`` checks both.
"""

from __future__ import annotations

#: (arguments, the exact line on stderr). Every case exits with status 2.
BAD_INVOCATIONS: list[tuple[list[str], str]] = [
    (
        ["300.1.1.1"],
        (
            "pyscan: invalid target specification '300.1.1.1' at position 0: "
            "octet 300 is larger than 255"
        ),
    ),
    (
        ["10.0.0.0/33"],
        (
            "pyscan: invalid target specification '10.0.0.0/33' at position 9: "
            "prefix /33 is too large for IPv4 (at most /32)"
        ),
    ),
    (
        ["-p", "99999", "127.0.0.1"],
        (
            "pyscan: invalid port specification '99999' at position 0: "
            "port 99999 is out of range 0-65535"
        ),
    ),
    (
        ["-p", "22,nosuchservice", "127.0.0.1"],
        (
            "pyscan: invalid port specification '22,nosuchservice' at position 3: "
            "no service matches 'nosuchservice' for tcp"
        ),
    ),
    (
        ["-sL", "-sn", "127.0.0.1"],
        "pyscan: error: -sL (list scan) cannot be combined with -sn",
    ),
    (
        ["-sL", "-p", "80", "127.0.0.1"],
        "pyscan: error: -sL (list scan) cannot be combined with -p",
    ),
    (
        ["-sn", "-p", "80", "127.0.0.1"],
        "pyscan: error: -sn (ping scan, no port scan) cannot be combined with -p",
    ),
    (
        ["-sn", "-sS", "127.0.0.1"],
        "pyscan: error: -sn (ping scan, no port scan) cannot be combined with -sS",
    ),
    (
        ["-sS", "-sT", "127.0.0.1"],
        "pyscan: error: -sS and -sT cannot be combined: choose one TCP scan type",
    ),
    (
        ["-F", "-p", "80", "127.0.0.1"],
        (
            "pyscan: invalid port specification '80': -F cannot be combined with -p; "
            "use --top-ports N with -p"
        ),
    ),
    (
        ["-Pn", "-PE", "127.0.0.1"],
        "pyscan: error: -Pn (skip discovery) cannot be combined with -PE",
    ),
    (["-n", "-R", "127.0.0.1"], "pyscan: error: -n and -R cannot be combined"),
    (
        ["-sV", "-sn", "127.0.0.1"],
        "pyscan: error: -sV cannot be combined with -sn",
    ),
    (
        ["--version-intensity", "5", "127.0.0.1"],
        "pyscan: error: --version-intensity needs -sV (version detection)",
    ),
    (
        ["-sV", "--version-intensity", "10", "127.0.0.1"],
        (
            "pyscan: error: argument --version-intensity: invalid version intensity '10': "
            "expected an integer 0..9"
        ),
    ),
    (
        ["-sV", "--version-light", "--version-all", "127.0.0.1"],
        "pyscan: error: --version-light and --version-all cannot be combined",
    ),
    (["-O", "127.0.0.1"], "pyscan: error: option -O (OS detection) is not supported yet"),
    (
        ["-sA", "127.0.0.1"],
        "pyscan: error: option -sA (TCP ACK scan) is not supported by pyscan",
    ),
    (
        ["-sX", "127.0.0.1"],
        "pyscan: error: option -sX (TCP Xmas scan) is not supported by pyscan",
    ),
    (
        ["--script=default", "127.0.0.1"],
        "pyscan: error: option --script (script scan) is not supported by pyscan",
    ),
    (
        ["-A", "127.0.0.1"],
        (
            "pyscan: error: option -A (aggressive scan (OS, version, script, traceroute)) "
            "is not supported by pyscan"
        ),
    ),
    (
        ["-PO6", "127.0.0.1"],
        "pyscan: error: option -PO (IP protocol ping) is not supported by pyscan",
    ),
    (
        ["-D", "RND:10", "127.0.0.1"],
        "pyscan: error: option -D (decoys) is not supported by pyscan",
    ),
    (
        ["--privileged", "127.0.0.1"],
        "pyscan: error: option --privileged (privilege overrides) is not supported by pyscan",
    ),
    (
        ["-oS", "x", "127.0.0.1"],
        "pyscan: error: option -oS (script kiddie output) is not supported by pyscan",
    ),
    (["--bogus", "127.0.0.1"], "pyscan: error: unrecognized option '--bogus'"),
    (["-x", "127.0.0.1"], "pyscan: error: unrecognized option '-x'"),
    (
        ["-iL", "/nonexistent/targets.txt"],
        (
            "pyscan: invalid target specification '/nonexistent/targets.txt': "
            "cannot read the file: No such file or directory"
        ),
    ),
    (
        ["-oN", "/nonexistent/dir/x", "127.0.0.1"],
        (
            "pyscan: error: cannot write -oN output file '/nonexistent/dir/x': "
            "No such file or directory"
        ),
    ),
    (
        ["--host-timeout", "5x", "127.0.0.1"],
        (
            "pyscan: error: argument --host-timeout: invalid time '5x': expected a number with "
            "an optional unit ms, s, m or h (e.g. 500ms, 2s, 1m)"
        ),
    ),
    (
        ["-T9", "127.0.0.1"],
        (
            "pyscan: error: argument -T: unknown timing template '9': expected 0-5 or one of "
            "T0/paranoid, T1/sneaky, T2/polite, T3/normal, T4/aggressive, T5/insane"
        ),
    ),
    (
        ["--top-ports", "0", "127.0.0.1"],
        (
            "pyscan: error: argument --top-ports: invalid --top-ports count '0': "
            "expected an integer 1 or greater"
        ),
    ),
    (
        ["-6", "127.0.0.1"],
        (
            "pyscan: error: IPv4 target '127.0.0.1' given with -6: scan IPv4 and IPv6 targets "
            "in separate runs"
        ),
    ),
    (["::1"], "pyscan: error: '::1' is an IPv6 target: add -6 to scan IPv6"),
    (
        ["--min-rate", "100", "--max-rate", "10", "127.0.0.1"],
        "pyscan: error: --min-rate (100) must not exceed --max-rate (10)",
    ),
    (
        ["--min-rtt-timeout", "2s", "--max-rtt-timeout", "500ms", "127.0.0.1"],
        "pyscan: error: --min-rtt-timeout (2) must not exceed --max-rtt-timeout (0.5)",
    ),
    (["-p"], "pyscan: error: argument -p: expected one argument"),
    (["-sL"], "pyscan: error: no targets given: name hosts or networks, or use -iL FILE"),
    (
        ["-oX", "-", "-oG", "-", "127.0.0.1"],
        "pyscan: error: only one output can go to standard output ('-'): -oX and -oG both do",
    ),
    (
        ["--shard", "0/2", "127.0.0.1"],
        (
            "pyscan: error: argument --shard: invalid shard '0/2': expected i/n with "
            "1 <= i <= n (e.g. 1/4)"
        ),
    ),
    (
        ["-g", "70000", "127.0.0.1"],
        (
            "pyscan: error: argument -g/--source-port: invalid port '70000': "
            "expected an integer 0..65535"
        ),
    ),
    (
        ["-S", "notanip", "127.0.0.1"],
        "pyscan: error: argument -S: invalid address 'notanip': expected an IPv4 or IPv6 address",
    ),
    (
        ["-e", "nosuch0", "-p", "1", "127.0.0.1"],
        "pyscan: error: -e: no network interface named 'nosuch0'",
    ),
    (
        ["-PS22,x", "127.0.0.1"],
        (
            "pyscan: error: -PS: invalid port specification '22,x' at position 3: "
            "no service matches 'x' for tcp"
        ),
    ),
    (
        ["--stats-every", "0", "127.0.0.1"],
        "pyscan: error: --stats-every must be greater than 0",
    ),
]

#: Invocations that need raw sockets, run with has_raw_privilege() patched to False.
UNPRIVILEGED: list[tuple[list[str], str]] = [
    (
        ["-sS", "127.0.0.1"],
        (
            "pyscan: error: -sS (SYN scan) needs raw sockets (CAP_NET_RAW): run as root or grant "
            "the capability; use -sT (connect scan), which needs no privilege"
        ),
    ),
    (
        ["-sU", "-p", "53", "127.0.0.1"],
        (
            "pyscan: error: -sU (UDP scan) needs raw sockets (CAP_NET_RAW): run as root or grant "
            "the capability; pyscan has no UDP scan that needs no privilege"
        ),
    ),
    (
        ["-sn", "-PS", "127.0.0.1"],
        (
            "pyscan: error: -PS (discovery probes) needs raw sockets (CAP_NET_RAW): run as root "
            "or grant the capability, or leave the -P options out to use the unprivileged "
            "connect() ping"
        ),
    ),
]
