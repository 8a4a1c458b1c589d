#!/usr/bin/env bash
# Install the Debian packages whose daemons pyscan.testing.daemons runs inside the lab
# (service/version detection tests and benchmarks). Run as root:
#     bash scripts/install-daemons.sh            install (prints the time it took)
#     bash scripts/install-daemons.sh --list     print the package names only
#
# Installing must not start or enable any system service in the root namespace: a
# policy-rc.d that answers 101 ("action forbidden") is put in place for the install
# (an existing one is left alone), and any daemon of these packages that started anyway
# is stopped afterwards, by the process id it got during the install; the systemd units and
# rc links the install enabled are disabled again (never ones that were there before).
#
# Package choices: exim4-daemon-light rather than postfix (one foreground process,
# `exim4 -bdf` with a small configuration of our own, no queue-manager tree to set up);
# dnsmasq-base rather than dnsmasq (the binary without the system service); inetutils'
# telnetd, run from inetutils-inetd in the foreground (busybox's standalone telnetd gives
# nmap answers that depend on timing); nginx (Debian 12's nginx-light is nginx plus one
# module).
set -euo pipefail

PACKAGES=(
    openssh-server
    nginx
    apache2
    lighttpd
    openssl
    vsftpd
    exim4-daemon-light
    dovecot-imapd
    dovecot-pop3d
    redis-server
    memcached
    mariadb-server
    postgresql
    dnsmasq-base
    chrony
    snmpd
    inetutils-telnetd
    inetutils-inetd
    python3
)
# Daemons (process names) these packages could start during the install.
DAEMONS='^(sshd|nginx|apache2|lighttpd|vsftpd|exim4|dovecot|redis-server|memcached|mariadbd|mysqld|postgres|dnsmasq|chronyd|snmpd|inetutils-inetd|inetd|syslogd|telnetd)$'

if [ "${1:-}" = "--list" ]; then
    printf '%s\n' "${PACKAGES[@]}"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "install-daemons.sh: run as root (apt-get install)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true

start=$(date +%s.%N)
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    apt-get update -qq
fi

policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# pyscan install-daemons.sh: no service starts during the install\nexit 101\n' \
        >"$policy"
    chmod 755 "$policy"
    made_policy=1
fi
cleanup() {
    if [ "$made_policy" = 1 ]; then rm -f "$policy"; fi
}
trap cleanup EXIT

before=$(pgrep -d ' ' -f . || true)
links() { find /etc/systemd/system /etc/rc[0-6S].d -type l 2>/dev/null | sort; }
links_before=$(links)
# Packages that are not available (another Debian release) are skipped with a message.
available=()
for pkg in "${PACKAGES[@]}"; do
    if apt-cache show "$pkg" >/dev/null 2>&1; then
        available+=("$pkg")
    else
        echo "install-daemons.sh: skipping $pkg (not in the package lists)" >&2
    fi
done
apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${available[@]}" >/dev/null

# Stop any daemon the install started anyway (only processes that did not exist before).
for pid in $(pgrep -d ' ' -f . || true); do
    case " $before " in *" $pid "*) continue ;; esac
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    if [[ "$comm" =~ $DAEMONS ]]; then
        echo "install-daemons.sh: stopping $comm (pid $pid) started by the install" >&2
        kill "$pid" 2>/dev/null || true
    fi
done

# Undo the enabling the packages' maintainer scripts did (systemd units, sysv rc links),
# only for links this install created.
for link in $(comm -13 <(echo "$links_before") <(links)); do
    name=$(basename "$link")
    case "$link" in
    /etc/systemd/system/*.wants/*)
        if command -v systemctl >/dev/null; then
            systemctl disable --no-reload --quiet "$name" >/dev/null 2>&1 || rm -f "$link"
        else
            rm -f "$link"
        fi
        ;;
    /etc/rc[0-6S].d/S*)
        update-rc.d "${name#S[0-9][0-9]}" disable >/dev/null 2>&1 || true
        ;;
    esac
done

end=$(date +%s.%N)
awk -v n="${#available[@]}" -v a="$start" -v b="$end" \
    'BEGIN { printf "install-daemons.sh: %d packages ready in %.1f s\n", n, b - a }'
