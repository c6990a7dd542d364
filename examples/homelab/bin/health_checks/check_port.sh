#!/usr/bin/env bash
# Host-side health check: `check_port.sh HOST PORT` succeeds when HOST accepts TCP on PORT.
# In phx's simulated cluster (PHX_SIM_GUESTS set) there is no network to probe.
set -euo pipefail
host="$1" port="$2"
if [ -n "${PHX_SIM_GUESTS:-}" ]; then
    echo "simulated cluster: assuming $host:$port answers"
    exit 0
fi
if timeout 3 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
    echo "$host:$port accepts connections"
else
    echo "$host:$port does not answer" >&2
    exit 1
fi
