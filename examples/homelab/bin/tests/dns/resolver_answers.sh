#!/usr/bin/env bash
# The resolver's own health check passes. phx runs tests inside the guest with PHX_GUEST_ID,
# PHX_GUEST_KIND, PHX_NODE and PHX_CONFIG_DIR set, like every site script.
set -euo pipefail
root="${PHX_GUEST_ROOT:-}"
"$root/usr/local/bin/dns_ok"
echo "dns_ok: the homelab zone is served by ${PHX_GUEST_KIND:?} ${PHX_GUEST_ID:?} on ${PHX_NODE:?}"
