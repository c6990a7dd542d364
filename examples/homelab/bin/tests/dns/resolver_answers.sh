#!/usr/bin/env bash
# The resolver's own health check passes.
set -euo pipefail
root="${PHX_GUEST_ROOT:-}"
"$root/usr/local/bin/dns_ok"
echo "dns_ok: the homelab zone is served"
