#!/usr/bin/env bash
# Issue 17, item 5: where does the model add to the updates? Hopper-v5 to 10,000 real steps (5,000
# random, then 5 epochs of 1,000 steps), 5 seeds an arm, into runs/hopper_arms/<arm>/, then the
# report against the mbpo arm into results/hopper_arms/. What each arm controls for: README.md here.
#
#   bash results/hopper_arms/run_sweeps.sh                  # from anywhere in the repository
#   bash results/hopper_arms/run_sweeps.sh --num-cpus 1     # extra flags go to every sweep
#   PYTHON=.venv/bin/python SEEDS="3 4" bash results/hopper_arms/run_sweeps.sh   # some seeds
#   OMP_NUM_THREADS=1 SEEDS="0 2" bash results/hopper_arms/run_sweeps.sh --no-ray &   # two cores:
#   OMP_NUM_THREADS=1 SEEDS=1 bash results/hopper_arms/run_sweeps.sh --no-ray &       # seeds split
#
# One sweep per seed, seed 0 of every arm first: a sweep cut short (it spans sessions: a run costs
# 30 to 60 minutes of one core) still leaves every arm with the same seeds. Resumable: run it
# again. Every run writes a checkpoint each epoch (checkpoint_every=1: about 50 MB, no effect on
# the result), so an interrupted run resumes from its last epoch on the same machine; on another
# it restarts from zero. Finished runs are kept in results/hopper_arms/finished/<arm>/<run>/
# (results/finished_runs.sh) and restored into runs/hopper_arms/ first, so a fresh clone goes on
# where the last machine stopped. If a run fails, the report is still written from what is there
# and the script exits with the failing sweep's status.
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/../.."

ROOT=runs/hopper_arms
KEPT=results/hopper_arms/finished
source results/finished_runs.sh
restore_finished "$ROOT" "$KEPT"
trap 'save_finished "$ROOT" "$KEPT"' EXIT

PYTHON="${PYTHON:-python}"
SEEDS="${SEEDS:-0 1 2 3 4}"
ARMS=(
    mbpo
    "k15:rollout_schedule=[0,1,15,15]"
    sac-g20:algo=sac,updates_per_step=20
    sac-g1:algo=sac,updates_per_step=1
)
arm_flags=()
for arm in "${ARMS[@]}"; do
    arm_flags+=(--arm "$arm")
done

status=0
for seed in $SEEDS; do
    "$PYTHON" -m mbpo_lib sweep --envs Hopper-v5 --seeds "$seed" --steps 10000 --root "$ROOT" \
        --set checkpoint_every=1 "${arm_flags[@]}" "$@" || status=$?
    save_finished "$ROOT" "$KEPT"
    if [[ $status -ne 0 && $status -ne 1 ]]; then    # 2: bad settings, nothing ran; other: a crash
        exit "$status"
    fi
done
"$PYTHON" -m mbpo_lib report "$ROOT" --out results/hopper_arms --baseline mbpo \
    --threshold Hopper-v5=1000 --at Hopper-v5=6000,8000,10000 --score-last 3
exit "$status"
