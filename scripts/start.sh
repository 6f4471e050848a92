#!/usr/bin/env bash
# The main job: boot the 3-machine lab and `pulumi up` the flagship example.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./bin/drove lab up --machines "${DROVE_MACHINES:-3}"
eval "$(./bin/drove env)"
pulumi stack select "${DROVE_STACK:-lab}" --create >/dev/null
# The flagship's registry password: made once per stack, kept as a Pulumi secret.
if ! pulumi config get registryPassword >/dev/null 2>&1; then
  head -c 24 /dev/urandom | base64 | tr -d '/+=' | pulumi config set --secret registryPassword >/dev/null
fi
pulumi up --yes --skip-preview=false
echo
echo "Stack outputs:"
pulumi stack output --json
cat <<MSG

The lab keeps running. Try it yourself:
  eval "\$(npx drove env)"
  pulumi preview --diff --expect-no-changes
  pulumi refresh
  pulumi destroy
  npx drove lab down
MSG
