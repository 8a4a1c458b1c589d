"""Sans-IO packet codecs: checksums, IPv4, IPv6, TCP, UDP, ICMP, ICMPv6, probe templates.

Private package: the engine and scanners import names from here. Nothing in it touches a
socket; every parser raises :class:`pyscan.errors.PacketError` (layer, offset, reason) on
malformed input and nothing else. Parsers return ``(header, payload)``, except the ICMP
parsers (one message object) and :func:`parse_packet` (a :class:`Packet`).
"""

from pyscan._wire.bpf import (
    MAX_RANGES as MAX_RANGES,
)
from pyscan._wire.bpf import (
    port_filter as port_filter,
)
from pyscan._wire.bpf import (
    port_ranges as port_ranges,
)
from pyscan._wire.checksum import (
    fold16 as fold16,
)
from pyscan._wire.checksum import (
    internet_checksum as internet_checksum,
)
from pyscan._wire.checksum import (
    ipv4_pseudo_header_sum as ipv4_pseudo_header_sum,
)
from pyscan._wire.checksum import (
    ipv6_pseudo_header_sum as ipv6_pseudo_header_sum,
)
from pyscan._wire.checksum import (
    ones_complement_sum as ones_complement_sum,
)
from pyscan._wire.checksum import (
    pseudo_header_sum as pseudo_header_sum,
)
from pyscan._wire.checksum import (
    update_checksum16 as update_checksum16,
)
from pyscan._wire.checksum import (
    update_checksum32 as update_checksum32,
)
from pyscan._wire.checksum import (
    update_checksum_bytes as update_checksum_bytes,
)
from pyscan._wire.icmp import (
    ICMPAddressMask as ICMPAddressMask,
)
from pyscan._wire.icmp import (
    ICMPEcho as ICMPEcho,
)
from pyscan._wire.icmp import (
    ICMPError as ICMPError,
)
from pyscan._wire.icmp import (
    ICMPMessage as ICMPMessage,
)
from pyscan._wire.icmp import (
    ICMPOther as ICMPOther,
)
from pyscan._wire.icmp import (
    ICMPTimestamp as ICMPTimestamp,
)
from pyscan._wire.icmp import (
    ICMPType as ICMPType,
)
from pyscan._wire.icmp import (
    QuotedDatagram as QuotedDatagram,
)
from pyscan._wire.icmp import (
    TimeExceededCode as TimeExceededCode,
)
from pyscan._wire.icmp import (
    UnreachCode as UnreachCode,
)
from pyscan._wire.icmp import (
    build_icmp as build_icmp,
)
from pyscan._wire.icmp import (
    build_icmp_address_mask as build_icmp_address_mask,
)
from pyscan._wire.icmp import (
    build_icmp_echo as build_icmp_echo,
)
from pyscan._wire.icmp import (
    build_icmp_error as build_icmp_error,
)
from pyscan._wire.icmp import (
    build_icmp_timestamp as build_icmp_timestamp,
)
from pyscan._wire.icmp import (
    parse_icmp as parse_icmp,
)
from pyscan._wire.icmp import (
    parse_quoted_datagram as parse_quoted_datagram,
)
from pyscan._wire.icmp import (
    verify_icmp_checksum as verify_icmp_checksum,
)
from pyscan._wire.icmpv6 import (
    ICMPv6Type as ICMPv6Type,
)
from pyscan._wire.icmpv6 import (
    ICMPv6UnreachCode as ICMPv6UnreachCode,
)
from pyscan._wire.icmpv6 import (
    build_icmpv6 as build_icmpv6,
)
from pyscan._wire.icmpv6 import (
    build_icmpv6_echo as build_icmpv6_echo,
)
from pyscan._wire.icmpv6 import (
    build_icmpv6_error as build_icmpv6_error,
)
from pyscan._wire.icmpv6 import (
    parse_icmpv6 as parse_icmpv6,
)
from pyscan._wire.icmpv6 import (
    verify_icmpv6_checksum as verify_icmpv6_checksum,
)
from pyscan._wire.ipv4 import (
    IPV4_HEADER as IPV4_HEADER,
)
from pyscan._wire.ipv4 import (
    IPv4Flags as IPv4Flags,
)
from pyscan._wire.ipv4 import (
    IPv4Header as IPv4Header,
)
from pyscan._wire.ipv4 import (
    build_ipv4 as build_ipv4,
)
from pyscan._wire.ipv4 import (
    parse_ipv4 as parse_ipv4,
)
from pyscan._wire.ipv4 import (
    verify_ipv4_checksum as verify_ipv4_checksum,
)
from pyscan._wire.ipv6 import (
    EXTENSION_HEADERS as EXTENSION_HEADERS,
)
from pyscan._wire.ipv6 import (
    IPV6_HEADER as IPV6_HEADER,
)
from pyscan._wire.ipv6 import (
    IPv6Header as IPv6Header,
)
from pyscan._wire.ipv6 import (
    build_ipv6 as build_ipv6,
)
from pyscan._wire.ipv6 import (
    build_ipv6_extension as build_ipv6_extension,
)
from pyscan._wire.ipv6 import (
    build_ipv6_fragment_header as build_ipv6_fragment_header,
)
from pyscan._wire.ipv6 import (
    parse_ipv6 as parse_ipv6,
)
from pyscan._wire.packet import (
    Packet as Packet,
)
from pyscan._wire.packet import (
    build_echo_packet as build_echo_packet,
)
from pyscan._wire.packet import (
    build_icmp_packet as build_icmp_packet,
)
from pyscan._wire.packet import (
    build_ip_packet as build_ip_packet,
)
from pyscan._wire.packet import (
    build_tcp_packet as build_tcp_packet,
)
from pyscan._wire.packet import (
    build_udp_packet as build_udp_packet,
)
from pyscan._wire.packet import (
    parse_packet as parse_packet,
)
from pyscan._wire.reader import (
    Address as Address,
)
from pyscan._wire.reader import (
    Buffer as Buffer,
)
from pyscan._wire.reader import (
    Reader as Reader,
)
from pyscan._wire.reader import (
    pack_checked as pack_checked,
)
from pyscan._wire.reader import (
    packed_address as packed_address,
)
from pyscan._wire.tcp import (
    EOL as EOL,
)
from pyscan._wire.tcp import (
    MSS as MSS,
)
from pyscan._wire.tcp import (
    NOP as NOP,
)
from pyscan._wire.tcp import (
    SACK as SACK,
)
from pyscan._wire.tcp import (
    TCP_HEADER as TCP_HEADER,
)
from pyscan._wire.tcp import (
    SACKPermitted as SACKPermitted,
)
from pyscan._wire.tcp import (
    TCPFlags as TCPFlags,
)
from pyscan._wire.tcp import (
    TCPHeader as TCPHeader,
)
from pyscan._wire.tcp import (
    TCPOption as TCPOption,
)
from pyscan._wire.tcp import (
    Timestamps as Timestamps,
)
from pyscan._wire.tcp import (
    UnknownOption as UnknownOption,
)
from pyscan._wire.tcp import (
    WindowScale as WindowScale,
)
from pyscan._wire.tcp import (
    build_tcp as build_tcp,
)
from pyscan._wire.tcp import (
    decode_tcp_options as decode_tcp_options,
)
from pyscan._wire.tcp import (
    encode_tcp_options as encode_tcp_options,
)
from pyscan._wire.tcp import (
    parse_tcp as parse_tcp,
)
from pyscan._wire.tcp import (
    verify_tcp_checksum as verify_tcp_checksum,
)
from pyscan._wire.template import (
    DEFAULT_SYN_OPTIONS as DEFAULT_SYN_OPTIONS,
)
from pyscan._wire.template import (
    TCPTemplate as TCPTemplate,
)
from pyscan._wire.template import (
    TCPTemplate6 as TCPTemplate6,
)
from pyscan._wire.template import (
    UDPTemplate as UDPTemplate,
)
from pyscan._wire.template import (
    UDPTemplate6 as UDPTemplate6,
)
from pyscan._wire.template import (
    tcp_template as tcp_template,
)
from pyscan._wire.template import (
    udp_template as udp_template,
)
from pyscan._wire.udp import (
    UDP_HEADER as UDP_HEADER,
)
from pyscan._wire.udp import (
    UDPHeader as UDPHeader,
)
from pyscan._wire.udp import (
    build_udp as build_udp,
)
from pyscan._wire.udp import (
    parse_udp as parse_udp,
)
from pyscan._wire.udp import (
    verify_udp_checksum as verify_udp_checksum,
)

__all__ = [
    "DEFAULT_SYN_OPTIONS",
    "EOL",
    "EXTENSION_HEADERS",
    "IPV4_HEADER",
    "IPV6_HEADER",
    "MAX_RANGES",
    "MSS",
    "NOP",
    "SACK",
    "TCP_HEADER",
    "UDP_HEADER",
    "Address",
    "Buffer",
    "ICMPAddressMask",
    "ICMPEcho",
    "ICMPError",
    "ICMPMessage",
    "ICMPOther",
    "ICMPTimestamp",
    "ICMPType",
    "ICMPv6Type",
    "ICMPv6UnreachCode",
    "IPv4Flags",
    "IPv4Header",
    "IPv6Header",
    "Packet",
    "QuotedDatagram",
    "Reader",
    "SACKPermitted",
    "TCPFlags",
    "TCPHeader",
    "TCPOption",
    "TCPTemplate",
    "TCPTemplate6",
    "TimeExceededCode",
    "Timestamps",
    "UDPHeader",
    "UDPTemplate",
    "UDPTemplate6",
    "UnknownOption",
    "UnreachCode",
    "WindowScale",
    "build_echo_packet",
    "build_icmp",
    "build_icmp_address_mask",
    "build_icmp_echo",
    "build_icmp_error",
    "build_icmp_packet",
    "build_icmp_timestamp",
    "build_icmpv6",
    "build_icmpv6_echo",
    "build_icmpv6_error",
    "build_ip_packet",
    "build_ipv4",
    "build_ipv6",
    "build_ipv6_extension",
    "build_ipv6_fragment_header",
    "build_tcp",
    "build_tcp_packet",
    "build_udp",
    "build_udp_packet",
    "decode_tcp_options",
    "encode_tcp_options",
    "fold16",
    "internet_checksum",
    "ipv4_pseudo_header_sum",
    "ipv6_pseudo_header_sum",
    "ones_complement_sum",
    "pack_checked",
    "packed_address",
    "parse_icmp",
    "parse_icmpv6",
    "parse_ipv4",
    "parse_ipv6",
    "parse_packet",
    "parse_quoted_datagram",
    "parse_tcp",
    "parse_udp",
    "port_filter",
    "port_ranges",
    "pseudo_header_sum",
    "tcp_template",
    "udp_template",
    "update_checksum16",
    "update_checksum32",
    "update_checksum_bytes",
    "verify_icmp_checksum",
    "verify_icmpv6_checksum",
    "verify_ipv4_checksum",
    "verify_tcp_checksum",
    "verify_udp_checksum",
]
