#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the sweep test (Debian's slurm-wlm and munge, run as root).
#   source tools/slurm/cluster.sh; cluster_up DIR   # installs the packages if missing, starts munged, slurmctld, slurmd
#   cluster_down                                    # stops every daemon cluster_up started
# SLURM_CONF points at DIR/slurm.conf, so the machine's /etc/slurm is never touched.
cluster_up() {
  local dir=$1
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
  fi
  mkdir -p "$dir/state" "$dir/spool" "$dir/log"
  local host cpus mem
  host=$(hostname -s); cpus=$(nproc); mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  cat > "$dir/slurm.conf" <<CONF
ClusterName=km
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=$(( 16817 + RANDOM % 1000 ))
SlurmdPort=$(( 17818 + RANDOM % 1000 ))
JobRequeue=1
KillWait=30
MinJobAge=600
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$dir/slurm.conf
  CLUSTER_DIR=$dir
  mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
  if ! pgrep -x munged >/dev/null; then
    [ -s /etc/munge/munge.key ] || { sudo -u munge /usr/sbin/mungekey --create 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
    runuser -u munge -- /usr/sbin/munged
    CLUSTER_MUNGE=1
  fi
  slurmctld -i
  slurmd
  local i
  for i in $(seq 1 60); do
    sinfo -h -o %T 2>/dev/null | grep -q idle && return 0
    sleep 1
  done
  echo "slurm did not come up:"; tail -n 20 "$dir/log/"*.log; return 1
}

cluster_down() {
  [ -n "${CLUSTER_DIR:-}" ] || return 0
  local f
  for f in "$CLUSTER_DIR/slurmd.pid" "$CLUSTER_DIR/slurmctld.pid"; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  sleep 1
  for f in "$CLUSTER_DIR/slurmd.pid" "$CLUSTER_DIR/slurmctld.pid"; do
    [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
  done
  [ -n "${CLUSTER_MUNGE:-}" ] && pkill -x munged || true
  CLUSTER_DIR=
}
