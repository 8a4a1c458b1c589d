"""Real service daemons from Debian packages, running inside a lab host's namespace.

How this works::

    scanner ns ── nmap -sV / pyscan ──>  svc ns (198.18.0.20): sshd, nginx, apache2, ...

:func:`start_daemons` writes one configuration per daemon under a temporary directory
(listening on the host's lab address only; pid, log, socket and data files all inside that
directory), runs any one-off preparation (host keys, a self-signed certificate, ``initdb``,
``mariadb-install-db``) inside the host's namespace, then starts every daemon in the
foreground with :meth:`Lab.popen` in that namespace, so the lab tracks the very process id
of each daemon (``sshd -D``, ``nginx 'daemon off;'``, ``postgres -D``, ``dovecot -F``...).
It waits, bounded, until every port answers from the scanner's namespace (a TCP connect,
or a protocol request for UDP ports).

Nothing runs in the root namespace and no system service is touched: the daemons read
their configurations from that directory, not the stock ones under /etc, and write only
there (sshd's privilege-separation directory /run/sshd is created when missing).
scripts/install-daemons.sh installs the packages (CI runs it); a daemon whose package is
missing is skipped, with the reason, in :attr:`DaemonSet.skipped`.

The truth (:attr:`DaemonSet.truth`) says, per ``(proto, port)``, what nmap 7.93's ``-sV``
reports for that daemon: the service name, the product and the version. The version is
computed from the installed Debian package's version (``dpkg-query``) by a per-daemon rule,
never by asking nmap, so comparing nmap's answer with the truth validates both;
``tests/lab/test_daemons.py`` does that. :func:`nmap_services` runs nmap in the scanner's
namespace and parses its XML, for such comparisons and for benchmarks.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Literal

import attrs

from pyscan.testing.netlab import NETNS_DIR, HostConfig, Lab, LabConfig, LabSetupError

__all__ = [
    "DAEMONS",
    "SVC_ADDRESS",
    "SVC_HOST",
    "DaemonSet",
    "NmapService",
    "ServiceTruth",
    "daemon_lab_config",
    "missing_daemons",
    "nmap_services",
    "package_version",
    "start_daemons",
    "truth_table",
]

SVC_HOST = "svc"
"""Label of the lab host that runs the daemons."""
SVC_ADDRESS = "198.18.0.20"
"""Its address in the default lab network."""

Proto = Literal["tcp", "udp"]
Key = tuple[str, int]


@attrs.frozen
class ServiceTruth:
    """What nmap 7.93's ``-sV`` reports for one daemon port."""

    daemon: str
    """Key in :data:`DAEMONS` (``"nginx"``, ``"dovecot"``...)."""
    proto: Proto
    port: int
    service: str
    """nmap's service name without the tunnel (``"http"`` for HTTPS)."""
    tunnel: str | None
    """``"ssl"`` for TLS-wrapped services (nmap prints ``ssl/http``), else ``None``."""
    product: str | None
    version: str | None
    """As nmap reports it (derived from :attr:`package_version`); ``None``: nmap gives none."""
    package: str
    """The Debian package the daemon comes from."""
    package_version: str
    """Its installed version (``dpkg-query``)."""
    nse: str | None = None
    """The nmap NSE script (``version`` category, run by ``-sV``) that rewrote nmap's answer
    after the probe file matched, or ``None`` when the probe file alone gives it."""
    probe_product: str | None = None
    """The product the probe file alone gives, where :attr:`nse` rewrote it."""

    @property
    def key(self) -> Key:
        """``(proto, port)``."""
        return (self.proto, self.port)

    @property
    def name(self) -> str:
        """The service column of nmap's normal output (``ssl/http``)."""
        return f"{self.tunnel}/{self.service}" if self.tunnel else self.service

    def agrees(self, seen: NmapService) -> bool:
        """nmap's answer has this port, service (with tunnel), product and version."""
        return (seen.key, seen.name, seen.product, seen.version) == (
            self.key,
            self.name,
            self.product,
            self.version,
        )


@attrs.frozen
class NmapService:
    """One port of an nmap ``-sV`` XML report."""

    proto: str
    port: int
    state: str
    service: str
    tunnel: str | None
    product: str | None
    version: str | None
    extrainfo: str | None
    method: str | None
    """``probed`` or ``table`` (nmap only guessed from the port number)."""

    @property
    def key(self) -> Key:
        """``(proto, port)``."""
        return (self.proto, self.port)

    @property
    def name(self) -> str:
        """The service column of nmap's normal output (``ssl/http``)."""
        return f"{self.tunnel}/{self.service}" if self.tunnel else self.service


# --- package versions -----------------------------------------------------------------------


def package_version(package: str) -> str | None:
    """The installed version of a Debian package, or ``None`` when it is not installed."""
    if shutil.which("dpkg-query") is None:
        return None
    res = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Abbrev}|${Version}", package],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    status, _, version = res.stdout.partition("|")
    if res.returncode != 0 or not status.startswith("ii") or not version:
        return None
    return version


def _upstream(version: str) -> str:
    """``1:9.2p1-2+deb12u10`` -> ``9.2p1``."""
    version = re.sub(r"^\d+:", "", version)
    return version.rsplit("-", 1)[0] if "-" in version else version


def _revision(version: str) -> str:
    """``1:9.2p1-2+deb12u10`` -> ``2+deb12u10``."""
    return version.rsplit("-", 1)[1] if "-" in version else ""


# --- daemon descriptions --------------------------------------------------------------------


@attrs.frozen
class _Port:
    proto: Proto
    port: int
    service: str
    product: str | None
    version: Callable[[str], str | None]
    tunnel: str | None = None
    greets: bool = False
    """The server speaks first: ready once its first bytes arrive."""
    nse: str | None = None
    probe_product: str | None = None


@attrs.frozen
class _Ctx:
    lab: Lab
    host: str
    address: str
    base: Path
    """The whole set's directory (the TLS certificate lives here)."""
    dir: Path
    """This daemon's own directory."""

    @property
    def cert(self) -> Path:
        return self.base / "tls" / "cert.pem"

    @property
    def key(self) -> Path:
        return self.base / "tls" / "key.pem"

    def write(self, name: str, text: str, mode: int = 0o644) -> Path:
        path = self.dir / name
        path.write_text(text)
        path.chmod(mode)
        return path

    def mkdir(self, name: str, owner: str | None = None, mode: int = 0o755) -> Path:
        path = self.dir / name
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
        if owner is not None:
            shutil.chown(path, owner, _group_of(owner))
        return path

    def run(self, argv: list[str], what: str, timeout: float = 60.0) -> None:
        res = self.lab.run(argv, host=self.host, timeout=timeout)
        if res.returncode != 0:
            out = (res.stderr or res.stdout).strip()[-2000:]
            raise LabSetupError(f"{what}: {shlex.join(argv)} failed ({res.returncode}): {out}")


@attrs.frozen
class _Daemon:
    name: str
    package: str
    binary: str
    """Absolute path, or a name looked up on PATH."""
    ports: tuple[_Port, ...]
    setup: Callable[[_Ctx], list[str]]
    """Writes the configuration, prepares data, returns the foreground command line."""
    needs: tuple[str, ...] = ()
    """Other programs the setup uses."""


def _group_of(user: str) -> str:
    import grp  # noqa: PLC0415 - POSIX only, like the lab
    import pwd  # noqa: PLC0415

    return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name


def _as_user(user: str, argv: list[str]) -> list[str]:
    """Run ``argv`` as ``user`` without an extra process (``setpriv`` execs it)."""
    return ["setpriv", f"--reuid={user}", f"--regid={_group_of(user)}", "--init-groups", *argv]


def _www(ctx: _Ctx) -> Path:
    www = ctx.mkdir("www")
    (www / "index.html").write_text("<html><body>pyscan lab</body></html>\n")
    return www


def _sshd(ctx: _Ctx) -> list[str]:
    key = ctx.dir / "ssh_host_ed25519_key"
    ctx.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], "sshd host key")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    conf = ctx.write(
        "sshd_config",
        f"""Port 22
ListenAddress {ctx.address}
HostKey {key}
PidFile {ctx.dir}/sshd.pid
UsePAM no
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
""",
    )
    return ["/usr/sbin/sshd", "-D", "-e", "-f", str(conf)]


def _nginx(ctx: _Ctx) -> list[str]:
    www = _www(ctx)
    d = ctx.dir
    conf = ctx.write(
        "nginx.conf",
        f"""daemon off;
user www-data;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen {ctx.address}:80;
        root {www};
    }}
    server {{
        listen {ctx.address}:443 ssl;
        ssl_certificate {ctx.cert};
        ssl_certificate_key {ctx.key};
        root {www};
    }}
}}
""",
    )
    return ["/usr/sbin/nginx", "-p", str(d), "-e", f"{d}/error.log", "-c", str(conf)]


def _apache(ctx: _Ctx) -> list[str]:
    www = _www(ctx)
    d = ctx.dir
    mods = "/usr/lib/apache2/modules"
    conf = ctx.write(
        "apache2.conf",
        f"""ServerRoot {d}
DefaultRuntimeDir {d}
PidFile {d}/apache2.pid
ErrorLog {d}/error.log
LoadModule mpm_event_module {mods}/mod_mpm_event.so
LoadModule authz_core_module {mods}/mod_authz_core.so
LoadModule dir_module {mods}/mod_dir.so
LoadModule mime_module {mods}/mod_mime.so
TypesConfig /etc/mime.types
User www-data
Group www-data
ServerName svc.pyscan.lab
Listen {ctx.address}:8080
DocumentRoot {www}
<Directory {www}>
    Require all granted
</Directory>
DirectoryIndex index.html
""",
    )
    return ["/usr/sbin/apache2", "-DFOREGROUND", "-d", str(d), "-f", str(conf)]


def _lighttpd(ctx: _Ctx) -> list[str]:
    www = _www(ctx)
    d = ctx.mkdir("", owner="www-data")  # it opens its error log after dropping root
    conf = ctx.write(
        "lighttpd.conf",
        f"""server.document-root = "{www}"
server.bind = "{ctx.address}"
server.port = 8081
server.pid-file = "{d}/lighttpd.pid"
server.errorlog = "{d}/error.log"
server.username = "www-data"
server.groupname = "www-data"
server.modules = ()
index-file.names = ("index.html")
""",
    )
    return ["/usr/sbin/lighttpd", "-D", "-f", str(conf)]


def _pyhttp(ctx: _Ctx) -> list[str]:
    www = _www(ctx)
    return ["/usr/bin/python3", "-m", "http.server", "--bind", ctx.address, "-d", str(www), "8000"]


def _vsftpd(ctx: _Ctx) -> list[str]:
    empty = ctx.mkdir("empty", mode=0o555)
    conf = ctx.write(
        "vsftpd.conf",
        f"""listen=YES
listen_ipv6=NO
listen_address={ctx.address}
listen_port=21
background=NO
anonymous_enable=YES
anon_root={empty}
no_anon_password=YES
local_enable=NO
write_enable=NO
isolate=NO
isolate_network=NO
seccomp_sandbox=NO
secure_chroot_dir={empty}
xferlog_enable=NO
vsftpd_log_file={ctx.dir}/vsftpd.log
pam_service_name=vsftpd
""",
        mode=0o600,
    )
    return ["/usr/sbin/vsftpd", str(conf)]


def _exim(ctx: _Ctx) -> list[str]:
    spool = ctx.mkdir("spool", owner="Debian-exim", mode=0o750)
    logs = ctx.mkdir("log", owner="Debian-exim", mode=0o750)
    conf = ctx.write(
        "exim.conf",
        f"""primary_hostname = svc.pyscan.lab
exim_user = Debian-exim
exim_group = Debian-exim
spool_directory = {spool}
log_file_path = {logs}/%slog
pid_file_path = {ctx.dir}/exim.pid
local_interfaces = {ctx.address}
daemon_smtp_ports = 25
host_lookup =
rfc1413_hosts =
acl_smtp_rcpt = acl_check_rcpt
begin acl
acl_check_rcpt:
  deny
begin routers
begin transports
""",
    )
    return ["/usr/sbin/exim4", "-C", str(conf), "-bdf"]


def _dovecot(ctx: _Ctx) -> list[str]:
    run = ctx.mkdir("run")
    state = ctx.mkdir("state")
    conf = ctx.write(
        "dovecot.conf",
        f"""base_dir = {run}
state_dir = {state}
instance_name = pyscan-dovecot
listen = {ctx.address}
protocols = imap pop3
log_path = {ctx.dir}/dovecot.log
ssl = yes
# Debian's default DH parameters: nmap's TLS probe offers only RSA and DHE key exchange,
# and dovecot closes without an alert when nothing is shared
ssl_dh = </usr/share/dovecot/dh.pem
ssl_cert = <{ctx.cert}
ssl_key = <{ctx.key}
mail_location = maildir:/nonexistent
passdb {{
  driver = static
  args = password=pyscan-lab-only
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}}
service imap-login {{
  inet_listener imap {{
    port = 143
  }}
  inet_listener imaps {{
    port = 993
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 110
  }}
  inet_listener pop3s {{
    port = 995
    ssl = yes
  }}
}}
""",
    )
    return ["/usr/sbin/dovecot", "-F", "-c", str(conf)]


def _redis(ctx: _Ctx) -> list[str]:
    data = ctx.mkdir("data", owner="redis", mode=0o750)
    argv = [
        "/usr/bin/redis-server",
        "--bind",
        ctx.address,
        "--port",
        "6379",
        "--daemonize",
        "no",
        "--protected-mode",
        "no",
        "--dir",
        str(data),
        "--save",
        "",
        "--appendonly",
        "no",
        "--logfile",
        "",
    ]
    return _as_user("redis", argv)


def _memcached(ctx: _Ctx) -> list[str]:
    return ["/usr/bin/memcached", "-u", "memcache", "-l", ctx.address, "-p", "11211", "-U", "0"]


def _mariadb(ctx: _Ctx) -> list[str]:
    data = ctx.mkdir("data", owner="mysql", mode=0o750)
    run = ctx.mkdir("run", owner="mysql")
    ctx.run(
        [
            "mariadb-install-db",
            "--no-defaults",
            f"--datadir={data}",
            "--user=mysql",
            "--skip-test-db",
            "--auth-root-authentication-method=socket",
        ],
        "mariadb-install-db",
        timeout=120,
    )
    return [
        "/usr/sbin/mariadbd",
        "--no-defaults",
        f"--datadir={data}",
        "--user=mysql",
        f"--bind-address={ctx.address}",
        "--port=3306",
        f"--socket={run}/mysqld.sock",
        f"--pid-file={run}/mysqld.pid",
        f"--log-error={ctx.dir}/error.log",
        "--skip-name-resolve",
        "--skip-grant-tables",  # greet every client (no Host '...' is not allowed)
        "--innodb-buffer-pool-size=16M",
        "--skip-log-bin",
    ]


def _pg_bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return found[-1].parent if found else None


def _postgres(ctx: _Ctx) -> list[str]:
    bindir = _pg_bindir()
    assert bindir is not None
    ctx.mkdir("", owner="postgres", mode=0o755)
    data = ctx.dir / "data"
    sock = ctx.dir / "sock"
    sock.mkdir()
    shutil.chown(sock, "postgres", _group_of("postgres"))
    initdb = [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]
    initdb += ["--no-sync", "-E", "UTF8", "--locale=C"]
    ctx.run(_as_user("postgres", initdb), "initdb", timeout=120)
    argv = [
        str(bindir / "postgres"),
        "-D",
        str(data),
        "-c",
        f"listen_addresses={ctx.address}",
        "-c",
        "port=5432",
        "-c",
        f"unix_socket_directories={sock}",
        "-c",
        "fsync=off",
        "-c",
        "shared_buffers=16MB",
    ]
    return _as_user("postgres", argv)


def _dnsmasq(ctx: _Ctx) -> list[str]:
    return [
        "/usr/sbin/dnsmasq",
        "-k",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        f"--listen-address={ctx.address}",
        "--port=53",
        f"--pid-file={ctx.dir}/dnsmasq.pid",
        f"--log-facility={ctx.dir}/dnsmasq.log",
        f"--address=/svc.pyscan.lab/{ctx.address}",
    ]


def _chrony(ctx: _Ctx) -> list[str]:
    conf = ctx.write(
        "chrony.conf",
        f"""bindaddress {ctx.address}
port 123
allow all
local stratum 10
cmdport 0
bindcmdaddress /
pidfile {ctx.dir}/chronyd.pid
""",
    )
    # -x: never touch the system clock; -d: foreground, log to stderr; -4: no [::]:123.
    return ["/usr/sbin/chronyd", "-4", "-d", "-x", "-f", str(conf)]


def _snmpd(ctx: _Ctx) -> list[str]:
    state = ctx.mkdir("state", owner="Debian-snmp", mode=0o750)
    conf = ctx.write(
        "snmpd.conf",
        """rocommunity public 198.18.0.0/15
sysLocation pyscan lab
sysContact nobody@svc.pyscan.lab
""",
    )
    return [
        "env",
        f"SNMP_PERSISTENT_DIR={state}",
        "MIBS=",
        "/usr/sbin/snmpd",
        "-f",
        "-C",
        "-c",
        str(conf),
        "-Lf",
        f"{ctx.dir}/snmpd.log",
        "-p",
        f"{ctx.dir}/snmpd.pid",
        "-u",
        "Debian-snmp",
        "-g",
        "Debian-snmp",
        "-I",
        "-smux",  # no SMUX listener on 0.0.0.0:199
        f"udp:{ctx.address}:161",
    ]


def _telnetd(ctx: _Ctx) -> list[str]:
    # inetutils' telnetd runs from an inetd only: inetutils' own, in the foreground (-d).
    # (BusyBox's standalone telnetd writes its option negotiation and the login prompt
    # separately, and nmap's answer then depends on how the two reads fall: flaky truth.)
    conf = ctx.write(
        "inetd.conf",
        f"{ctx.address}:telnet stream tcp nowait root /usr/sbin/telnetd telnetd\n",
    )
    return ["/usr/sbin/inetutils-inetd", "-d", f"--pidfile={ctx.dir}/inetd.pid", str(conf)]


def _v(version: str) -> str:
    return _upstream(version)


def _none(_version: str) -> None:
    return None


def _pg_version(version: str) -> str | None:
    # nmap tells PostgreSQL releases apart only by the source line numbers in the error
    # message its probe provokes; every release from 9.6 on reads "9.6.0 or later".
    major = re.match(r"(\d+)(?:\.(\d+))?", _upstream(version))
    if major is None:
        return None
    return "9.6.0 or later" if (int(major[1]), int(major[2] or 0)) >= (9, 6) else None


DAEMONS: Mapping[str, _Daemon] = {
    d.name: d
    for d in (
        _Daemon(
            "sshd",
            "openssh-server",
            "/usr/sbin/sshd",
            (
                _Port(
                    "tcp",
                    22,
                    "ssh",
                    "OpenSSH",
                    lambda v: f"{_upstream(v)} Debian {_revision(v)}",
                    greets=True,
                ),
            ),
            _sshd,
            ("ssh-keygen",),
        ),
        _Daemon(
            "nginx",
            "nginx",
            "/usr/sbin/nginx",
            (
                _Port("tcp", 80, "http", "nginx", _v),
                _Port("tcp", 443, "http", "nginx", _v, tunnel="ssl"),
            ),
            _nginx,
            ("openssl",),
        ),
        _Daemon(
            "apache2",
            "apache2",
            "/usr/sbin/apache2",
            (_Port("tcp", 8080, "http", "Apache httpd", _v),),
            _apache,
        ),
        _Daemon(
            "lighttpd",
            "lighttpd",
            "/usr/sbin/lighttpd",
            (_Port("tcp", 8081, "http", "lighttpd", _v),),
            _lighttpd,
        ),
        _Daemon(
            "pyhttp",
            "python3",
            "/usr/bin/python3",
            (_Port("tcp", 8000, "http", "SimpleHTTPServer", lambda v: "0.6"),),
            _pyhttp,
        ),
        _Daemon(
            "vsftpd",
            "vsftpd",
            "/usr/sbin/vsftpd",
            (_Port("tcp", 21, "ftp", "vsftpd", _v, greets=True),),
            _vsftpd,
        ),
        _Daemon(
            "exim",
            "exim4-daemon-light",
            "/usr/sbin/exim4",
            (_Port("tcp", 25, "smtp", "Exim smtpd", _v, greets=True),),
            _exim,
        ),
        _Daemon(
            "dovecot",
            "dovecot-core",
            "/usr/sbin/dovecot",
            (
                _Port("tcp", 110, "pop3", "Dovecot pop3d", _none, greets=True),
                _Port("tcp", 143, "imap", "Dovecot imapd", _none, greets=True),
                _Port("tcp", 993, "imap", "Dovecot imapd", _none, tunnel="ssl"),
                _Port("tcp", 995, "pop3", "Dovecot pop3d", _none, tunnel="ssl"),
            ),
            _dovecot,
            ("openssl",),
        ),
        _Daemon(
            "redis",
            "redis-server",
            "/usr/bin/redis-server",
            (_Port("tcp", 6379, "redis", "Redis key-value store", _v),),
            _redis,
            ("setpriv",),
        ),
        _Daemon(
            "memcached",
            "memcached",
            "/usr/bin/memcached",
            (_Port("tcp", 11211, "memcached", "Memcached", _v),),
            _memcached,
        ),
        _Daemon(
            "mariadb",
            "mariadb-server",
            "/usr/sbin/mariadbd",
            (
                _Port(
                    "tcp",
                    3306,
                    "mysql",
                    "MySQL",
                    lambda v: f"5.5.5-{_upstream(v)}-MariaDB-{_revision(v)}",
                    greets=True,
                ),
            ),
            _mariadb,
            ("mariadb-install-db",),
        ),
        _Daemon(
            "postgres",
            "postgresql",
            "postgres",
            (_Port("tcp", 5432, "postgresql", "PostgreSQL DB", _pg_version),),
            _postgres,
            ("setpriv",),
        ),
        _Daemon(
            "dnsmasq",
            "dnsmasq-base",
            "/usr/sbin/dnsmasq",
            (
                _Port("tcp", 53, "domain", "dnsmasq", _v),
                _Port("udp", 53, "domain", "dnsmasq", _v),
            ),
            _dnsmasq,
        ),
        _Daemon(
            "chrony",
            "chrony",
            "/usr/sbin/chronyd",
            (_Port("udp", 123, "ntp", "NTP", lambda v: "v4"),),
            _chrony,
        ),
        _Daemon(
            "snmpd",
            "snmpd",
            "/usr/sbin/snmpd",
            (
                _Port(
                    "udp",
                    161,
                    "snmp",
                    "SNMPv1 server; net-snmp SNMPv3 server",
                    _none,
                    nse="snmp-info",
                    probe_product="SNMPv1 server",
                ),
            ),
            _snmpd,
        ),
        _Daemon(
            "telnetd",
            "inetutils-telnetd",
            "/usr/sbin/telnetd",
            # nmap knows no product for its negotiation (only the generic telnet softmatch)
            (_Port("tcp", 23, "telnet", None, _none, greets=True),),
            _telnetd,
            ("inetutils-inetd",),
        ),
    )
}
"""Every daemon :func:`start_daemons` knows, by name."""


def _binary_present(d: _Daemon) -> bool:
    if d.name == "postgres":
        return _pg_bindir() is not None
    return shutil.which(d.binary) is not None


def missing_daemons(names: Iterable[str] | None = None) -> dict[str, str]:
    """``{daemon: reason}`` for the daemons that cannot run here (package not installed)."""
    out: dict[str, str] = {}
    for name in DAEMONS if names is None else names:
        d = DAEMONS[name]
        if package_version(d.package) is None:
            out[name] = f"Debian package {d.package} is not installed (scripts/install-daemons.sh)"
        elif not _binary_present(d):
            out[name] = f"{d.binary} is missing although {d.package} is installed"
        else:
            for tool in d.needs:
                if shutil.which(tool) is None:
                    out[name] = f"{tool} is missing (needed to set up {name})"
    return out


# --- the running set ------------------------------------------------------------------------


def daemon_lab_config(
    base: LabConfig | None = None, *, address: str = SVC_ADDRESS, host: str = SVC_HOST
) -> LabConfig:
    """A lab config with a daemon host (no IPv6, no lab listeners) added to ``base``.

    Without ``base``: a lab of the scanner and the daemon host only (fast to build).
    """
    svc = HostConfig(host, address, ports=())
    if base is None:
        return LabConfig(hosts=(svc,))
    return attrs.evolve(base, hosts=(*base.hosts, svc))


@attrs.define(eq=False)
class DaemonSet:
    """Daemons running in one lab host. A context manager: :meth:`stop` on exit."""

    lab: Lab
    host: str
    address: str
    directory: Path
    """Configurations, data, pid and log files (deleted by :meth:`stop`)."""
    truth: dict[Key, ServiceTruth] = attrs.field(factory=dict)
    """``(proto, port) -> ServiceTruth`` for every port of every running daemon."""
    processes: dict[str, subprocess.Popen[bytes]] = attrs.field(factory=dict)
    skipped: dict[str, str] = attrs.field(factory=dict)
    """Daemons not started here, with the reason (their package is missing)."""
    timings: dict[str, float] = attrs.field(factory=dict)
    """Seconds: ``prepare`` (configs, keys, initdb), ``ready`` (until every port answered)."""
    keep: bool = False
    """Leave :attr:`directory` in place after :meth:`stop` (for debugging)."""

    def __enter__(self) -> DaemonSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def ports(self, proto: str | None = None) -> list[Key]:
        """Every ``(proto, port)`` of the truth, sorted, optionally of one protocol."""
        return sorted(k for k in self.truth if proto is None or k[0] == proto)

    def log(self, daemon: str) -> str:
        """The daemon's captured output and its own log files (the last 4000 characters)."""
        parts = []
        for path in sorted((self.directory / daemon).rglob("*")):
            if path.suffix in (".log", ".err") and path.is_file():
                with contextlib.suppress(OSError):
                    text = path.read_text(errors="replace").strip()
                    if text:
                        parts.append(f"[{path.name}] {text}")
        return "\n".join(parts)[-4000:]

    def stop(self) -> None:
        """Stop every daemon: SIGTERM, then SIGKILL to what is left of it. Idempotent.

        Each daemon leads its own process group (the lab starts it in a new session); only
        processes of those groups that live in the host's namespace are ever signalled.
        """
        procs = list(self.processes.values())
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10.0
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # the leader lives: the group is ours
                proc.wait(5)
        for pid in _group_members({p.pid for p in procs}, self._netns_inode()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # a worker whose master is gone
        self.processes.clear()
        if not self.keep:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _netns_inode(self) -> int | None:
        try:
            return os.stat(NETNS_DIR / self.lab.host_ns(self.host)).st_ino
        except (OSError, KeyError):
            return None


def _group_members(pgids: set[int], netns_inode: int | None) -> list[int]:
    """Processes in one of ``pgids`` that live in the namespace with that inode."""
    if netns_inode is None or not pgids:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            pgrp = int(stat.rsplit(")", 1)[1].split()[2])
            if pgrp in pgids and os.stat(entry / "ns" / "net").st_ino == netns_inode:
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _tls_cert(ctx: _Ctx) -> None:
    tls = ctx.base / "tls"
    tls.mkdir(mode=0o755, exist_ok=True)
    argv = ["openssl", "req", "-x509", "-newkey", "rsa:2048"]
    argv += ["-nodes", "-days", "30", "-subj", "/CN=svc.pyscan.lab"]
    argv += ["-keyout", str(ctx.key), "-out", str(ctx.cert)]
    ctx.run(argv, "self-signed certificate")
    ctx.key.chmod(0o644)  # lab-only key; readable by every daemon's user


_DNS_QUERY = bytes.fromhex("abcd01000001000000000000") + b"\x07version\x04bind\x00\x00\x10\x00\x03"
_NTP_QUERY = b"\x23" + b"\x00" * 47
_SNMP_QUERY = bytes.fromhex(
    "302602010104067075626c6963a019020101020100020100300e300c06082b060102010101000500"
)
_UDP_PROBES = {53: _DNS_QUERY, 123: _NTP_QUERY, 161: _SNMP_QUERY}


def _answers(address: str, proto: str, port: int, *, greets: bool = False) -> bool:
    """One readiness attempt, from the current thread's namespace."""
    if proto == "tcp":
        try:
            with socket.create_connection((address, port), timeout=0.5) as sock:
                if greets:  # e.g. dovecot accepts before its auth process is ready
                    sock.settimeout(1.0)
                    return bool(sock.recv(1))
                return True
        except OSError:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.3)
        try:
            sock.sendto(_UDP_PROBES.get(port, b"\r\n"), (address, port))
            sock.recvfrom(4096)
        except OSError:
            return False
        return True


def start_daemons(
    lab: Lab,
    host: str = SVC_HOST,
    services: Iterable[str] | None = None,
    *,
    timeout: float = 60.0,
    keep: bool = False,
) -> DaemonSet:
    """Start real daemons in ``host``'s namespace and wait until every port answers.

    ``services``: names from :data:`DAEMONS` (default: all). Daemons whose package is
    missing are skipped (see :attr:`DaemonSet.skipped`); a daemon that is installed but
    does not come up within ``timeout`` seconds raises :class:`LabSetupError` with its
    log, after stopping the others.
    """
    names = list(DAEMONS) if services is None else list(services)
    unknown = [n for n in names if n not in DAEMONS]
    if unknown:
        raise KeyError(f"unknown daemons {unknown}; known: {sorted(DAEMONS)}")
    cfg = next((h for h in lab.config.hosts if h.name == host), None)
    if cfg is None:
        raise KeyError(f"no lab host named {host!r}")
    address = cfg.addresses[0]
    base = Path(tempfile.mkdtemp(prefix=f"pyscan-daemons-{lab.id}-"))
    base.chmod(0o755)  # daemons drop to their own users and must reach their files
    skipped = missing_daemons(names)
    daemons = [DAEMONS[n] for n in names if n not in skipped]
    ds = DaemonSet(lab, host, address, base, skipped=skipped, keep=keep)
    try:
        _start(ds, daemons, timeout)
    except BaseException:
        ds.stop()
        raise
    return ds


def _start(ds: DaemonSet, daemons: list[_Daemon], timeout: float) -> None:
    t0 = time.monotonic()
    ctxs = {
        d.name: _Ctx(ds.lab, ds.host, ds.address, ds.directory, ds.directory / d.name)
        for d in daemons
    }
    for ctx in ctxs.values():
        ctx.dir.mkdir(mode=0o755)
    if any("openssl" in d.needs for d in daemons):
        _tls_cert(next(iter(ctxs.values())))
    versions = {d.name: package_version(d.package) or "" for d in daemons}
    # preparation (initdb, mariadb-install-db, host keys) in parallel: it dominates start-up
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = {d.name: pool.submit(d.setup, ctxs[d.name]) for d in daemons}
        argvs = {name: f.result() for name, f in futures.items()}
    ds.timings["prepare"] = time.monotonic() - t0
    for d in daemons:
        log = ctxs[d.name].dir / "out.log"
        wrapped = ["sh", "-c", 'log=$1; shift; exec "$@" >>"$log" 2>&1', "sh", str(log)]
        ds.processes[d.name] = ds.lab.popen([*wrapped, *argvs[d.name]], host=ds.host)
        for p in d.ports:
            ds.truth[(p.proto, p.port)] = ServiceTruth(
                daemon=d.name,
                proto=p.proto,
                port=p.port,
                service=p.service,
                tunnel=p.tunnel,
                product=p.product,
                version=p.version(versions[d.name]),
                package=d.package,
                package_version=versions[d.name],
                nse=p.nse,
                probe_product=p.probe_product,
            )
    owner = {k: t.daemon for k, t in ds.truth.items()}
    greets = {(p.proto, p.port) for d in daemons for p in d.ports if p.greets}
    pending = set(ds.truth)
    deadline = time.monotonic() + timeout
    with ds.lab.scanner_netns():
        while pending:
            for key in sorted(pending):
                if _answers(ds.address, *key, greets=key in greets):
                    pending.discard(key)
            dead = {n for n, p in ds.processes.items() if p.poll() is not None}
            if dead:
                name = sorted(dead)[0]
                code = ds.processes[name].returncode
                raise LabSetupError(f"daemon {name} exited ({code}): {ds.log(name).strip()}")
            if pending and time.monotonic() > deadline:
                late = ", ".join(f"{owner[k]} {k[1]}/{k[0]}" for k in sorted(pending))
                logs = "; ".join(f"{owner[k]}: {ds.log(owner[k])[-500:]}" for k in pending)
                raise LabSetupError(f"daemons not answering after {timeout}s: {late}; {logs}")
            if pending:
                time.sleep(0.1)
    ds.timings["ready"] = time.monotonic() - t0


# --- nmap's answers -------------------------------------------------------------------------


def nmap_services(
    lab: Lab,
    address: str,
    ports: Iterable[Key],
    *,
    nmap: str = "nmap",
    extra: Iterable[str] = (),
    timeout: float = 300.0,
) -> dict[Key, NmapService]:
    """Run ``nmap -sV`` from the scanner's namespace on ``ports`` and parse its XML.

    TCP and UDP ports are scanned by two nmap processes in parallel.
    """
    keys = sorted(set(ports))
    jobs: list[list[str]] = []
    for proto, flag in (("tcp", "-sS"), ("udp", "-sU")):
        nums = [str(p) for pr, p in keys if pr == proto]
        if nums:
            jobs.append([nmap, flag, "-sV", "-n", "-Pn", "-p", ",".join(nums), *extra])
            jobs[-1] += ["-oX", "-", address]
    out: dict[Key, NmapService] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda argv: lab.run(argv, timeout=timeout), jobs))
    for argv, res in zip(jobs, results, strict=True):
        if res.returncode != 0:
            raise LabSetupError(f"{shlex.join(argv)} failed: {res.stderr.strip()}")
        out.update(_parse_nmap_xml(res.stdout))
    return out


def _parse_nmap_xml(text: str) -> dict[Key, NmapService]:
    root = ET.fromstring(text)  # noqa: S314 - nmap's own output, run by us
    out: dict[Key, NmapService] = {}
    for port in root.iter("port"):
        state = port.find("state")
        svc = port.find("service")
        get = svc.get if svc is not None else (lambda _k: None)
        item = NmapService(
            proto=port.get("protocol", ""),
            port=int(port.get("portid", "0")),
            state=state.get("state", "") if state is not None else "",
            service=get("name") or "",
            tunnel=get("tunnel"),
            product=get("product"),
            version=get("version"),
            extrainfo=get("extrainfo"),
            method=get("method"),
        )
        out[item.key] = item
    return out


def truth_table(
    truth: Mapping[Key, ServiceTruth], seen: Mapping[Key, NmapService] | None = None
) -> str:
    """The truth as a text table; with nmap's answers, one column more and a mark per row."""
    rows = []
    for key, t in sorted(truth.items(), key=lambda item: (item[0][0], item[0][1])):
        line = f"{t.port}/{t.proto:<4} {t.name:<11} {t.product!r:<40} {t.version!r:<34}"
        line += f" {t.package} {t.package_version}"
        if seen is not None:
            n = seen.get(key)
            same = n is not None and (n.name, n.product, n.version) == (
                t.name,
                t.product,
                t.version,
            )
            got = "absent" if n is None else f"{n.name} {n.product!r} {n.version!r}"
            line = f"{'ok  ' if same else 'DIFF'} {line}" + ("" if same else f" | nmap: {got}")
        rows.append(line)
    return "\n".join(rows)


def _main() -> None:  # pragma: no cover - a manual tool
    """``python -m pyscan.testing.daemons [NAME...]``: bring daemons up, compare with nmap."""
    import sys  # noqa: PLC0415

    services = sys.argv[1:] or None
    out = sys.stdout
    with Lab(daemon_lab_config()) as lab, start_daemons(lab, services=services) as ds:
        out.write(f"lab {lab.id}: daemons up, timings {ds.timings}\n")
        for name, why in ds.skipped.items():
            out.write(f"skipped {name}: {why}\n")
        t0 = time.monotonic()
        seen = nmap_services(lab, ds.address, ds.ports())
        out.write(f"nmap -sV took {time.monotonic() - t0:.1f}s\n")
        out.write(truth_table(ds.truth, seen) + "\n")


if __name__ == "__main__":  # pragma: no cover
    _main()
