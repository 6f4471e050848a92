#!/usr/bin/env bash
# Provides the Pulumi CLI, the Node.js language host and the dynamic-provider
# launcher at the one version pinned in package.json, without Pulumi Cloud.
#
#   1. a `pulumi` already on PATH whose version matches is used as it is;
#   2. otherwise the official release tarball is tried (what a user on the open
#      internet gets);
#   3. otherwise the CLI and `pulumi-language-nodejs` are built from their
#      published Go modules in a small wrapper module.
#
# Everything lands in $DROVE_CACHE/pulumi/v<version>/bin (outside the repo), so a
# second run costs milliseconds. Prints that bin directory on stdout; progress
# goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${DROVE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/drove}
version=${DROVE_PULUMI_VERSION:-$(node -p "require('$here/package.json').dependencies['@pulumi/pulumi']")}
case "$version" in
  [0-9]*.[0-9]*.[0-9]*) ;;
  *) echo "drove: package.json must pin @pulumi/pulumi to an exact version (like 3.248.0), but it says '$version'." >&2; exit 2 ;;
esac
bin="$cache/pulumi/v$version/bin"
log() { echo "drove toolchain: $*" >&2; }

launcher_src="$here/node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs"

finish() {
  # The engine looks for the dynamic-provider launcher next to `pulumi`.
  if [ -f "$launcher_src" ]; then
    ln -sf "$launcher_src" "$bin/pulumi-resource-pulumi-nodejs"
  fi
  echo "$bin"
  exit 0
}

have_version() { # $1: a pulumi binary
  [ -x "$1" ] && [ "$("$1" version 2>/dev/null)" = "v$version" ]
}

if have_version "$bin/pulumi" && [ -x "$bin/pulumi-language-nodejs" ]; then
  finish
fi
mkdir -p "$bin"

# 1. One on PATH already?
if onpath=$(command -v pulumi 2>/dev/null) && have_version "$onpath"; then
  dir=$(dirname "$onpath")
  if [ -x "$dir/pulumi-language-nodejs" ]; then
    log "using pulumi v$version from $dir"
    ln -sf "$onpath" "$bin/pulumi"
    ln -sf "$dir/pulumi-language-nodejs" "$bin/pulumi-language-nodejs"
    finish
  fi
fi

# 2. The official release.
url="https://get.pulumi.com/releases/sdk/pulumi-v$version-linux-x64.tar.gz"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "${DROVE_PULUMI_NO_DOWNLOAD:-}" != 1 ] && command -v curl >/dev/null &&
   curl -fsSL --connect-timeout 10 --max-time 300 -o "$tmp/pulumi.tgz" "$url" 2>/dev/null; then
  log "downloaded $url"
  tar -xzf "$tmp/pulumi.tgz" -C "$tmp"
  cp "$tmp/pulumi/pulumi" "$tmp/pulumi/pulumi-language-nodejs" "$bin/"
  have_version "$bin/pulumi" && finish
  log "the downloaded CLI does not report v$version; building it instead"
fi

# 3. Build from the published Go modules.
command -v go >/dev/null || {
  echo "drove: cannot get the Pulumi CLI v$version: it is not on PATH, the download failed, and Go is not installed to build it. Either install Pulumi v$version yourself, or install Go 1.25+ and run this again." >&2
  exit 1
}
mod=github.com/pulumi/pulumi
export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
export GOMODCACHE=${GOMODCACHE:-$cache/go/mod} GOCACHE=${GOCACHE:-$cache/go/build}
flags=(-trimpath -tags osusergo,grpcnotrace)
stamp() { echo "-s -w -X $mod/sdk/v3/go/common/version.Version=v$1"; }

# go get, and where the checksum database has no entry for a Pulumi module
# (some releases are missing from it), fetch that module unverified by it.
get() {
  go get "$@" >&2 2>"$tmp/get.err" && return 0
  if grep -q 'verifying module.*404' "$tmp/get.err"; then
    log "the checksum database has no entry for a Pulumi module; fetching it without that check"
    GONOSUMDB=$mod/pkg,$mod/sdk go get "$@" >&2 && return 0
  fi
  cat "$tmp/get.err" >&2
  return 1
}

work="$cache/pulumi/build-v$version"
mkdir -p "$work"
cd "$work"
log "building the Pulumi CLI v$version from Go modules in $work (a cold build takes several minutes; it is cached)"
[ -f go.mod ] || go mod init drove.local/pulumi-build >/dev/null 2>&1
get "$mod/pkg/v3@v$version" "$mod/sdk/v3@v$version"
go build "${flags[@]}" -ldflags "$(stamp "$version")" -o "$tmp/pulumi" "$mod/pkg/v3/cmd/pulumi" >&2

# The Node.js language host. Its own module has no tags: take it at the commit
# of the CLI's release tag. Where the module proxy does not serve that module
# (this one serves none of its versions), build it from the newest sdk/v3
# release that still carried it inside (v3.68.0): the host's contract with
# the engine (gRPC LanguageRuntime) and with @pulumi/pulumi's `cmd/run`
# (--monitor, --engine, --project, --stack, --dry-run, PULUMI_CONFIG) is the
# same one the SDK in package.json speaks.
commit=$(go list -m -json "$mod/pkg/v3@v$version" | sed -n 's/.*"Hash": "\([0-9a-f]*\)".*/\1/p')
if [ -n "$commit" ] && get "$mod/sdk/nodejs/cmd/pulumi-language-nodejs/v3@$commit" 2>/dev/null; then
  get "$mod/pkg/v3@v$version" "$mod/sdk/v3@v$version"
  go build "${flags[@]}" -ldflags "$(stamp "$version")" -o "$tmp/pulumi-language-nodejs" "$mod/sdk/nodejs/cmd/pulumi-language-nodejs/v3" >&2
else
  host_sdk=${DROVE_LANGUAGE_HOST_SDK:-3.68.0}
  log "the module proxy does not serve pulumi-language-nodejs at $commit; building it from sdk/v3@v$host_sdk"
  mkdir -p "$cache/pulumi/build-language-host-v$host_sdk"
  cd "$cache/pulumi/build-language-host-v$host_sdk"
  [ -f go.mod ] || go mod init drove.local/pulumi-language-host >/dev/null 2>&1
  get "$mod/sdk/v3@v$host_sdk"
  go build "${flags[@]}" -ldflags "$(stamp "$host_sdk")" -o "$tmp/pulumi-language-nodejs" "$mod/sdk/v3/nodejs/cmd/pulumi-language-nodejs" >&2
fi
mv "$tmp/pulumi" "$tmp/pulumi-language-nodejs" "$bin/"
have_version "$bin/pulumi" || { echo "drove: the CLI built in $work does not report v$version." >&2; exit 1; }
log "built pulumi v$version into $bin"
finish
