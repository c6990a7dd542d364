#!/usr/bin/env bash
# Every homelab host has a record.
set -euo pipefail
zone="${PHX_GUEST_ROOT:-}/etc/dnsmasq.d/homelab.conf"
for host in dns proxy monitor apps; do
    grep -q "/$host.homelab.lan/" "$zone" || { echo "no record for $host" >&2; exit 1; }
    echo "record for $host.homelab.lan: ok"
done
