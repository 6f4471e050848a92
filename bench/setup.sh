#!/usr/bin/env bash
# Installs what the benchmark compares drove with, pinned, cached outside the
# repo (under $DROVE_CACHE, default ~/.cache/drove), idempotent:
#
#   - Ansible, from Debian's packages (`ansible`: ansible-core plus the
#     community collections, community.docker among them);
#   - pyinfra, from PyPI, in a virtualenv under $DROVE_CACHE/bench;
#   - the `pulumi-resource-command` provider plugin at the version of the
#     `@pulumi/command` npm SDK in package.json, installed into PULUMI_HOME's
#     plugins folder as `pulumi plugin install` would (plugin acquisition
#     stays disabled at run time).
#
# The plugin: (1) an installed one is kept; (2) the official release is tried
# (what a user on the open internet gets); (3) it is built from its published
# Go module, the way scripts/setup-pulumi.sh builds the CLI; (4) where the
# module proxy does not serve that module, from a source checkout named by
# DROVE_COMMAND_SRC (a git repository of pulumi/pulumi-command, or a folder
# holding its `provider/` at that version).
#
# Prints `KEY=value` lines (ANSIBLE_PLAYBOOK, PYINFRA, PULUMI_HOME) on stdout;
# progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${DROVE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/drove}
pulumi_home=${PULUMI_HOME:-$cache/pulumi-home}
pyinfra_version=${DROVE_BENCH_PYINFRA:-3.10.0}
command_version=$(node -p "require('$here/package.json').devDependencies['@pulumi/command']")
log() { echo "drove bench setup: $*" >&2; }

# --- Ansible (Debian) -------------------------------------------------------
if ! command -v ansible-playbook >/dev/null || [ ! -d /usr/lib/python3/dist-packages/ansible_collections/community/docker ]; then
  log "installing Ansible from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends ansible >&2 || { apt-get update >&2 && apt-get install -y --no-install-recommends ansible >&2; }
fi

# --- pyinfra (PyPI, pinned, in a venv) ---------------------------------------
venv="$cache/bench/pyinfra-$pyinfra_version"
if [ ! -x "$venv/bin/pyinfra" ] || [ "$("$venv/bin/pyinfra" --version 2>/dev/null)" != "pyinfra: v$pyinfra_version" ]; then
  log "installing pyinfra $pyinfra_version into $venv"
  rm -rf "$venv"
  mkdir -p "$cache/bench"
  py=/usr/bin/python3
  [ -x "$py" ] || py=python3
  "$py" -m venv "$venv" >&2 || { apt-get install -y python3-venv >&2 && "$py" -m venv "$venv" >&2; }
  "$venv/bin/pip" install --quiet --disable-pip-version-check "pyinfra==$pyinfra_version" >&2
fi

# --- pulumi-resource-command -------------------------------------------------
plugdir="$pulumi_home/plugins/resource-command-v$command_version"
plugin="$plugdir/pulumi-resource-command"
if [ ! -x "$plugin" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  url="https://get.pulumi.com/releases/plugins/pulumi-resource-command-v$command_version-linux-amd64.tar.gz"
  if [ "${DROVE_PULUMI_NO_DOWNLOAD:-}" != 1 ] && command -v curl >/dev/null &&
     curl -fsSL --connect-timeout 10 --max-time 300 -o "$tmp/plugin.tgz" "$url" 2>/dev/null; then
    log "downloaded $url"
    tar -xzf "$tmp/plugin.tgz" -C "$tmp" pulumi-resource-command
  else
    command -v go >/dev/null || { echo "drove bench: cannot get pulumi-resource-command v$command_version: the download failed and Go is not installed. Either install Go 1.25+, or install the plugin with 'pulumi plugin install resource command $command_version'." >&2; exit 1; }
    export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
    export GOMODCACHE=${GOMODCACHE:-$cache/go/mod} GOCACHE=${GOCACHE:-$cache/go/build}
    mod=github.com/pulumi/pulumi-command/provider
    ldflags="-s -w -X $mod/pkg/version.Version=$command_version"
    work="$cache/bench/build-command-v$command_version"
    mkdir -p "$work"
    built=
    log "building pulumi-resource-command v$command_version from its Go module in $work"
    if (cd "$work" && { [ -f go.mod ] || go mod init drove.local/command-build >/dev/null 2>&1; } &&
        go get "$mod@v$command_version" >&2 2>"$tmp/get.err" &&
        go build -trimpath -ldflags "$ldflags" -o "$tmp/pulumi-resource-command" "$mod/cmd/pulumi-resource-command" >&2); then
      built=1
    else
      sed 's/^/  /' "$tmp/get.err" >&2 || true
      if [ -n "${DROVE_COMMAND_SRC:-}" ]; then
        log "the module proxy does not serve $mod@v$command_version; building it from the source in $DROVE_COMMAND_SRC"
        src="$cache/bench/src-command-v$command_version"
        rm -rf "$src" && mkdir -p "$src"
        if git --git-dir="$DROVE_COMMAND_SRC" rev-parse --verify -q "v$command_version^{commit}" >/dev/null 2>&1; then
          git --git-dir="$DROVE_COMMAND_SRC" archive "v$command_version" provider | tar -x -C "$src"
        elif git -C "$DROVE_COMMAND_SRC" rev-parse --verify -q "v$command_version^{commit}" >/dev/null 2>&1; then
          git -C "$DROVE_COMMAND_SRC" archive "v$command_version" provider | tar -x -C "$src"
        else
          cp -r "$DROVE_COMMAND_SRC/provider" "$src/"
        fi
        (cd "$src/provider" && go build -trimpath -ldflags "$ldflags" -o "$tmp/pulumi-resource-command" ./cmd/pulumi-resource-command >&2) && built=1
      fi
    fi
    [ -n "$built" ] || { echo "drove bench: cannot build pulumi-resource-command v$command_version: the Go module proxy does not serve $mod@v$command_version. Either point DROVE_COMMAND_SRC at a checkout of github.com/pulumi/pulumi-command, or install the plugin with 'pulumi plugin install resource command $command_version'." >&2; exit 1; }
  fi
  mkdir -p "$plugdir"
  mv "$tmp/pulumi-resource-command" "$plugin"
  chmod 755 "$plugin"
  log "installed $plugin"
fi

echo "ANSIBLE_PLAYBOOK=$(command -v ansible-playbook)"
echo "PYINFRA=$venv/bin/pyinfra"
echo "PULUMI_HOME=$pulumi_home"
echo "COMMAND_PLUGIN=$plugin"
