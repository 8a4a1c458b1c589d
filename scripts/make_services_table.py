#!/usr/bin/env python3
"""Build pyscan's own services table, src/pyscan/data/services.tsv.

pyscan uses nmap's nmap-services when nmap is installed. Without it, it falls back to this
table, which is entirely pyscan's own: nothing here is taken from nmap-services (neither its
rows nor its open frequencies).

Method
------
Names: the hand lists below give a name for each port they rank; every other name comes from
the system's /etc/services (IANA names as packaged by Debian's netbase), first name per
port/protocol. Ports with no name anywhere are called ``unknown``.

Ranking ("top" order, most often open first), per protocol:

1. the hand-ranked head below, written from general operational knowledge of which services
   are commonly exposed on servers, workstations, network gear and IoT devices (web, remote
   administration, mail, file sharing, directory, databases, message brokers, management
   agents, VoIP, industrial protocols, common alternate HTTP ports);
2. then every remaining /etc/services port of that protocol, in ascending port order;
3. TCP only, until there are at least MIN_TCP rows: the remaining privileged ports 1-1023
   in ascending order, then the remaining ports of a few commonly used blocks (8000-8099,
   9000-9099, 10000-10099), ascending; UDP likewise up to MIN_UDP with ports 1-1023.

Usage: python scripts/make_services_table.py [/etc/services] > src/pyscan/data/services.tsv
"""

from __future__ import annotations

import sys
from pathlib import Path

MIN_TCP = 1000
MIN_UDP = 200

# Hand-ranked, most commonly open first. "port name" per entry.
TCP_RANKED = """
80 http 443 https 22 ssh 21 ftp 25 smtp 8080 http-alt 3389 ms-wbt-server 53 domain
445 microsoft-ds 139 netbios-ssn 135 epmap 23 telnet 8443 https-alt 110 pop3 143 imap
993 imaps 995 pop3s 587 submission 465 submissions 3306 mysql 111 sunrpc 5900 rfb
8000 irdmi 8888 ddi-tcp-1 1723 pptp 5432 postgresql 1433 ms-sql-s 2049 nfs 5060 sip
179 bgp 161 snmp 389 ldap 636 ldaps 88 kerberos 464 kpasswd 3268 msft-gc 3269 msft-gc-ssl
5985 wsman 5986 wsmans 8081 tproxy 9100 jetdirect 631 ipp 515 printer 548 afpovertcp
554 rtsp 1900 ssdp 5000 upnp 5001 commplex-link 9000 cslistener 9090 websm 7547 cwmp
2000 cisco-sccp 10000 webmin 6379 redis 27017 mongodb 11211 memcache 9200 wap-wsp
5672 amqp 1521 oracle 873 rsync 990 ftps 992 telnets 113 auth 119 nntp 79 finger
514 shell 513 login 512 exec 2222 ssh-alt 2323 telnet-alt 8008 http-alt2 8088 radan-http
8089 splunkd 8001 vcom-tunnel 8010 xmpp-alt 8082 us-cli 8083 us-srv 8084 websnp
8085 http-alt3 8086 influxdb 8090 opsmessaging 8181 intermapper 8880 cddbp-alt
8181 intermapper 9443 tungsten-https 4443 pharos 10443 https-alt2 3000 hbci 3001 nessus
4000 terabase 5800 vnc-http 5901 vnc-1 5902 vnc-2 5903 vnc-3 6000 x11 6001 x11-1
1080 socks 3128 ndl-aas 8118 privoxy 1194 openvpn 500 isakmp 1701 l2tp 4500 ipsec-nat-t
5061 sip-tls 1720 h323q931 5038 asterisk-ami 6667 ircd 6697 ircs-u 5222 xmpp-client
5269 xmpp-server 1883 mqtt 8883 secure-mqtt 502 modbus 102 iso-tsap 20000 dnp
44818 ethernet-ip 47808 bacnet 1911 fox 4840 opcua 2404 iec-104 9600 omron-fins
2375 docker 2376 docker-s 6443 kube-apiserver 10250 kubelet 2379 etcd-client
2380 etcd-server 5601 kibana 9090 websm 9091 xmltec-xmlmail 9093 alertmanager
9094 kafka-ext 9092 kafka 2181 zookeeper 8500 consul 8200 vault 4369 epmd 15672 rabbitmq-mgmt
61616 activemq 8161 activemq-web 9042 cassandra 7000 afs3-fileserver 7001 afs3-callback
7199 cassandra-jmx 5984 couchdb 6984 couchdb-ssl 7474 neo4j 7687 bolt 8529 arangodb
8983 solr 9300 elasticsearch-node 5044 logstash-beats 9600 omron-fins 3050 gds-db
50000 ibm-db2 1434 ms-sql-m 2483 ttc 2484 ttc-ssl 1830 net8-cman 3351 btrieve
5433 pyrrho 26257 cockroach 28017 mongodb-web 27018 mongodb-shard 27019 mongodb-config
6380 redis-alt 7379 redis-sentinel 26379 redis-sentinel-alt 11214 memcache-ssl
1099 rmiregistry 1098 rmiactivation 8009 ajp13 8005 tomcat-shutdown 4848 glassfish-admin
7002 weblogic-ssl 7070 realserver 9060 websphere-admin 9080 glrpc 9043 websphere-https
8180 http-alt4 8280 synapse-nhttp 8800 sunwebadmin 8834 nessus-www 9390 openvas-omp
9392 openvas-gsa 10050 zabbix-agent 10051 zabbix-trapper 4949 munin 5666 nrpe 5667 nsca
8140 puppet 4505 salt-publish 4506 salt-request 9103 bacula-sd 9101 bacula-dir 9102 bacula-fd
3260 iscsi-target 860 iscsi 20048 mountd 2020 xinupageserver 892 nfs-mountd-alt
2082 cpanel 2083 cpanel-ssl 2086 whm 2087 whm-ssl 2095 webmail 2096 webmail-ssl 2077 webdisk
2078 webdisk-ssl 8291 winbox 8728 routeros-api 8729 routeros-api-ssl 4786 smart-install
1812 radius 1813 radius-acct 49 tacacs 7080 empowerid 4433 vop 4444 krb524 1234 search-agent
9999 distinct 10001 scp-config 1025 blackjack 1026 cap 1027 exosee 1028 ms-rpc-1028
1029 solid-mux 1030 iad1 1031 iad2 1032 iad3 49152 ms-rpc-dyn 49153 ms-rpc-dyn1
49154 ms-rpc-dyn2 49155 ms-rpc-dyn3 49156 ms-rpc-dyn4 49157 ms-rpc-dyn5 49158 ms-rpc-dyn6
5357 wsdapi 5358 wsdapis 2869 icslap 3702 ws-discovery 5355 llmnr 427 svrloc
5353 mdns 62078 iphone-sync 5009 airport-admin 7000 afs3-fileserver 3283 net-assistant
5900 rfb 3689 daap 32400 plex 8096 jellyfin 8123 home-assistant 1400 sonos 8009 ajp13
9080 glrpc 49000 avm-tr064 37215 huawei-hg 52869 upnp-miniserv 8291 winbox 5555 adb
4567 tram 6789 smc-https 7443 oracleas-https 8444 https-alt3 9001 etlservicemgr
9002 dynamid 9009 pichat 9010 sdr 9091 xmltec-xmlmail 9191 sun-as-jpda 9418 git
3690 svn 2401 cvspserver 6666 irc-alt 6668 irc-alt2 194 irc 6881 bittorrent
51413 transmission 6346 gnutella-svc 4662 edonkey 5050 mmcc 5190 aol 1863 msnp
3478 stun 5349 stuns 19302 stun-google 10080 amanda 3389 ms-wbt-server 3390 dsc
5938 teamviewer 5631 pcanywheredata 5632 pcanywherestat 4899 radmin-port 6129 dameware
5500 hotline 3283 net-assistant 5950 vnc-alt 12345 netbus 31337 back-orifice
81 hosts2-ns 82 xfer 83 mit-ml-dev 84 ctf 85 mit-ml-dev2 88 kerberos 8002 teradataordbms
8003 mcreport 8004 p2pevolvenet 8006 wpl-analytics 8007 warppipe 8011 http-alt5
8012 http-alt6 8020 intu-ec-svcdisc 8030 http-alt7 8040 http-alt8 8050 http-alt9
8060 http-alt10 8069 odoo 8070 http-alt11 8087 simplifymedia 8091 jamlink 8099 http-alt12
8100 xprint-server 8111 skynetflow 8222 vmware-mgmt 8333 bitcoin 8334 filecast
8400 cvd 8443 https-alt 8500 fmtp 8530 wsus 8531 wsus-ssl 8545 ethereum-rpc 8585 http-alt13
8686 sun-as-jmxrmi 8765 ultraseek-http 8787 msgsrvr 8843 https-alt4 8848 nacos
8873 dxspider 8888 ddi-tcp-1 8899 ospf-lite 8989 http-alt14 9081 http-alt15 9200 wap-wsp
9229 nodejs-inspect 9415 http-alt16 9500 ismserver 9527 http-alt17 9876 sd 9998 distinct32
10080 amanda 10082 amandaidx 10250 kubelet 10255 kubelet-ro 10443 https-alt2
16992 amt-soap-http 16993 amt-soap-https 17500 db-lsp 18080 http-alt18 18443 https-alt5
20000 dnp 25565 minecraft 27015 srcds 28015 rust-game 30000 http-alt19 32764 router-backdoor
50070 hadoop-namenode 50075 hadoop-datanode 8020 intu-ec-svcdisc 8032 yarn-rm 8042 yarn-nm
8088 radan-http 9870 hadoop-namenode-ui 16010 hbase-master 16030 hbase-region
2003 graphite 2004 graphite-pickle 8125 statsd 4317 otlp-grpc 4318 otlp-http 14268 jaeger
16686 jaeger-ui 9411 zipkin 3100 loki 9093 alertmanager 9115 blackbox-exporter
9182 windows-exporter 9256 process-exporter 11434 ollama 5173 vite-dev 4200 angular-dev
3030 dev-http 5500 hotline 8787 msgsrvr 9292 armtechdaemon 1337 waste 4001 newoak
4002 mlchat-proxy 4040 yo-main 4848 glassfish-admin 5002 rfe 5003 filemaker 5004 avt-profile-1
5005 avt-profile-2 5006 wsm-server 5007 wsm-server-ssl 5010 telelpathstart 5080 onscreen
5100 socalia 5200 targus-getdata 5280 xmpp-bosh 5555 adb 5556 freeciv 5560 isqlplus
5601 kibana 5678 rrac 5800 vnc-http 5801 vnc-http-1 5802 vnc-http-2 5903 vnc-3 5904 vnc-4
5905 vnc-5 5906 vnc-6 5907 vnc-7 5908 vnc-8 5909 vnc-9 5910 vnc-10 6002 x11-2 6003 x11-3
6004 x11-4 6005 x11-5 6006 x11-6 6007 x11-7 6009 x11-9 6060 x11-60 6100 synchronet-db
6379 redis 6514 syslog-tls 6543 mythtv 6565 http-alt20 6600 mshvlm 6646 mcafee-alt
6699 napster 6969 acmsoda 7001 afs3-callback 7071 iwg1 7077 spark-master 7100 font-service
7200 fodms 7272 watchme-7272 7443 oracleas-https 7510 ovhpas 7777 cbt 7778 interwise
7800 asr 7899 tnos-sp 7900 nmea 7999 irdmi2 8383 m2mservices 8649 ganglia 8651 ganglia-alt
8680 http-alt21 8649 ganglia 9030 tor-dir 9050 tor-socks 9051 tor-control 9100 jetdirect
9101 bacula-dir 9111 hexxorecore 9119 mxit 9150 tor-browser 9160 apani1 9290 fujitsu-neat
9300 elasticsearch-node 9306 sphinxql 9312 sphinxapi 9389 adws 9595 pds 9666 zoomcp
9876 sd 9900 iua 9950 apc-9950 9981 tvheadend 10001 scp-config 10002 documentum
10003 documentum-s 10004 emcrmirccd 10009 swdtp-sv 10010 rxapi 10012 qmaster 10024 amavisd
10025 amavisd-out 10101 ezmeeting-2 10162 snmptls-trap 10161 snmptls 10616 ntopng-alt
11000 irisa 11111 vce 11371 hkp 12000 cce4x 12443 https-alt6 13000 http-alt22 13722 bpjava-msvc
13782 bpcd 13783 vopied 15000 hydap 16000 fmsas 16080 osxwebadmin 18081 http-alt23
18245 gesrtp 19000 ipsec-alt 19999 dnp-sec 20005 openwebnet 20031 bakbonenetvault 21025 http-alt24
22222 ssh-alt2 23023 telnet-alt2 25000 icl-twobase1 27000 flexlm0 27001 flexlm1 27017 mongodb
28080 http-alt25 30718 lantronix 32768 filenet-tms 32769 filenet-rpc 33060 mysqlx
33848 jenkins-udp 37777 dahua 40000 safetynetp 41794 crestron-cip 41795 crestron-ctp
44443 https-alt7 47001 winrm-alt 50050 cobalt-strike 50100 sap-router-alt 3299 saprouter
3200 sap-dispatcher 3300 sap-gateway 3600 sap-msg 8000 irdmi 50013 sap-mgmt 1128 saphostctrl
1129 saphostctrls 3872 oem-agent 5520 sdlog 6050 arcserve 6101 backupexec 6106 mpsserver
10000 webmin 8400 cvd 1352 lotusnote 1414 ibm-mqseries 1415 dbstar 1416 novell-lu6-2
3031 eppc 3071 csd-mgmt-port 4190 sieve 2525 smtp-alt 2526 smtp-alt2 4190 sieve 24 lmtp
26 smtp-alt3 106 poppassd 109 pop2 143 imap 220 imap3 366 odmr 406 imsp 783 spamd
"""

UDP_RANKED = """
53 domain 123 ntp 161 snmp 137 netbios-ns 138 netbios-dgm 67 bootps 68 bootpc 69 tftp
500 isakmp 4500 ipsec-nat-t 1900 ssdp 5353 mdns 514 syslog 520 route 1812 radius
1813 radius-acct 1645 datametrics 1646 sa-msg-port 162 snmp-trap 5060 sip 5061 sip-tls
443 https 3478 stun 1194 openvpn 51820 wireguard 1701 l2f 111 sunrpc 2049 nfs 88 kerberos
464 kpasswd 389 ldap 3389 ms-wbt-server 5355 llmnr 3702 ws-discovery 11211 memcache
19 chargen 17 qotd 7 echo 9 discard 13 daytime 37 time 623 asf-rmcp 47808 bacnet
20000 dnp 2222 ethernet-ip-io 44818 ethernet-ip 502 modbus 161 snmp 1434 ms-sql-m
5683 coap 5684 coaps 1604 citrix-ica-browser 27015 srcds 27960 quake3 3074 xbox
3544 teredo 5351 nat-pmp 5350 nat-pmp-status 631 ipp 427 svrloc 546 dhcpv6-client
547 dhcpv6-server 135 epmap 445 microsoft-ds 139 netbios-ssn 1433 ms-sql-s 3306 mysql
1719 h323gatestat 1720 h323q931 2427 mgcp-gateway 2727 mgcp-callagent 4569 iax
5004 avt-profile-1 5005 avt-profile-2 10000 ndmp 1025 blackjack 1026 cap 1027 exosee
1028 ms-rpc-1028 1029 solid-mux 1030 iad1 49152 ms-rpc-dyn 49153 ms-rpc-dyn1
49154 ms-rpc-dyn2 49156 ms-rpc-dyn4 5632 pcanywherestat 6481 servicetags 17185 vxworks-wdb
32768 filenet-tms 32769 filenet-rpc 31337 back-orifice 9200 wap-wsp 9987 teamspeak3
64738 mumble 25565 minecraft 19132 minecraft-bedrock 27016 srcds-alt 7777 cbt 9100 jetdirect
5000 upnp 1024 reserved 2048 dls-monitor 1234 search-agent 1812 radius 1813 radius-acct
2123 gtp-c 2152 gtp-u 3386 gtp-prime 8472 vxlan-linux 4789 vxlan 6081 geneve 4784 bfd-multihop
3784 bfd-control 3785 bfd-echo 646 ldp 1985 hsrp 2029 hsrp-v6 521 ripng 1698 rsvp-encap-1
1699 rsvp-encap-2 6343 sflow 2055 netflow 9995 netflow-alt 9996 netflow-alt2 4739 ipfix
4740 ipfixs 177 xdmcp 6000 x11 1701 l2f 1293 ipsec-alt 3050 gds-db 5632 pcanywherestat
161 snmp 10161 snmptls 10162 snmptls-trap 8080 http-alt 80 http 22 ssh 21 ftp 25 smtp
"""

SCTP_RANKED = """
2905 m3ua 2904 m2ua 3868 diameter 5060 sip 5061 sip-tls 36412 s1ap 36422 x2ap 38412 ngap
38422 xnap 14001 sua 9900 iua 2944 megaco-h248 2945 h248-binary 3097 itu-bicc-stc
3863 asap-sctp 3864 asap-sctp-tls 80 http 443 https 22 ssh 21 ftp 179 bgp 5672 amqp
2049 nfs 5090 car 5091 cxtp 6704 frc-hp 6705 frc-mp 6706 frc-lp 7 echo 9 discard
"""


def _hand(text: str) -> list[tuple[int, str]]:
    words = text.split()
    if len(words) % 2:
        raise SystemExit("hand list has an odd number of words")
    seen: set[int] = set()
    out: list[tuple[int, str]] = []
    for i in range(0, len(words), 2):
        port = int(words[i])
        if not 0 < port <= 65535:
            raise SystemExit(f"bad port {port}")
        if port not in seen:
            seen.add(port)
            out.append((port, words[i + 1]))
    return out


def _system_names(path: Path) -> dict[tuple[str, int], str]:
    names: dict[tuple[str, int], str] = {}
    for raw in path.read_text().splitlines():
        fields = raw.split("#", 1)[0].split()
        if len(fields) < 2 or "/" not in fields[1]:
            continue
        port_text, proto = fields[1].split("/", 1)
        if proto in ("tcp", "udp", "sctp") and port_text.isdigit():
            names.setdefault((proto, int(port_text)), fields[0])
    return names


def _fill(
    proto: str,
    head: list[tuple[int, str]],
    system: dict[tuple[str, int], str],
    minimum: int,
    blocks: list[range],
) -> list[tuple[int, str]]:
    rows = list(head)
    seen = {port for port, _ in rows}
    for (p, port), name in sorted(system.items(), key=lambda kv: kv[0][1]):
        if p == proto and port not in seen:
            seen.add(port)
            rows.append((port, name))
    for block in blocks:
        for port in block:
            if len(rows) >= minimum:
                return rows
            if port not in seen:
                seen.add(port)
                rows.append((port, "unknown"))
    return rows


def main(argv: list[str]) -> int:
    etc = Path(argv[1] if len(argv) > 1 else "/etc/services")
    system = _system_names(etc)
    tcp = _fill(
        "tcp",
        _hand(TCP_RANKED),
        system,
        MIN_TCP,
        [range(1, 1024), range(8000, 8100), range(9000, 9100), range(10000, 10100)],
    )
    udp = _fill("udp", _hand(UDP_RANKED), system, MIN_UDP, [range(1, 1024)])
    sctp = _fill("sctp", _hand(SCTP_RANKED), system, 0, [])
    out = sys.stdout
    out.write(
        "# pyscan's own services table: service name and port/protocol, one per line.\n"
        "# This is pyscan's data, not nmap's: names follow IANA (/etc/services from\n"
        "# netbase) plus pyscan's own hand-written list; within each protocol, rows are\n"
        "# in pyscan's own ranking, most commonly open first (the order --top-ports\n"
        "# takes). Generated by scripts/make_services_table.py (see its docstring for\n"
        "# the method); edit that script, not this file.\n"
        "# name\tport/protocol\n"
    )
    for proto, rows in (("tcp", tcp), ("udp", udp), ("sctp", sctp)):
        for port, name in rows:
            out.write(f"{name}\t{port}/{proto}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
