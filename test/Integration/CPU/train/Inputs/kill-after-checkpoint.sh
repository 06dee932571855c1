#!/usr/bin/env bash
# kill-after-checkpoint.sh RUN_DIR STEP COMMAND...
# Starts COMMAND (a mod-train run writing RUN_DIR), waits until the checkpoint
# of STEP is complete, SIGKILLs it, and fails if the run had already
# finished (then the kill would test nothing).
set -u
run=$1 step=$2
shift 2
"$@" > /dev/null 2>&1 &
pid=$!
ckpt=$(printf '%s/checkpoints/step-%08d/state.json' "$run" "$step")
for _ in $(seq 6000); do
  [ -e "$ckpt" ] && break
  kill -0 "$pid" 2> /dev/null || break
  sleep 0.01
done
kill -KILL "$pid" 2> /dev/null
wait "$pid" 2> /dev/null
status=$?
if [ "$status" -ne 137 ]; then
  echo "kill-after-checkpoint: the run exited with $status before the SIGKILL" >&2
  exit 1
fi
[ -e "$ckpt" ] || { echo "kill-after-checkpoint: no checkpoint at step $step" >&2; exit 1; }
echo "killed after step $step"
ls "$run/checkpoints"
