#!/usr/bin/env bash
# shellcheck disable=SC2016  # the $VARS in job scripts are for the job, not for this shell
# Smoke test of the cluster that cluster/dev/slurm-up.sh stands up: what the launcher relies on.
#
#   bash cluster/dev/slurm-check.sh        # about 30 s; exit 0 when every check passes
#
# Checks: a plain batch job; the submitter's working directory and environment reach the job;
# an emulated 2-GPU job gets CUDA_VISIBLE_DEVICES; a 3-task array throttled with %2; srun inside
# a batch job; a job on both nodes (`scontrol show hostnames`, srun's SLURM_LAUNCH_NODE_IPADDR); --signal=USR2@90 is accepted; scancel; scontrol requeue
# (the job runs again); sacct answers (skipped when accounting is off).
set -uo pipefail

WORK="$(mktemp -d /tmp/slurm-check.XXXXXX)"
cd "$WORK" || exit 1
pass=0
fail=0
ok() { printf 'ok    %s\n' "$*"; pass=$((pass + 1)); }
bad() { printf 'FAIL  %s\n' "$*"; fail=$((fail + 1)); }

# wait_state JOB STATE... [-- TIMEOUT]: wait until the job's state is one of STATE (squeue, then scontrol).
job_state() { scontrol show job "$1" -o 2>/dev/null | sed -n 's/.* JobState=\([^ ]*\).*/\1/p'; }
wait_state() {
  local job="$1" timeout="$2" s; shift 2
  for _ in $(seq $((timeout * 2))); do
    s="$(job_state "$job")"
    for want in "$@"; do [ "$s" = "$want" ] && return 0; done
    sleep 0.5
  done
  echo "  job $job is ${s:-gone}, wanted $*" >&2
  return 1
}

export CHECK_VAR="from-the-submitter"
echo marker >"$WORK/input.txt"

j=$(sbatch --parsable -o plain.out --wrap 'hostname; pwd; echo "CHECK_VAR=$CHECK_VAR"; cat input.txt')
if wait_state "$j" 30 COMPLETED && grep -qx "$(hostname -s)" plain.out && grep -qx "$WORK" plain.out &&
   grep -qx 'CHECK_VAR=from-the-submitter' plain.out && grep -qx marker plain.out; then
  ok "plain job: runs in the submit directory with the submitter's environment"
else bad "plain job ($j): $(cat plain.out 2>/dev/null)"; fi

j=$(sbatch --parsable --gres=gpu:a800:2 -o gpu.out --wrap 'env | grep -i -E "cuda|gpu" | sort')
if wait_state "$j" 30 COMPLETED && grep -q '^CUDA_VISIBLE_DEVICES=[0-7],[0-7]$' gpu.out; then
  ok "2-GPU job: $(grep CUDA_VISIBLE_DEVICES gpu.out)"
else bad "2-GPU job ($j): $(cat gpu.out 2>/dev/null)"; fi

j=$(sbatch --parsable --array=0-2%2 -o 'array-%a.out' --wrap 'echo "task $SLURM_ARRAY_TASK_ID"; sleep 3')
most=0
for _ in $(seq 60); do  # sample how many tasks run at once until none is left
  n=$(squeue -h -r -j "$j" -t RUNNING -o %i 2>/dev/null | wc -l)
  [ "$n" -gt "$most" ] && most=$n
  [ -z "$(squeue -h -r -j "$j" -o %i 2>/dev/null)" ] && break
  sleep 0.5
done
if [ "$(cat array-*.out 2>/dev/null | sort | tr '\n' ' ')" = "task 0 task 1 task 2 " ] && [ "$most" = 2 ]; then
  ok "array 0-2%2: three tasks ran, two at once"
else bad "array ($j): at most $most at once, $(cat array-*.out 2>/dev/null | tr '\n' ' ')"; fi

cat >multi.sh <<'EOF'
#!/bin/bash
head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
echo "head=$head"
srun --ntasks-per-node=1 bash -c 'echo "step node=$SLURM_NODEID on=$SLURMD_NODENAME head=$SLURM_LAUNCH_NODE_IPADDR cvd=$CUDA_VISIBLE_DEVICES"'
EOF
j=$(sbatch --parsable --nodes=2 --gres=gpu:a800:2 --signal=USR2@90 --time=10 -o multi.out multi.sh)
if [ -n "$j" ]; then ok "sbatch --signal=USR2@90 accepted"; else bad "sbatch --signal=USR2@90"; fi
if wait_state "$j" 30 COMPLETED && grep -qx "head=dev-n1" multi.out &&
   grep -q '^step node=0 on=dev-n1 head=127.0.0.1 cvd=[0-7],[0-7]$' multi.out &&
   grep -q '^step node=1 on=dev-n2 head=127.0.0.1 cvd=[0-7],[0-7]$' multi.out; then
  ok "two nodes: scontrol show hostnames, srun --ntasks-per-node=1 on each, SLURM_LAUNCH_NODE_IPADDR"
else bad "hostnames/srun ($j): $(cat multi.out 2>/dev/null)"; fi

j=$(sbatch --parsable -o cancel.out --wrap 'sleep 300')
if wait_state "$j" 30 RUNNING && scancel "$j" && wait_state "$j" 30 CANCELLED; then
  ok "scancel: RUNNING -> CANCELLED"
else bad "scancel ($j)"; fi

j=$(sbatch --parsable --open-mode=append -o requeue.out --wrap 'echo "run restart=${SLURM_RESTART_COUNT:-0}"; sleep 300')
if wait_state "$j" 30 RUNNING && sleep 1 && scontrol requeue "$j" && wait_state "$j" 15 PENDING; then
  reason=$(squeue -h -j "$j" -o %r)
  if wait_state "$j" 40 RUNNING && sleep 1 && grep -q 'run restart=1' requeue.out; then
    ok "scontrol requeue: RUNNING -> PENDING ($reason) -> RUNNING with SLURM_RESTART_COUNT=1"
  else bad "requeued job $j did not run again: $(cat requeue.out)"; fi
else bad "scontrol requeue ($j)"; fi
scancel "$j" 2>/dev/null

acct=$(scontrol show config | sed -n 's/^AccountingStorageType *= *//p')
if [ "$acct" = accounting_storage/slurmdbd ]; then
  sleep 1
  if sacct -n -P -X -j "$j" -o JobID,State --duplicates 2>/dev/null | grep -q '|REQUEUED$'; then
    ok "sacct answers (job $j shows a REQUEUED record)"
  else bad "sacct: $(sacct -n -P -X -j "$j" -o JobID,State --duplicates 2>&1)"; fi
else
  echo "skip  sacct: AccountingStorageType=$acct"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ] && rm -rf "$WORK"
[ "$fail" = 0 ]
