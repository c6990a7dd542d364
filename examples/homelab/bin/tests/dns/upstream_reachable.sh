#!/usr/bin/env bash
# Deliberately failing example: the homelab has no upstream resolver configured for
# `homelab.lan` itself, so this check reports the gap (exit 1).
zone="${PHX_GUEST_ROOT:-}/etc/dnsmasq.d/homelab.conf"
if grep -q '^server=/homelab.lan/' "$zone" 2>/dev/null; then
    echo "upstream for homelab.lan configured"
    exit 0
fi
echo "no upstream server for homelab.lan in $zone"
exit 1
