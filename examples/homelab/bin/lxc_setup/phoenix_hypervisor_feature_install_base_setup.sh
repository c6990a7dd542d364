#!/usr/bin/env bash
# Feature `base_setup`: runs on the node as `<script> <CTID>` (Phoenix convention).
# Marks the container as set up; a real site would install its base packages here.
set -euo pipefail
if [ "$#" -ne 1 ]; then
    echo "usage: $0 <CTID>" >&2
    exit 2
fi
ctid="$1"
. "$(dirname "$0")/../lib/guest.sh"
echo "base_setup: preparing CT $ctid (guest id ${PHX_GUEST_ID:-?} on node ${PHX_NODE:-?})"
printf 'base_setup applied by phx to CT %s\n' "$ctid" | guest_write "$ctid" /etc/phx/base_setup
echo "base_setup: done"
