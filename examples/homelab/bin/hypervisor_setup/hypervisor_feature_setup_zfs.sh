#!/usr/bin/env bash
# Host step 2: ZFS pools and datasets. Called as `<script> --config <file> --mode safe|force-destructive`.
# phx passes --mode safe unless the operator gave --allow-destructive. This example reports what
# it would create and never touches a disk: a real site's script creates pools here.
set -euo pipefail
config="" mode="safe"
while [ "$#" -gt 0 ]; do
    case "$1" in
        --config) config="$2"; shift 2 ;;
        --mode) mode="$2"; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
test -r "$config" || { echo "cannot read $config" >&2; exit 1; }
echo "zfs: mode $mode (destructive operations ${PHX_ALLOW_DESTRUCTIVE:-0})"
grep -o '"name": "[a-z-]*", "pool"' "$config" | sed 's/"name": "\([a-z-]*\)".*/zfs: dataset \1 wanted/' || true
