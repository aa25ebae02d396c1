#!/usr/bin/env bash
# Issue 17, the controlled experiments on InvertedPendulum-v5: one sweep of named arms, 5 seeds
# each, into runs/controls/<arm>/, then the report against the mbpo arm into results/controls/.
# What each arm controls for: results/controls/README.md.
#
#   bash results/controls/run_sweeps.sh                  # from anywhere in the repository
#   bash results/controls/run_sweeps.sh --num-cpus 8     # extra flags go to the sweep
#   PYTHON=.venv/bin/python bash results/controls/run_sweeps.sh
#
# Resumable: run it again. Finished runs are skipped (also in a fresh clone: see below),
# interrupted ones resume from their checkpoint, and runs made earlier by plain sweeps into
# runs/controls/sac-g10 and sac-g1 (same folders, same settings) count as those arms' runs. Ray
# starts the runs in the arms' order below (the priority order), so the first arms finish first. If a run fails, the report is still
# written from what is there and the script exits with the sweep's status.
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/../.."

# Finished runs are kept in results/controls/finished/<arm>/<run>/ (results/finished_runs.sh), so
# that the sweep spans sessions and fresh clones: restored into runs/controls/ first (the sweep
# then skips them), saved again whenever this script exits.
source results/finished_runs.sh
restore_finished runs/controls results/controls/finished
trap 'save_finished runs/controls results/controls/finished' EXIT

PYTHON="${PYTHON:-python}"
ARMS=(
    mbpo
    sac-g10:algo=sac,updates_per_step=10
    sac-g1:algo=sac,steps=15000
    reset-rollouts:rollout_start=reset
    real-ratio-0:real_ratio=0
    "k15:rollout_schedule=[1,15,15,15]"
    frozen-model:freeze_model_after_epoch=1
    official-timing:official_pool_timing=true
    real-ratio-0.5:real_ratio=0.5
    mbpo-rerun    # the preset again, on the machine that ran the arms after sac-g10 (README.md)
)
arm_flags=()
for arm in "${ARMS[@]}"; do
    arm_flags+=(--arm "$arm")
done

status=0
"$PYTHON" -m mbpo_lib sweep --envs InvertedPendulum-v5 --seeds 0-4 --steps 5000 --root runs/controls \
    "${arm_flags[@]}" "$@" || status=$?
if [[ $status -ne 0 && $status -ne 1 ]]; then    # 2: bad settings, nothing ran; other: a crash
    exit "$status"
fi
"$PYTHON" -m mbpo_lib report runs/controls --out results/controls --baseline mbpo
exit "$status"
