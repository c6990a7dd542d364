# Helpers for host-side feature scripts: act inside a container through `pct` on a Proxmox
# node, or inside the guest directory of phx's simulated cluster (PHX_SIM_GUESTS), so the same
# script works on both. Source it: . "$(dirname "$0")/../lib/guest.sh"

guest_run() { # CTID CMD [ARGS...]: run a command inside the container
    local ctid="$1"; shift
    if [ -n "${PHX_SIM_GUESTS:-}" ]; then
        (cd "$PHX_SIM_GUESTS/$ctid" && PHX_GUEST_ROOT="$PHX_SIM_GUESTS/$ctid" "$@")
    else
        pct exec "$ctid" -- "$@"
    fi
}

guest_write() { # CTID PATH: write stdin to PATH inside the container
    local ctid="$1" path="$2"
    if [ -n "${PHX_SIM_GUESTS:-}" ]; then
        mkdir -p "$PHX_SIM_GUESTS/$ctid$(dirname "$path")"
        cat > "$PHX_SIM_GUESTS/$ctid$path"
    else
        local tmp
        tmp="$(mktemp)"
        cat > "$tmp"
        pct exec "$ctid" -- mkdir -p "$(dirname "$path")"
        pct push "$ctid" "$tmp" "$path"
        rm -f "$tmp"
    fi
}
