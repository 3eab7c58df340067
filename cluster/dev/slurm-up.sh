#!/usr/bin/env bash
# Stand up a real two-node Slurm cluster on loopback, for tests: one slurmctld and two slurmd on
# this machine (`slurmd -N dev-n1`, `slurmd -N dev-n2`, each on its own port, both NodeAddr
# 127.0.0.1), so a job can span two nodes (`--nodes=2`) with nothing listening beyond loopback.
#
#   sudo bash cluster/dev/slurm-up.sh            # install, configure, start, wait for the node
#   SLURM_DEV_ACCOUNTING=0 bash cluster/dev/slurm-up.sh   # skip MariaDB + slurmdbd (no sacct)
#
# Idempotent: a second run with everything up only checks munge, the daemons and the node
# (resuming a node that is DOWN or DRAINED) and returns in a few seconds. Daemons are started
# directly (no systemd). See cluster/dev/README.md for what runs where; cluster/dev/slurm-down.sh
# stops it all.
set -euo pipefail

ACCOUNTING="${SLURM_DEV_ACCOUNTING:-1}"
WAIT_S="${SLURM_DEV_WAIT_S:-120}"

CLUSTER=dev
NODE="$(hostname -s)"                  # the machine: every node's NodeHostname
NODES=(dev-n1 dev-n2)                  # the Slurm nodes, one slurmd each
NODE_PORTS=(6818 6821)                 # their slurmd ports (6819 is slurmdbd's)
NODE_LIST="dev-n[1-2]"
ETC=/etc/slurm
LOG=/var/log/slurm
RUN=/run/slurm
STATE_CTLD=/var/spool/slurmctld
STATE_D=/var/spool/slurmd
OWN=/run/slurm-dev                     # markers: which daemons this script started
FAKE_GPU=/dev/shm/fake-gpu
NGPU=8
MYSQL_SOCK=/run/mysqld/mysqld.sock
DB_PASS=slurm-dev-only                 # MariaDB listens on its socket only (skip-networking)

say() { printf '[slurm-up] %s\n' "$*"; }

logs_tail() {
  local f
  for f in "$LOG"/slurmctld.log "$LOG"/slurmd-dev-n1.log "$LOG"/slurmd-dev-n2.log "$LOG"/slurmdbd.log "$LOG"/mariadb.log /var/log/munge/munged.log; do
    [ -f "$f" ] || continue
    printf '\n===== tail -n 25 %s =====\n' "$f" >&2
    tail -n 25 "$f" >&2 || true
  done
  printf '\n[slurm-up] logs: %s/ (slurmctld.log slurmd-<node>.log slurmdbd.log mariadb.log), /var/log/munge/munged.log\n' "$LOG" >&2
}

die() { printf '[slurm-up] ERROR: %s\n' "$*" >&2; logs_tail; exit 1; }

[ "$(id -u)" -eq 0 ] || { echo "[slurm-up] must run as root" >&2; exit 1; }

# ---------------------------------------------------------------- packages
PKGS=(munge slurm-wlm)
BINS=(munged slurmctld slurmd sbatch)
if [ "$ACCOUNTING" = 1 ]; then
  PKGS+=(slurmdbd mariadb-server)
  BINS+=(slurmdbd mariadbd)
fi

missing=0
for b in "${BINS[@]}"; do
  command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || { missing=1; break; }
done

if [ "$missing" = 1 ]; then
  say "installing ${PKGS[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Package post-install scripts must not try to start services (no init system here):
  # Docker-style images ship a policy-rc.d that refuses; add one for the install if absent.
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  apt_install() { apt-get install -y -q --no-install-recommends "${PKGS[@]}"; }
  # Refresh the package lists once when they are absent or older than six hours, or when an
  # install from the lists we have fails (stale lists point at files the mirror has dropped).
  lists_fresh=0
  if compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null &&
     [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*InRelease' -mmin -360 -print -quit)" ]; then
    lists_fresh=1
  fi
  rc=0
  if [ "$lists_fresh" = 1 ]; then
    apt_install || rc=$?
  else
    rc=1
  fi
  if [ "$rc" != 0 ]; then
    apt-get update -q
    rc=0
    apt_install || rc=$?
  fi
  [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  [ "$rc" = 0 ] || { echo "[slurm-up] apt-get install failed" >&2; exit 1; }
fi

mkdir -p "$ETC" "$LOG" "$RUN" "$STATE_CTLD" "$STATE_D" "$OWN"

# ---------------------------------------------------------------- munge
if [ ! -s /etc/munge/munge.key ]; then
  say "creating /etc/munge/munge.key"
  mkdir -p /etc/munge
  if command -v mungekey >/dev/null 2>&1; then
    mungekey --create --keyfile=/etc/munge/munge.key --force
  else
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
fi
chown munge:munge /etc/munge /etc/munge/munge.key
chmod 700 /etc/munge
chmod 400 /etc/munge/munge.key
install -d -o munge -g munge -m 755 /run/munge
install -d -o munge -g munge -m 700 /var/log/munge /var/lib/munge

if ! pgrep -x munged >/dev/null; then
  say "starting munged"
  runuser -u munge -- /usr/sbin/munged
  touch "$OWN/munged"
fi
for _ in $(seq 50); do
  munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break
  sleep 0.1
done
munge -n </dev/null | unmunge >/dev/null || die "munge does not round-trip a credential"

# ---------------------------------------------------------------- configuration
# Count-only GPUs. Each File= must be a character device, or slurmd drops it from the device
# list and sets no CUDA_VISIBLE_DEVICES: symlinks to /dev/null are. Nothing opens them.
mkdir -p "$FAKE_GPU"
for i in $(seq 0 $((NGPU - 1))); do
  [ "$(readlink "$FAKE_GPU/nvidia$i" 2>/dev/null)" = /dev/null ] || ln -sfn /dev/null "$FAKE_GPU/nvidia$i"
done

if [ "$ACCOUNTING" = 1 ]; then
  ACCT_LINES="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
AccountingStorageTRES=gres/gpu,gres/gpu:a800
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30"
else
  ACCT_LINES="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
fi

# Listen on loopback only: slurmctld binds its SlurmctldHost address, slurmd, slurmdbd and srun
# bind what this host's name resolves to, so that only where the name resolves to loopback.
# slurmdbd ignores DbdAddr/DbdHost for its own socket (they tell clients where to connect): it binds
# the address of this host's name only with NoInAddrAny in slurmdbd.conf (checked by
# tests/integration/slurm/test_hardening.py::test_slurm_daemons_listen_on_loopback_only).
if getent ahostsv4 "$NODE" | awk '{print $1}' | grep -qv '^127\.'; then
  COMM_LINE="CommunicationParameters=NoCtldInAddrAny"
  DBD_COMM_LINE=""
  say "note: $NODE does not resolve to loopback only; slurmd and slurmdbd listen on all addresses"
else
  COMM_LINE="CommunicationParameters=NoCtldInAddrAny,NoInAddrAny"
  DBD_COMM_LINE="CommunicationParameters=NoInAddrAny"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Both nodes declare the same shape (more than this machine has: SlurmdParameters=config_overrides).
NODE_SHAPE="CPUs=32 Boards=1 SocketsPerBoard=1 CoresPerSocket=32 ThreadsPerCore=1 RealMemory=20480 Gres=gpu:a800:$NGPU State=UNKNOWN"

cat >"$tmp/slurm.conf" <<EOF
# Written by cluster/dev/slurm-up.sh: a two-node test cluster on loopback. Do not edit here.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# cred_expire is also how long a requeued job waits before it may start again (default 120 s).
AuthInfo=cred_expire=10
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE_CTLD
SlurmdSpoolDir=$STATE_D/%n
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd-%n.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
MpiDefault=none
$COMM_LINE
MailProg=/bin/true

# No cgroups: track processes through /proc, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none

SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
GresTypes=gpu
# The node below declares more CPUs and memory than this machine has; believe the config.
SlurmdParameters=config_overrides

SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2,sched_min_interval=100000
JobRequeue=1
ReturnToService=2
KillWait=5
MinJobAge=300
InactiveLimit=0
Waittime=0
MessageTimeout=20
SlurmctldTimeout=30
SlurmdTimeout=60

$ACCT_LINES

NodeName=dev-n1 NodeAddr=127.0.0.1 NodeHostname=$NODE Port=${NODE_PORTS[0]} $NODE_SHAPE
NodeName=dev-n2 NodeAddr=127.0.0.1 NodeHostname=$NODE Port=${NODE_PORTS[1]} $NODE_SHAPE
PartitionName=gpu Nodes=$NODE_LIST Default=YES MaxTime=INFINITE State=UP
PartitionName=2080ti Nodes=$NODE_LIST Default=NO MaxTime=INFINITE State=UP
EOF

cat >"$tmp/gres.conf" <<EOF
# Written by cluster/dev/slurm-up.sh: $NGPU emulated A800s per node, count-only, backed by dummy files.
AutoDetect=off
NodeName=$NODE_LIST Name=gpu Type=a800 File=$FAKE_GPU/nvidia[0-$((NGPU - 1))]
EOF

cat >"$tmp/cgroup.conf" <<EOF
# Written by cluster/dev/slurm-up.sh: no plugin here uses cgroups (proctrack/linuxproc, task/none).
CgroupAutomount=no
EOF

cat >"$tmp/slurmdbd.conf" <<EOF
# Written by cluster/dev/slurm-up.sh.
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
$DBD_COMM_LINE
SlurmUser=root
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF

changed=0
conf_files=(slurm.conf gres.conf cgroup.conf)
[ "$ACCOUNTING" = 1 ] && conf_files+=(slurmdbd.conf)
for f in "${conf_files[@]}"; do
  if ! cmp -s "$tmp/$f" "$ETC/$f"; then
    install -m 644 "$tmp/$f" "$ETC/$f"
    changed=1
    say "wrote $ETC/$f"
  fi
done
[ -f "$ETC/slurmdbd.conf" ] && chmod 600 "$ETC/slurmdbd.conf"

stop_pid() {  # stop_pid NAME PIDFILE: stop the daemon NAME, by its pid file, else by exact name
  local name="$1" pidfile="$2" pids
  pids="$(cat "$pidfile" 2>/dev/null || true) $(pgrep -x "$name" || true)"
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do pgrep -x "$name" >/dev/null || return 0; sleep 0.1; done
  for p in $(pgrep -x "$name"); do kill -9 "$p" 2>/dev/null || true; done
}

if [ "$changed" = 1 ] && { pgrep -x slurmctld || pgrep -x slurmd || pgrep -x slurmdbd; } >/dev/null; then
  say "configuration changed: restarting the Slurm daemons"
  stop_pid slurmd /dev/null
  stop_pid slurmctld "$RUN/slurmctld.pid"
  stop_pid slurmdbd "$RUN/slurmdbd.pid"
fi

# ---------------------------------------------------------------- accounting: MariaDB + slurmdbd
if [ "$ACCOUNTING" = 1 ]; then
  if ! mariadb-admin --socket="$MYSQL_SOCK" ping >/dev/null 2>&1; then
    say "starting MariaDB (socket $MYSQL_SOCK, no TCP)"
    install -d -o mysql -g mysql -m 755 /run/mysqld
    if [ ! -d /var/lib/mysql/mysql ]; then
      mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db \
        >"$LOG/mariadb-install.log" 2>&1 || die "mariadb-install-db failed: $LOG/mariadb-install.log"
    fi
    setsid /usr/sbin/mariadbd --user=mysql --datadir=/var/lib/mysql --socket="$MYSQL_SOCK" \
      --pid-file=/run/mysqld/mariadbd.pid --skip-networking --log-error="$LOG/mariadb.log" \
      --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900 \
      </dev/null >/dev/null 2>&1 &
    touch "$OWN/mariadb"
    for _ in $(seq 300); do
      mariadb-admin --socket="$MYSQL_SOCK" ping >/dev/null 2>&1 && break
      sleep 0.1
    done
    mariadb-admin --socket="$MYSQL_SOCK" ping >/dev/null 2>&1 || die "MariaDB did not answer within 30 s"
  fi
  mariadb --socket="$MYSQL_SOCK" -u root <<EOF || die "could not create the slurm database user"
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
EOF

  if ! pgrep -x slurmdbd >/dev/null; then
    say "starting slurmdbd"
    slurmdbd || die "slurmdbd failed to start"
    touch "$OWN/slurmdbd"
  fi
  for _ in $(seq 150); do
    sacctmgr -n -P show cluster format=cluster >/dev/null 2>&1 && break
    sleep 0.2
  done
  clusters="$(sacctmgr -n -P show cluster format=cluster 2>/dev/null)" || die "slurmdbd does not answer on 127.0.0.1:6819"
  if ! grep -qx "$CLUSTER" <<<"$clusters"; then
    say "registering cluster '$CLUSTER' in slurmdbd"
    sacctmgr -i add cluster "$CLUSTER" >/dev/null || die "sacctmgr add cluster failed"
  fi
fi

# ---------------------------------------------------------------- slurmctld + slurmd
if ! pgrep -x slurmctld >/dev/null; then
  say "starting slurmctld"
  slurmctld || die "slurmctld failed to start"
fi
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q 'is UP' && break; sleep 0.2; done
scontrol ping 2>/dev/null | grep -q 'is UP' || die "slurmctld does not answer (scontrol ping)"

slurmd_running() { pgrep -f "^slurmd -N $1\$" >/dev/null; }
for n in "${NODES[@]}"; do
  mkdir -p "$STATE_D/$n"
  if ! slurmd_running "$n"; then
    say "starting slurmd for $n"
    slurmd -N "$n" || die "slurmd -N $n failed to start"
  fi
done

# ---------------------------------------------------------------- wait for the nodes
node_state() { scontrol show node "$1" -o 2>/dev/null | sed -n 's/.* State=\([^ ]*\).*/\1/p'; }
node_up() {  # node_up NAME: true when the node takes jobs
  case "$1" in *DRAIN* | *NOT_RESPONDING* | *FAIL* | *DOWN*) return 1 ;; esac
  case "$1" in IDLE* | MIXED* | ALLOCATED* | COMPLETING*) return 0 ;; esac
  return 1
}
deadline=$((SECONDS + WAIT_S))
last_resume=-100
while :; do
  waiting=()
  for n in "${NODES[@]}"; do
    state="$(node_state "$n")"
    node_up "$state" && continue
    waiting+=("$n:${state:-unknown}")
    case "$state" in
      *DOWN* | *DRAIN* | *FAIL*)
        # ReturnToService=2 brings a node back when slurmd registers; a DRAIN needs a resume.
        if slurmd_running "$n" && [ $((SECONDS - last_resume)) -ge 5 ]; then
          say "node $n is $state: resuming it"
          scontrol update nodename="$n" state=resume 2>/dev/null || true
          resumed=1
        fi ;;
    esac
    slurmd_running "$n" || die "slurmd for $n is not running"
  done
  [ "${resumed:-0}" = 1 ] && { last_resume=$SECONDS; resumed=0; }
  [ "${#waiting[@]}" = 0 ] && break
  if [ "$SECONDS" -ge "$deadline" ]; then
    scontrol show node >&2 || true
    die "nodes not up after ${WAIT_S}s: ${waiting[*]}"
  fi
  sleep 0.5
done

say "nodes ${NODES[*]} are up; partitions:"
sinfo -o '%P %a %l %D %T %N %G'
say "logs in $LOG/"
