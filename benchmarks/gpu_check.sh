#!/usr/bin/env bash
# The GPU checks the series still owes, as one short run on a lent GPU machine (an NVIDIA H200 in
# this workplace: its own Python 3.12 with a CUDA torch, no network, nothing of ours installed).
#
#   bash benchmarks/gpu_check.sh --fetch    here, with network: the wheels it needs, into .whl/
#   bash benchmarks/gpu_check.sh            there, from the repository root, with .whl carried
#
# What it runs there, writing everything to $OUT/gpu_check.log (or ./gpu_check.log); about 6
# minutes expected, at most 10 (each step has its own timeout):
#   1. the CUDA tests: the compiled + CUDA-graph SAC update against the eager one, the device
#      buffer and model step, matmul_precision's TF32 switch (they skip without CUDA elsewhere);
#   2. bench_sac.py --device cuda: ours, ours@medium (TF32), stable-baselines3 and the compiled
#      path against the eager one;
#   3. bench_ensemble.py --device cuda: train and step against mbrl-lib 0.2.0.
set -uo pipefail
cd "$(dirname "$0")/.."

# Versions as in the CPU venv these benchmarks were written with; pure-Python ones for any
# Python 3, the rest built for CPython 3.12 on manylinux x86-64. torch is the machine's own.
WHEELS=(gymnasium==1.4.0 farama-notifications==0.0.6 mujoco==4.0.0 mujoco-core==4.0.0
        mujoco-studio==4.0.0 glfw==2.11.0 pyopengl==3.1.10 websockets==17.4
        stable-baselines3==2.9.2 mbrl==0.2.0 hydra-core==1.3.2 omegaconf==2.3.0 termcolor==3.3.0)

if [[ "${1:-}" == "--fetch" ]]; then
    rm -rf .whl && mkdir -p .whl
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}" || exit 1
    # omegaconf's parser runtime is published as a source archive only: build its (pure) wheel here.
    python3 -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3 || exit 1
    ls .whl && du -sh .whl
    exit 0
fi

LOG="${OUT:-.}/gpu_check.log"
{
    [[ -d .whl ]] || { echo "no .whl/: run 'bash benchmarks/gpu_check.sh --fetch' first and carry .whl"; exit 2; }
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl || exit 1
    export PYTHONPATH="/tmp/site:$PWD:$PWD/benchmarks" PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    python3 -c "import torch, gymnasium, mujoco; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
'| gymnasium', gymnasium.__version__, '| mujoco', mujoco.__version__)"
    echo "== 1. CUDA tests"
    timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_sac.py tests/test_precision.py \
        tests/test_buffer.py tests/test_dynamics.py tests/test_rollout.py -m "not slow"
    echo "== 2. bench_sac.py --device cuda"
    timeout 240 python3 benchmarks/bench_sac.py --device cuda --rounds 1 --repeats 5 --updates 200
    echo "== 3. bench_ensemble.py --device cuda"
    timeout 180 python3 benchmarks/bench_ensemble.py --device cuda --rounds 1 --samples 5 --updates 50
} 2>&1 | tee "$LOG"
