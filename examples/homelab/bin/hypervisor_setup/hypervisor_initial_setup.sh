#!/usr/bin/env bash
# Host step 1 (Phoenix order): base host settings. Called as `<script> <hypervisor config>`.
# This example only checks and reports; a real site installs packages and configures apt here.
set -euo pipefail
config="$1"
test -r "$config" || { echo "cannot read $config" >&2; exit 1; }
if [ -n "${PHX_SIM_GUESTS:-}" ]; then
    echo "simulated node ${PHX_NODE:-?}: nothing to install"
    exit 0
fi
for tool in pct qm pvesm; do
    command -v "$tool" >/dev/null || { echo "$tool not found: is this a Proxmox VE node?" >&2; exit 1; }
done
echo "node $(hostname) runs $(pveversion 2>/dev/null || echo 'Proxmox VE')"
