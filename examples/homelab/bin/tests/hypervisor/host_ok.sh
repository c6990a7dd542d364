#!/usr/bin/env bash
# Hypervisor smoke test: the node has a usable shell environment.
set -euo pipefail
uname -s
echo "host ok"
