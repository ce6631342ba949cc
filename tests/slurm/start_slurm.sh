#!/usr/bin/env bash
# Start a throw-away, single-node Slurm cluster on this machine, for testing the
# workflow's Slurm profile (profiles/slurm) against a real scheduler.
#
#   sudo bash tests/slurm/start_slurm.sh   # start (idempotent); then sbatch, squeue,
#                                          # snakemake --executor slurm just work
#   sudo bash tests/slurm/stop_slurm.sh    # stop; leaves no daemon and no slurm.conf
#
# Target: Debian 12 (Slurm 22.05, MUNGE 0.5), run as root, WITHOUT systemd and
# WITHOUT cgroups (containers, CI runners). Daemons: munged, slurmctld, slurmd; no
# accounting database (no slurmdbd): jobs are tracked with squeue, see MinJobAge.
#
# Everything this script writes lives under $SLURM_STATE_DIR (default
# /tmp/aedepth-slurm): the config, MUNGE key and socket, spool dirs, logs and PIDs.
# The one exception is /etc/slurm/slurm.conf, a SYMLINK to the config in the state
# dir: Slurm commands honour $SLURM_CONF, but the Slurm executor plugin's job step
# (snakemake-executor-plugin-slurm-jobstep) strips every SLURM_* variable before
# its nested `srun`, so inside a job only the default path works. stop_slurm.sh
# removes the link again: a slurm.conf without a running controller makes every
# `snakemake` start stall ~10 s (the plugin runs `scontrol show config` on import).
# An existing /etc/slurm/slurm.conf that is not our link is never touched: the
# script refuses to start instead.
#
# Environment:
#   SLURM_STATE_DIR    state directory (default /tmp/aedepth-slurm)
#   SLURM_TEST_PARTITION  name of the single partition (default debug)
#   SLURMCTLD_PORT     slurmctld port (default 6817); slurmd uses SLURMCTLD_PORT+1
#   SLURM_SKIP_INSTALL=1  never call apt-get (fail if packages are missing)
set -euo pipefail

STATE="${SLURM_STATE_DIR:-/tmp/aedepth-slurm}"
PARTITION="${SLURM_TEST_PARTITION:-debug}"
CTLD_PORT="${SLURMCTLD_PORT:-6817}"
SLURMD_PORT=$((CTLD_PORT + 1))
NODE=localhost        # slurmd runs with -N localhost, so the real hostname does not matter

log() { echo "[start_slurm $(date +%T)] $*"; }
die() { echo "[start_slurm $(date +%T)] ERROR: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts daemons)"
case "$STATE" in /*) ;; *) die "SLURM_STATE_DIR must be an absolute path: $STATE";; esac

CONF="$STATE/etc/slurm.conf"
SYS_CONF=/etc/slurm/slurm.conf   # compiled-in default path of Debian's Slurm
PIDS="$STATE/pids"            # "name pid" per line, in start order; read by stop_slurm.sh
MUNGE_DIR="$STATE/munge"
MUNGE_SOCKET="$MUNGE_DIR/munge.socket"

# --------------------------------------------------------------------------- 0. already up?
running() {  # running NAME PID: alive, not a zombie, and still that daemon (not a reused PID)
  local stat
  stat=$(cat "/proc/$2/stat" 2>/dev/null) || return 1
  [[ "$stat" == *"($1) "[!Z]* ]]
}
all_alive() {  # true if $PIDS lists daemons and every one of them still runs
  [ -s "$PIDS" ] || return 1
  local name pid
  while read -r name pid; do running "$name" "$pid" || return 1; done < "$PIDS"
}
if all_alive; then
  log "already running (PIDs in $PIDS); use stop_slurm.sh first to restart"
  exit 0
fi
if [ -s "$PIDS" ]; then          # half-dead cluster from an earlier run: clean it up first
  log "found stale $PIDS; stopping leftovers first"
  SLURM_STATE_DIR="$STATE" bash "$(dirname "$0")/stop_slurm.sh"
fi

if [ -e "$SYS_CONF" ] || [ -L "$SYS_CONF" ]; then
  [ "$(readlink "$SYS_CONF" 2>/dev/null)" = "$CONF" ] \
    || die "$SYS_CONF exists and is not our link to $CONF: another Slurm set-up? (remove it to proceed)"
fi

# --------------------------------------------------------------------------- 1. packages
pkgs=(munge slurmctld slurmd slurm-client)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  [ "${SLURM_SKIP_INSTALL:-0}" = 1 ] && die "missing packages: ${missing[*]} (SLURM_SKIP_INSTALL=1)"
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Keep the packages' maintainer scripts from starting services (there is no
  # systemd, and an init script starting slurmctld without a config would fail).
  added_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
  fi
  # apt-get update only if the package lists do not know slurmctld (fresh image)
  if ! apt-cache show slurmctld >/dev/null 2>&1; then apt-get update -qq; fi
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    apt-get update -qq        # lists may be stale (404 on a superseded .deb)
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  if [ "$added_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
SLURM_VERSION=$(dpkg-query -W -f='${Version}' slurmctld)

# --------------------------------------------------------------------------- 2. state dir
# a fresh cluster every time: no jobs or node state carried over from a last run
rm -rf "$STATE/spool" "$STATE/run"
mkdir -p "$STATE"/{etc,spool/slurmctld,spool/slurmd,log,run}
chmod 755 "$STATE"            # munged (user munge) must be able to traverse it
: > "$PIDS"
# From here on, a failed start takes down whatever it started (and the conf link).
cleanup_on_failure() {
  local rc=$?
  if [ "$rc" != 0 ]; then
    log "start failed ($rc); stopping what was started" >&2
    SLURM_STATE_DIR="$STATE" bash "$(dirname "$0")/stop_slurm.sh" >&2 || true
  fi
}
trap cleanup_on_failure EXIT

# --------------------------------------------------------------------------- 3. munged
# Our own munged with its own key and socket under $STATE, so that nothing in
# /etc/munge or /run/munge is touched; slurm.conf points Slurm at the socket via
# AuthInfo=socket=... . munged refuses to run as root, and insists that key, socket
# dir and log are owned by its user and not writable by others.
mkdir -p "$MUNGE_DIR"
chown munge:munge "$MUNGE_DIR"
chmod 755 "$MUNGE_DIR"        # socket dir: writable only by munged, searchable by all clients
if [ ! -s "$MUNGE_DIR/munge.key" ]; then
  # 1024 random bytes; `mungekey` would do the same but does not exist on every release
  dd if=/dev/urandom of="$MUNGE_DIR/munge.key" bs=1024 count=1 status=none
fi
chown munge:munge "$MUNGE_DIR/munge.key"
chmod 400 "$MUNGE_DIR/munge.key"
rm -f "$MUNGE_DIR/munged.pid" "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
runuser -u munge -- /usr/sbin/munged \
  --key-file="$MUNGE_DIR/munge.key" --socket="$MUNGE_SOCKET" \
  --pid-file="$MUNGE_DIR/munged.pid" --log-file="$MUNGE_DIR/munged.log" \
  --seed-file="$MUNGE_DIR/munged.seed"            # forks into the background
for _ in $(seq 50); do [ -s "$MUNGE_DIR/munged.pid" ] && [ -S "$MUNGE_SOCKET" ] && break; sleep 0.1; done
[ -s "$MUNGE_DIR/munged.pid" ] || die "munged did not start; see $MUNGE_DIR/munged.log"
echo "munged $(cat "$MUNGE_DIR/munged.pid")" >> "$PIDS"
munge -S "$MUNGE_SOCKET" -n | unmunge -S "$MUNGE_SOCKET" >/dev/null \
  || die "munge self-test failed; see $MUNGE_DIR/munged.log"
log "munged up (pid $(cat "$MUNGE_DIR/munged.pid"))"

# --------------------------------------------------------------------------- 4. slurm.conf
NCPU=$(nproc)
MEM_MB=$(awk '/^MemTotal:/{print int($2/1024)}' /proc/meminfo)
REAL_MEM=$((MEM_MB > 2048 ? MEM_MB - 1024 : MEM_MB / 2))   # RealMemory must not exceed what slurmd detects
cat > "$CONF" <<EOF
# Written by tests/slurm/start_slurm.sh -- single-node test cluster, Slurm $SLURM_VERSION
ClusterName=aedepth
SlurmctldHost=localhost
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$STATE/spool/slurmctld
SlurmdSpoolDir=$STATE/spool/slurmd
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
# -- no systemd, no cgroups: track processes via /proc, no cgroup task plugin
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
MpiDefault=none
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
# -- no accounting database (no slurmdbd): 'sacct' does not work, jobs are
#    followed with 'squeue' (profile: slurm-status-command: squeue)
AccountingStorageType=accounting_storage/none
# -- scheduling: several jobs share the node, by cores and memory
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# a job without --mem gets 1 GB per CPU, not the whole node (the plugin always sends --mem)
DefMemPerCPU=1024
# reject, at submit time, jobs that can never fit (instead of PENDING forever)
EnforcePartLimits=ALL
ReturnToService=2
# keep finished jobs visible to squeue/scontrol for an hour: the executor plugin only
# trusts squeue-based status checks if MinJobAge >= 3 x its first status-check delay,
# and tests/test_slurm.py checks every job's final state after the run
MinJobAge=3600
KillWait=5
InactiveLimit=0
Waittime=0
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$NCPU RealMemory=$REAL_MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
chmod 644 "$CONF"
mkdir -p "$(dirname "$SYS_CONF")"
ln -sfn "$CONF" "$SYS_CONF"    # see the header: jobs' nested srun only finds the default path
export SLURM_CONF="$CONF"      # same file, explicit for the daemons and checks below
log "wrote $CONF (CPUs=$NCPU RealMemory=$REAL_MEM, partition $PARTITION)"

# --------------------------------------------------------------------------- 5. slurmctld, slurmd
# Both daemonize and write their PidFile.
/usr/sbin/slurmctld -f "$CONF"
ctld_up=0
for _ in $(seq 100); do
  if scontrol ping 2>/dev/null | grep -q 'is UP'; then ctld_up=1; break; fi
  # gave up already (e.g. port in use)? then do not wait for it
  if [ -s "$STATE/run/slurmctld.pid" ] && ! running slurmctld "$(cat "$STATE/run/slurmctld.pid")"; then break; fi
  sleep 0.1
done
[ "$ctld_up" = 1 ] || { tail -20 "$STATE/log/slurmctld.log" >&2; die "slurmctld not up"; }
echo "slurmctld $(cat "$STATE/run/slurmctld.pid")" >> "$PIDS"
log "slurmctld up (pid $(cat "$STATE/run/slurmctld.pid"))"

/usr/sbin/slurmd -N "$NODE" -f "$CONF"
for _ in $(seq 100); do [ -s "$STATE/run/slurmd.pid" ] && break; sleep 0.1; done
[ -s "$STATE/run/slurmd.pid" ] || { tail -20 "$STATE/log/slurmd.log" >&2; die "slurmd did not start"; }
echo "slurmd $(cat "$STATE/run/slurmd.pid")" >> "$PIDS"

# --------------------------------------------------------------------------- 6. node usable?
node_state() { sinfo -h -N -n "$NODE" -o %t 2>/dev/null || true; }
for _ in $(seq 150); do
  case "$(node_state)" in idle|mix|alloc) break;; esac
  sleep 0.2
done
case "$(node_state)" in down*|drain*) scontrol update NodeName="$NODE" State=RESUME; sleep 1;; esac
case "$(node_state)" in
  idle|mix|alloc) ;;
  *) tail -20 "$STATE/log/slurmd.log" >&2; scontrol show node "$NODE" >&2; die "node not usable";;
esac
sinfo
log "cluster ready (Slurm $SLURM_VERSION); $SYS_CONF -> $CONF; stop with stop_slurm.sh"
