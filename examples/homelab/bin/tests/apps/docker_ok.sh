#!/usr/bin/env bash
# Docker is installed in the apps VM.
root="${PHX_GUEST_ROOT:-}"
if [ -f "$root/etc/phx/docker.installed" ] || command -v docker >/dev/null 2>&1; then
    echo "docker present in ${PHX_GUEST_KIND:?} ${PHX_GUEST_ID:?} on ${PHX_NODE:?}"
    exit 0
fi
echo "docker missing" >&2
exit 1
