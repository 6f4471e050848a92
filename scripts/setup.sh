#!/usr/bin/env bash
# Everything `npm start` and `npm test` need, installed idempotently:
# the lab's Debian packages, the npm packages, the pinned Pulumi toolchain.
# The lab's base image is built (once, cached) by `drove lab up`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
log() { echo "drove setup: $*" >&2; }

# Debian packages the lab uses on this machine.
packages=(debootstrap systemd-container openssh-client swtpm swtpm-tools tpm2-tools docker-registry apt-cacher-ng iproute2 iptables etcd-client curl ca-certificates busybox-static skopeo umoci)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "drove setup: these Debian packages are missing: ${missing[*]}. Either run this as root, or install them with 'sudo apt-get install ${missing[*]}'." >&2
    exit 1
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
# Debian's docker-registry starts a system-wide registry on :5000 when systemd
# runs; the lab runs its own on its bridge instead.
# The same for apt-cacher-ng: the lab runs its own, bound to its bridge.
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl disable --now docker-registry apt-cacher-ng >/dev/null 2>&1 || true
fi

# npm packages, reinstalled only when the lock file changed.
stamp=node_modules/.drove-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$want" > "$stamp"
fi

# The compiled build that programs importing "drove" and the provider plugin
# load (incremental: a second run with no change takes a moment).
flock .drove-build.lock npm run --silent build >&2

# The Pulumi CLI and language host at the pinned version (cached).
bash scripts/setup-pulumi.sh >/dev/null
