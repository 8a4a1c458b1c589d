"""Real TCP and UDP listeners for one lab target namespace (standard library only).

The lab runs this file with ``ip netns exec <target-ns> python _listener.py ...``. One
process serves every listening port of the namespace, on the wildcard address, so a
namespace that owns many addresses answers on all of them:

- ``--tcp PORT[=HEXBANNER]``: accept, send the banner (default ``pyscan-lab tcp PORT``),
  then close after the peer closes or half a second passes.
- ``--udp PORT[=HEXREPLY]``: answer every datagram, empty ones included, with the reply.
- ``--udp-silent PORT``: bound UDP socket that never answers (open, but nmap sees
  open|filtered).

It prints ``ready`` once every socket is bound and runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import selectors
import signal
import socket
import sys
import time
from types import FrameType


def _port_arg(text: str) -> tuple[int, bytes | None]:
    port, sep, data = text.partition("=")
    return int(port), (bytes.fromhex(data) if sep else None)


def _bind(family: socket.AddressFamily, kind: socket.SocketKind, port: int) -> socket.socket:
    s = socket.socket(family, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("::", port))
    else:
        s.bind(("0.0.0.0", port))  # noqa: S104 - a lab namespace: all of its addresses
    if kind == socket.SOCK_STREAM:
        s.listen(1024)
    s.setblocking(False)
    return s


def serve(
    tcp: list[tuple[int, bytes | None]],
    udp: list[tuple[int, bytes | None]],
    udp_silent: list[int],
    ipv6: bool = False,
) -> None:
    """Serve until a SIGTERM or SIGINT."""
    sel = selectors.DefaultSelector()
    families = [socket.AF_INET, socket.AF_INET6] if ipv6 else [socket.AF_INET]
    for family in families:
        for port, banner in tcp:
            data = banner if banner is not None else f"pyscan-lab tcp {port}\r\n".encode()
            s = _bind(family, socket.SOCK_STREAM, port)
            sel.register(s, selectors.EVENT_READ, ("accept", data))
        for port, reply in udp:
            data = reply if reply is not None else f"pyscan-lab udp {port}\n".encode()
            s = _bind(family, socket.SOCK_DGRAM, port)
            sel.register(s, selectors.EVENT_READ, ("udp", data))
        for port in udp_silent:
            s = _bind(family, socket.SOCK_DGRAM, port)
            sel.register(s, selectors.EVENT_READ, ("drain", b""))

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    conns: dict[socket.socket, float] = {}
    while True:
        for key, _ in sel.select(0.25):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            kind, data = key.data
            try:
                if kind == "accept":
                    conn, _ = sock.accept()
                    conn.setblocking(False)
                    try:
                        conn.send(data)
                    except OSError:
                        conn.close()
                        continue
                    conns[conn] = time.monotonic() + 0.5
                    sel.register(conn, selectors.EVENT_READ, ("conn", b""))
                elif kind == "conn":
                    if not sock.recv(4096):
                        raise ConnectionResetError
                elif kind == "udp":
                    _, peer = sock.recvfrom(65535)
                    sock.sendto(data, peer)
                else:
                    sock.recvfrom(65535)
            except BlockingIOError:
                pass
            except OSError:
                if kind == "conn":
                    sel.unregister(sock)
                    conns.pop(sock, None)
                    sock.close()
        now = time.monotonic()
        for conn in [c for c, due in conns.items() if due <= now]:
            sel.unregister(conn)
            del conns[conn]
            conn.close()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--tcp", action="append", type=_port_arg, default=[])
    parser.add_argument("--udp", action="append", type=_port_arg, default=[])
    parser.add_argument("--udp-silent", action="append", type=int, default=[])
    parser.add_argument("--ipv6", action="store_true", help="also listen on IPv6")
    parser.add_argument("--tag", default="", help="ignored; marks the process as a lab's")
    args = parser.parse_args(argv)
    serve(args.tcp, args.udp, args.udp_silent, args.ipv6)
    return 0


if __name__ == "__main__":
    sys.exit(main())
