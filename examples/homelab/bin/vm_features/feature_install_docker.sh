#!/usr/bin/env bash
# VM feature `docker`: phx stages this script into the VM and runs it there through the guest
# agent as `feature_install_docker.sh <VMID>`. Idempotent.
set -euo pipefail
root="${PHX_GUEST_ROOT:-}"
marker="$root/etc/phx/docker.installed"
if [ -f "$marker" ]; then
    echo "docker: already installed"
    exit 0
fi
if [ -z "$root" ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q docker.io
fi
mkdir -p "$(dirname "$marker")"
echo "installed for VM $1" > "$marker"
echo "docker: installed"
