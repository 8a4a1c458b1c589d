"""UDP probe payloads for well-known ports, so real services answer a UDP scan.

Our own encodings of each protocol's simplest request (from the RFCs named below); a port
without an entry gets an empty datagram, as nmap sends.
"""

from __future__ import annotations

import struct

__all__ = ["UDP_PAYLOADS", "udp_payload"]


def _ber(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def _oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    out = bytearray([parts[0] * 40 + parts[1]])
    for value in parts[2:]:
        chunk = [value & 0x7F]
        value >>= 7
        while value:
            chunk.append(0x80 | (value & 0x7F))
            value >>= 7
        out.extend(reversed(chunk))
    return _ber(0x06, bytes(out))


def _snmp_get(community: bytes, oid: str, request_id: int) -> bytes:
    """SNMPv1 GetRequest (RFC 1157) for one OID."""
    varbind = _ber(0x30, _oid(oid) + b"\x05\x00")
    pdu = _ber(
        0xA0,
        _ber(0x02, request_id.to_bytes(2, "big"))
        + b"\x02\x01\x00\x02\x01\x00"  # error-status 0, error-index 0
        + _ber(0x30, varbind),
    )
    return _ber(0x30, b"\x02\x01\x00" + _ber(0x04, community) + pdu)


def _dns_query(name: str, qtype: int, qclass: int, ident: int = 0x7073) -> bytes:
    """A DNS query (RFC 1035) with recursion desired."""
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    return (
        struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
        + qname
        + struct.pack("!HH", qtype, qclass)
    )


def _netbios_nbstat() -> bytes:
    """NetBIOS name service node status request for "*" (RFC 1002 4.2.17)."""
    raw = b"*" + b"\0" * 15
    encoded = bytes(c for b in raw for c in (0x41 + (b >> 4), 0x41 + (b & 0x0F)))
    return struct.pack("!HHHHHH", 0x7073, 0, 1, 0, 0, 0) + b"\x20" + encoded + b"\0\x00\x21\x00\x01"


_NTP_CLIENT = bytes([0xE3, 0, 6, 0xEC]) + bytes(44)  # LI=3 VN=4 mode=3 client, RFC 5905

UDP_PAYLOADS: dict[int, bytes] = {
    53: _dns_query("version.bind", 16, 3),  # TXT CH version.bind
    5353: _dns_query("_services._dns-sd._udp.local", 12, 1, ident=0),  # mDNS PTR
    123: _NTP_CLIENT,
    137: _netbios_nbstat(),
    161: _snmp_get(b"public", "1.3.6.1.2.1.1.1.0", 0x7073),  # sysDescr.0
    1900: (
        b'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\n'
        b"MX: 1\r\nST: ssdp:all\r\n\r\n"
    ),
    11211: b"\x00\x01\x00\x00\x00\x01\x00\x00version\r\n",  # memcached UDP frame + "version"
}


def udp_payload(port: int) -> bytes:
    """The probe payload for ``port`` (empty when we know no protocol for it)."""
    return UDP_PAYLOADS.get(port, b"")
