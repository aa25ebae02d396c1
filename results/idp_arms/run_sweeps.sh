#!/usr/bin/env bash
# Issue 17, item 5, the second task: does InvertedDoublePendulum-v5 show what Hopper-v5 showed?
# InvertedDoublePendulum-v5 to 5,000 real steps (500 random, then 18 epochs of 250 steps; the
# preset's budget is 20,000), 5 seeds an arm, into runs/idp_arms/<arm>/, then the report against
# the mbpo arm into results/idp_arms/. The arms are Hopper's (results/hopper_arms/): what each
# controls for, README.md here.
#
#   bash results/idp_arms/run_sweeps.sh                  # from anywhere in the repository
#   bash results/idp_arms/run_sweeps.sh --num-cpus 1     # extra flags go to every sweep
#   PYTHON=.venv/bin/python SEEDS="3 4" bash results/idp_arms/run_sweeps.sh   # some seeds
#   OMP_NUM_THREADS=1 SEEDS="0 2 4" bash results/idp_arms/run_sweeps.sh --no-ray &   # two cores:
#   OMP_NUM_THREADS=1 SEEDS="1 3" bash results/idp_arms/run_sweeps.sh --no-ray &     # seeds split
#
# One sweep per seed, seed 0 of every arm first: a sweep cut short still leaves every arm with
# the same seeds. Resumable: run it again. Every run writes a checkpoint each epoch
# (checkpoint_every=1; no effect on the result), so an interrupted run resumes from its last
# epoch on the same machine; on another it restarts from zero. Finished runs are kept in
# results/idp_arms/finished/<arm>/<run>/ (results/finished_runs.sh) and restored into
# runs/idp_arms/ first, so a fresh clone goes on where the last machine stopped. If a run fails,
# the report is still written from what is there and the script exits with the failing sweep's
# status.
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/../.."

ROOT=runs/idp_arms
KEPT=results/idp_arms/finished
source results/finished_runs.sh
restore_finished "$ROOT" "$KEPT"
trap 'save_finished "$ROOT" "$KEPT"' EXIT

PYTHON="${PYTHON:-python}"
SEEDS="${SEEDS:-0 1 2 3 4}"
ENV=InvertedDoublePendulum-v5
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
    "$PYTHON" -m mbpo_lib sweep --envs "$ENV" --seeds "$seed" --steps 5000 --root "$ROOT" \
        --set checkpoint_every=1 "${arm_flags[@]}" "$@" || status=$?
    save_finished "$ROOT" "$KEPT"
    if [[ $status -ne 0 && $status -ne 1 ]]; then    # 2: bad settings, nothing ran; other: a crash
        exit "$status"
    fi
done
"$PYTHON" -m mbpo_lib report "$ROOT" --out results/idp_arms --baseline mbpo \
    --threshold "$ENV"=9000 --at "$ENV"=1000,2000,3000,5000 --score-last 4
exit "$status"
