#!/usr/bin/env bash
# Builds the lab's CoreOS-like base image: a Debian bookworm root file system
# with systemd, sshd and the container and cluster tooling drove manages.
# Machines share it read-only and each writes to its own overlay.
#
#   build-image.sh DEST
#
# Builds into DEST.partial and renames it to DEST only when complete, so that a
# crashed build is never mistaken for an image. Needs root and debootstrap.
set -euo pipefail
dest=${1:?usage: build-image.sh DEST}
[ "$(id -u)" = 0 ] || { echo "drove lab: building the image needs root (debootstrap, chroot). Run as root, or build it once with sudo." >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "drove lab: debootstrap is not installed. Install it with 'apt-get install debootstrap', or run 'npm run setup' which installs the lab's packages." >&2; exit 1; }

# The mirror the machine's own apt sources name (deb822 or one-line style).
mirror=${DROVE_LAB_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
  [ -n "$mirror" ] || mirror=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
fi

# What every machine has, as CoreOS had it: an init, sshd, container runtimes,
# etcd, TPM tools. Keep in step with IMAGE_PACKAGES in integration/lab/image.ts.
packages=(${DROVE_LAB_PACKAGES:?the package list comes from image.ts})

mkdir -p "$(dirname "$dest")"
# One builder at a time: a second lab booting meanwhile waits, then finds the image.
exec 9>"$dest.lock"
flock 9
if [ -f "$dest/.drove-image-complete" ]; then exit 0; fi
part="$dest.partial"
rm -rf "$part"
echo "drove lab: debootstrap bookworm from $mirror into $part" >&2
debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,openssh-server,iproute2,ca-certificates bookworm "$part" "$mirror" >&2

cp /etc/resolv.conf "$part/etc/resolv.conf"
mount -t proc proc "$part/proc"
trap 'umount "$part/proc" 2>/dev/null || true' EXIT
# Keep services from starting inside the chroot while packages install.
printf '#!/bin/sh\nexit 101\n' > "$part/usr/sbin/policy-rc.d"; chmod +x "$part/usr/sbin/policy-rc.d"
echo "drove lab: installing ${packages[*]}" >&2
chroot "$part" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}" >&2
chroot "$part" apt-get clean
rm -f "$part/usr/sbin/policy-rc.d"
umount "$part/proc"; trap - EXIT

# Per-machine identity is written at boot time by the lab, never baked in.
rm -f "$part"/etc/ssh/ssh_host_*
: > "$part/etc/machine-id"
rm -f "$part/var/lib/dbus/machine-id"
echo "localhost" > "$part/etc/hostname"
rm -f "$part/etc/resolv.conf"; : > "$part/etc/resolv.conf"
# The lab configures each machine's address from outside (its own network
# namespace); no DHCP or resolver inside.
# Runtimes and etcd are started by drove, not at boot: the image only ships them.
for unit in docker.service docker.socket containerd.service etcd.service podman.service podman.socket \
            podman-auto-update.timer podman-restart.service docker-registry.service haproxy.service nftables.service \
            apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
  chroot "$part" systemctl disable "$unit" >/dev/null 2>&1 || true
done
chroot "$part" systemctl enable ssh.service >/dev/null 2>&1 || true
chroot "$part" systemctl mask systemd-networkd-wait-online.service getty@tty1.service console-getty.service >/dev/null 2>&1 || true
# sshd: keys only, and fast.
cat > "$part/etc/ssh/sshd_config.d/drove.conf" <<'CONF'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxSessions 64
MaxStartups 64:30:128
CONF
# The OS release, CoreOS style: the image says what it is.
cat > "$part/etc/drove-release" <<REL
DROVE_IMAGE=lab
DROVE_IMAGE_PACKAGES="${packages[*]}"
REL
touch "$part/.drove-image-complete"
rm -rf "$dest"
mv "$part" "$dest"
echo "drove lab: image ready at $dest" >&2
