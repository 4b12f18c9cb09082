# Sourced by scripts/build-arm64 and scripts/kernel-test: the Debian trixie amd64 chroot that
# build-arm64 makes (with the arm64 libraries in its multiarch folders), and one way into it.
ARM64_ROOT="${TAGOEDGE_CACHE:-/var/cache/tagoedge-test}/arm64/trixie-amd64"

# Runs a shell command in the chroot, with /proc, /dev and $2 (the repository, at /src) mounted
# in a private mount namespace that dies with the command, also when it is interrupted.
in_arm64_root() {
  unshare --mount --propagation private -- /bin/bash -c '
    set -e
    root="$1"; repo="$2"; shift 2
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    mkdir -p "$root/src"
    mount --bind "$repo" "$root/src"
    cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
    exec chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
      LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive /bin/bash -c "$*"
  ' in_root "$ARM64_ROOT" "$1" "${@:2}"
}
