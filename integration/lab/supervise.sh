#!/bin/bash
# The lab machine's supervisor and OS updater, as systemd-nspawn@.service
# with RestartForceExitStatus=133 plus an A/B /usr with boot counting:
#
#   supervise.sh MACHINE_DIR BASE_IMAGE CGROUP -- systemd-nspawn ARGS...
#
# It runs the machine; when the machine reboots (nspawn exits 133) it starts it
# again over the same upper dir (its /etc and /var), on the image it should
# boot next. The machine's OS image is an overlay lowerdir stack LAYER:BASE.
# Protocol with drove (providers/os-image/facts.ts), on the machine:
#   /var/lib/drove/os/staged/    the next image's layer (usr/lib/os-release names it)
#   /var/lib/drove/os/deadline   seconds the new boot has to be marked good
#   /var/lib/drove/os/good       written by drove when the new boot is healthy
#   /var/lib/drove/os/rollback   written here: why the last new boot was rolled back
#   /run/drove-os-updater        announces this updater ("lab-overlay")
# Its own state, in MACHINE_DIR/os: layers/, current, trial, previous, deadline, log.
# A machine on an image gets a read-only /usr.
set -u
dir=$1 base=$2 cgroup=$3
shift 4
root=$dir/root upper=$dir/upper work=$dir/work os=$dir/os
state=$upper/var/lib/drove/os
mkdir -p "$os/layers"
echo lab-overlay > "$os/updater"

log() { echo "$(date -u +%FT%T.%3NZ) $*" >> "$os/log"; }
get() { cat "$os/$1" 2>/dev/null; }
# "web-os 1.1" for a layer, from its os-release.
label() {
  if [ -z "$1" ]; then echo "the base image"; else (. "$os/layers/$1/usr/lib/os-release" 2>/dev/null; echo "${IMAGE_ID:-?} ${IMAGE_VERSION:-?}"); fi
}

remount() {
  local lower=$base
  [ -n "$1" ] && lower=$os/layers/$1:$base
  mountpoint -q "$root" && { umount "$root" || umount -l "$root"; }
  mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$root"
}

stopping=0
child=
trap 'stopping=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM INT

while :; do
  layer=$(get trial)
  [ -z "$layer" ] && layer=$(get current)
  extra=("--bind-ro=$os/updater:/run/drove-os-updater")
  [ -n "$layer" ] && extra+=("--bind-ro=$root/usr:/usr")
  log "boot ${layer:-base}"
  if [ -n "$cgroup" ]; then
    sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$cgroup" "$@" "${extra[@]}" &
  else
    "$@" "${extra[@]}" &
  fi
  child=$!
  watchdog=
  if [ -n "$(get trial)" ]; then
    deadline=$(get deadline)
    (
      end=$((SECONDS + ${deadline:-180}))
      while [ $SECONDS -lt $end ]; do
        if [ -e "$state/good" ]; then
          t=$(get trial)
          echo "$t" > "$os/current"
          rm -f "$os/trial"
          log "good $t"
          exit 0
        fi
        sleep 1
      done
      log "deadline: $(get trial) not marked good within ${deadline:-180} s"
      echo "not marked good within ${deadline:-180} s" > "$os/timed-out"
      kill -TERM "$child" 2>/dev/null
    ) &
    watchdog=$!
  fi
  rc=0
  wait "$child"; rc=$?
  while kill -0 "$child" 2>/dev/null; do wait "$child"; rc=$?; done
  if [ -n "$watchdog" ]; then kill "$watchdog" 2>/dev/null; wait "$watchdog" 2>/dev/null; fi
  child=
  log "exit $rc"
  [ "$stopping" = 1 ] && exit "$rc"
  timedout=$(get timed-out)
  rm -f "$os/timed-out"
  [ "$rc" -ne 133 ] && [ -z "$timedout" ] && exit "$rc"

  # A reboot: decide what boots next, with the machine's root unmounted.
  mountpoint -q "$root" && { umount "$root" || umount -l "$root"; }
  trial=$(get trial)
  if [ -n "$trial" ]; then
    if [ -e "$state/good" ]; then
      echo "$trial" > "$os/current"
      log "good $trial"
    else
      prev=$(get previous)
      why=${timedout:-it rebooted before it was marked good}
      echo "$prev" > "$os/current"
      mkdir -p "$state"
      echo "$(label "$trial") was rolled back to $(label "$prev"): $why" > "$state/rollback"
      log "rollback $trial -> ${prev:-base}: $why"
    fi
    rm -f "$os/trial"
  elif [ -e "$state/staged/usr/lib/os-release" ]; then
    name=$( . "$state/staged/usr/lib/os-release"; echo "${IMAGE_ID:-image}-${IMAGE_VERSION:-0}")-$(date +%s)
    rm -rf "$os/layers/$name"
    mv "$state/staged" "$os/layers/$name"
    get current > "$os/previous"
    echo "$name" > "$os/trial"
    cp "$state/deadline" "$os/deadline" 2>/dev/null || echo 180 > "$os/deadline"
    rm -f "$state/good" "$state/rollback"
    log "staged $name (previous $(get previous))"
  fi
  layer=$(get trial)
  [ -z "$layer" ] && layer=$(get current)
  remount "$layer" || { log "unable to mount $layer"; exit 1; }
done
