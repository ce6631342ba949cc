#!/usr/bin/env bash
# Stop the test cluster that tests/slurm/start_slurm.sh started.
#
#   sudo bash tests/slurm/stop_slurm.sh
#
# 1. cancel all jobs (their processes would outlive a killed slurmd) and wait
#    until squeue shows none running;
# 2. SIGTERM exactly the daemons recorded in $SLURM_STATE_DIR/pids, newest first
#    (slurmd, slurmctld, munged), wait for each to exit (SIGKILL after 20 s);
# 3. remove the /etc/slurm/slurm.conf link and the config it points to: with a
#    slurm.conf present but no controller, scontrol waits ~10 s for an answer, and
#    the snakemake Slurm plugin runs `scontrol show config` on every start.
# Logs stay in $SLURM_STATE_DIR/log (and munge/munged.log); SLURM_KEEP_STATE=0
# (default 1) removes the whole state directory instead.
# Safe to run when nothing is running; always exits 0 unless a daemon survives.
set -u

STATE="${SLURM_STATE_DIR:-/tmp/aedepth-slurm}"
CONF="$STATE/etc/slurm.conf"
SYS_CONF=/etc/slurm/slurm.conf
PIDS="$STATE/pids"
log() { echo "[stop_slurm $(date +%T)] $*"; }

# ------------------------------------------------------------------ 1. cancel jobs
if [ -s "$CONF" ]; then
  export SLURM_CONF="$CONF"
  if timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP'; then
    jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
      log "scancel $jobs"
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      # finished jobs stay listed (MinJobAge) but only in completed/cancelled states
      for _ in $(seq 60); do
        [ -z "$(squeue -h -t running,pending,completing,suspended -o %i 2>/dev/null)" ] && break
        sleep 0.5
      done
    fi
  fi
fi

# ------------------------------------------------------------------ 2. daemons
# running NAME PID: PID is alive, not a zombie, and still the daemon we started
# (its command name matches), so a recycled PID is never signalled.
running() {
  local stat
  stat=$(cat "/proc/$2/stat" 2>/dev/null) || return 1
  [[ "$stat" == *"($1) "[!Z]* ]]
}
rc=0
if [ -s "$PIDS" ]; then
  tac "$PIDS" | while read -r name pid; do
    [ -n "${pid:-}" ] || continue
    running "$name" "$pid" || { log "$name ($pid) already gone"; continue; }
    kill -TERM "$pid" && log "TERM $name ($pid)"
    for _ in $(seq 100); do running "$name" "$pid" || break; sleep 0.2; done
    if running "$name" "$pid"; then
      kill -KILL "$pid"; log "KILL $name ($pid)"; sleep 0.5
    fi
  done
  while read -r name pid; do
    if [ -n "${pid:-}" ] && running "$name" "$pid"; then log "ERROR: $name ($pid) still alive"; rc=1; fi
  done < "$PIDS"
  [ "$rc" = 0 ] && : > "$PIDS"
else
  log "no daemons recorded in $PIDS"
fi

# ------------------------------------------------------------------ 3. config
if [ -L "$SYS_CONF" ] && [ "$(readlink "$SYS_CONF")" = "$CONF" ]; then
  rm -f "$SYS_CONF"; log "removed $SYS_CONF"
elif [ -e "$SYS_CONF" ]; then
  log "WARNING: $SYS_CONF is not ours, left alone (snakemake may stall ~10 s at start)"
fi
rm -f "$CONF"
if [ "${SLURM_KEEP_STATE:-1}" = 0 ] && [ "$rc" = 0 ]; then
  rm -rf "$STATE"
  log "removed $STATE"
else
  log "removed $CONF; logs kept in $STATE/log and $STATE/munge"
fi
exit "$rc"
