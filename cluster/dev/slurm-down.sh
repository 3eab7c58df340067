#!/usr/bin/env bash
# Stop the two-node test cluster that cluster/dev/slurm-up.sh started.
#
#   sudo bash cluster/dev/slurm-down.sh
#
# Cancels every queued and running job, stops slurmd and slurmctld, and stops slurmdbd, MariaDB
# and munged where slurm-up.sh was the one that started them. Idempotent: safe when nothing runs.
# Configuration, the job-state directory, the accounting database and the logs stay, so the next
# slurm-up.sh is quick and `sacct` still knows the old jobs.
set -euo pipefail

RUN=/run/slurm
OWN=/run/slurm-dev
LOG=/var/log/slurm

say() { printf '[slurm-down] %s\n' "$*"; }

[ "$(id -u)" -eq 0 ] || { echo "[slurm-down] must run as root" >&2; exit 1; }

stop_pid() {  # stop_pid NAME PIDFILE: stop the daemon NAME, by its pid file, else by exact name
  local name="$1" pidfile="$2" pids
  pids="$(cat "$pidfile" 2>/dev/null || true) $(pgrep -x "$name" || true)"
  [ -n "${pids// /}" ] || return 0
  say "stopping $name"
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do pgrep -x "$name" >/dev/null || { rm -f "$pidfile"; return 0; }; sleep 0.1; done
  say "$name did not stop in 10 s: killing it"
  for p in $(pgrep -x "$name"); do kill -9 "$p" 2>/dev/null || true; done
  rm -f "$pidfile"
}

# Jobs first, while the controller can still tell the node to end them.
if command -v scontrol >/dev/null && pgrep -x slurmctld >/dev/null &&
   scontrol ping 2>/dev/null | grep -q 'is UP'; then
  jobs="$(squeue -h -o '%A' 2>/dev/null | sort -u | tr '\n' ' ')"
  if [ -n "${jobs// /}" ]; then
    say "cancelling jobs: $jobs"
    # shellcheck disable=SC2086
    scancel $jobs 2>/dev/null || true
    for _ in $(seq 30); do [ -z "$(squeue -h -o '%A' 2>/dev/null)" ] && break; sleep 0.5; done
  fi
fi

stop_pid slurmd "$RUN/slurmd.pid"
stop_pid slurmctld "$RUN/slurmctld.pid"
# Steps of jobs that outlived slurmd (none, normally, after the scancel above).
stop_pid slurmstepd /dev/null

if [ -e "$OWN/slurmdbd" ]; then
  stop_pid slurmdbd "$RUN/slurmdbd.pid"
  rm -f "$OWN/slurmdbd"
fi

if [ -e "$OWN/mariadb" ]; then
  stop_pid mariadbd /run/mysqld/mariadbd.pid
  rm -f "$OWN/mariadb"
fi

if [ -e "$OWN/munged" ]; then
  stop_pid munged /run/munge/munged.pid
  rm -f "$OWN/munged"
fi

say "stopped; logs stay in $LOG/"
