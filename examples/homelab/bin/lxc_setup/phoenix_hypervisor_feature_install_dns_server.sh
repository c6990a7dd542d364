#!/usr/bin/env bash
# Feature `dns_server`: runs on the node as `<script> <CTID>`; lays down the resolver config.
set -euo pipefail
if [ "$#" -ne 1 ]; then
    echo "usage: $0 <CTID>" >&2
    exit 2
fi
ctid="$1"
. "$(dirname "$0")/../lib/guest.sh"
echo "dns_server: configuring a resolver in CT $ctid"
cat <<CONF | guest_write "$ctid" /etc/dnsmasq.conf
domain-needed
bogus-priv
no-resolv
server=9.9.9.9
conf-dir=/etc/dnsmasq.d,*.conf
CONF
echo "dns_server: done"
