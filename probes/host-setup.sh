#!/usr/bin/env bash
# Prepare a Debian/Ubuntu host to run tracehound's bcc probes. Idempotent: a host that
# is already set up costs a few dpkg queries and no network.
#
#   - python3-bpfcc + bpfcc-tools (bcc from the distribution; the PyPI "bcc" is unrelated)
#   - python3-venv (so the machine's python3 can make .venv)
#   - kernel headers for bcc: the exact package when one exists, else the closest
#     Debian headers linked under /lib/modules/$(uname -r)/{build,source}
#   - tracefs / debugfs mounted
#
# Without root it only reports what is missing; BPF tests then skip with the reason.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
KREL="$(uname -r)"
MODDIR="${TRACEHOUND_MODULES_ROOT:-/lib/modules}/$KREL"  # override: tests only
did=()
say() { printf 'host-setup: %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    say "not root: skipping host set-up. As root this would install python3-bpfcc,"
    say "bpfcc-tools and kernel headers for $KREL, link them under $MODDIR and mount"
    say "tracefs. Run 'sudo probes/host-setup.sh' (BPF tests skip until then)."
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    say "no apt-get: install bcc (python3-bcc) and kernel headers with your package manager"
    exit 0
fi

apt_updated=0
apt_update_once() {
    if [ "$apt_updated" -eq 0 ]; then
        say "apt-get update"
        apt-get -o DPkg::Lock::Timeout=300 update -qq
        apt_updated=1
        did+=("apt-get update")
    fi
}

lists_present() { compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; }

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

candidate() {
    # The version apt would install, empty when the package is unknown.
    local c
    c="$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')"
    [ "$c" = "(none)" ] && c=""
    printf '%s' "$c"
}

ensure_pkgs() {
    local missing=()
    for p in "$@"; do installed "$p" || missing+=("$p"); done
    [ "${#missing[@]}" -eq 0 ] && return 0
    apt_update_once
    say "installing ${missing[*]}"
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    did+=("installed ${missing[*]}")
}

# --- bcc and venv support -------------------------------------------------------------
ensure_pkgs python3-bpfcc bpfcc-tools python3-venv

# --- kernel headers -------------------------------------------------------------------
headers_ok() {
    # bcc needs build/ (Makefile, generated config) and kconfig.h (in -common for Debian).
    [ -e "$MODDIR/build/Makefile" ] || return 1
    [ -e "$MODDIR/build/include/linux/kconfig.h" ] || [ -e "$MODDIR/source/include/linux/kconfig.h" ]
}

link_closest_headers() {
    local arch meta dir common
    arch="$(dpkg --print-architecture)"
    meta="linux-headers-$arch"
    ensure_pkgs "$meta"
    # The newest plain flavour, e.g. /usr/src/linux-headers-6.1.0-56-amd64 (not -rt-/-cloud-).
    dir="$(ls -d /usr/src/linux-headers-*-"$arch" 2>/dev/null \
        | grep -E "/linux-headers-[0-9.]+-[0-9]+-$arch\$" | sort -V | tail -n 1 || true)"
    [ -n "$dir" ] || dir="$(ls -d /usr/src/linux-headers-*-"$arch" 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -z "$dir" ]; then
        say "WARNING: $meta installed no /usr/src/linux-headers-*-$arch; bcc cannot compile"
        return 0
    fi
    common="${dir%-"$arch"}-common"
    mkdir -p "$MODDIR"
    ln -sfn "$dir" "$MODDIR/build"
    if [ -d "$common" ]; then
        ln -sfn "$common" "$MODDIR/source"
    else
        ln -sfn "$dir" "$MODDIR/source"
    fi
    say "no headers package for $KREL: linked $MODDIR/build -> $dir, source -> $(readlink "$MODDIR/source")"
    did+=("linked closest headers ($(basename "$dir"))")
}

if headers_ok; then
    say "kernel headers present: $MODDIR/build -> $(readlink -f "$MODDIR/build")"
else
    exact="linux-headers-$KREL"
    if installed "$exact"; then
        # Installed but the links are gone (e.g. /lib/modules wiped): fall through to closest.
        link_closest_headers
    else
        # Package lists never fetched: update before concluding there is no exact package.
        [ -n "$(candidate "$exact")" ] || lists_present || apt_update_once
        if [ -n "$(candidate "$exact")" ]; then
            ensure_pkgs "$exact"
        fi
        headers_ok || link_closest_headers
    fi
fi

# --- tracefs / debugfs ----------------------------------------------------------------
mounted() { awk -v m="$1" '$2 == m {found=1} END {exit !found}' /proc/mounts; }

mount_fs() {
    local type="$1" where="$2"
    if mounted "$where"; then
        return 0
    fi
    if [ -d "$where" ] && mount -t "$type" "$type" "$where" 2>/dev/null; then
        say "mounted $type at $where"
        did+=("mounted $type")
    else
        say "WARNING: could not mount $type at $where (not allowed here?)"
    fi
}

mount_fs debugfs /sys/kernel/debug
mount_fs tracefs /sys/kernel/tracing

if [ "${#did[@]}" -eq 0 ]; then
    say "host already set up (bcc, headers, tracefs): nothing to do"
else
    say "done: $(IFS=';'; echo "${did[*]}")"
fi
