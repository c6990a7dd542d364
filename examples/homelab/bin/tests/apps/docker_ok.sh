#!/usr/bin/env bash
# Docker is installed in the apps VM.
root="${PHX_GUEST_ROOT:-}"
if [ -f "$root/etc/phx/docker.installed" ] || command -v docker >/dev/null 2>&1; then
    echo "docker present"
    exit 0
fi
echo "docker missing" >&2
exit 1
