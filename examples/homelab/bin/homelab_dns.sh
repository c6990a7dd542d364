#!/usr/bin/env bash
# Application script of CT 101 (dns): runs inside the container from /tmp/phoenix_run as
# `homelab_dns.sh <CTID>`, next to the three Phoenix config files phx pushed with it.
# PHX_GUEST_ROOT is set only in phx's simulated cluster; on a real container it is empty.
set -euo pipefail
root="${PHX_GUEST_ROOT:-}"
here="$(cd "$(dirname "$0")" && pwd)"
echo "homelab_dns: writing the homelab zone for CT $1"
test -f "$here/phoenix_lxc_configs.json" || { echo "phoenix_lxc_configs.json was not pushed" >&2; exit 1; }
mkdir -p "$root/etc/dnsmasq.d" "$root/usr/local/bin"
cat > "$root/etc/dnsmasq.d/homelab.conf" <<ZONE
local=/homelab.lan/
address=/dns.homelab.lan/192.168.50.10
address=/proxy.homelab.lan/192.168.50.11
address=/monitor.homelab.lan/192.168.50.12
address=/apps.homelab.lan/192.168.50.21
ZONE
cat > "$root/usr/local/bin/dns_ok" <<'CHECK'
#!/usr/bin/env bash
# Health check: the zone is in place.
grep -q '^local=/homelab.lan/' "${PHX_GUEST_ROOT:-}/etc/dnsmasq.d/homelab.conf"
CHECK
chmod +x "$root/usr/local/bin/dns_ok"
echo "homelab_dns: done"
