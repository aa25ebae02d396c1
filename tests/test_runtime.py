"""fast_mode, default_device, seed_everything and the setup check."""

import random

import numpy as np
import pytest
import torch

import mbpo_lib
from mbpo_lib import runtime


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("0", False), ("", False), (" 1 ", True)])
def test_fast_mode_reads_the_variable(monkeypatch, value, expected):
    monkeypatch.setenv("MBPO_FAST", value)
    assert mbpo_lib.fast_mode() is expected


def test_fast_mode_unset_is_false(monkeypatch):
    monkeypatch.delenv("MBPO_FAST", raising=False)
    assert mbpo_lib.fast_mode() is False


@pytest.mark.parametrize("value", ["true", "yes", "2", "on", "1.0"])
def test_fast_mode_refuses_anything_else_naming_the_value(monkeypatch, value):
    monkeypatch.setenv("MBPO_FAST", value)
    with pytest.raises(ValueError, match=repr(value).replace(".", r"\.")) as info:
        mbpo_lib.fast_mode()
    assert "use 1" in str(info.value)


def test_default_device_follows_cuda_availability(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert mbpo_lib.default_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert mbpo_lib.default_device() == torch.device("cuda")


def _draws(generator: torch.Generator) -> tuple:
    legacy_numpy = np.random.rand(3).tolist()  # noqa: NPY002 (the global seed_everything seeds)
    return (random.random(), legacy_numpy, torch.rand(3).tolist(),
            torch.rand(3, generator=generator).tolist())


def test_seed_everything_makes_every_generator_repeat():
    first = _draws(mbpo_lib.seed_everything(123))
    second = _draws(mbpo_lib.seed_everything(123))
    other = _draws(mbpo_lib.seed_everything(124))
    assert first == second
    for a, b in zip(first, other, strict=True):
        assert a != b


def test_seed_everything_returns_a_cpu_generator_with_that_seed():
    generator = mbpo_lib.seed_everything(7)
    assert isinstance(generator, torch.Generator)
    assert generator.device == torch.device("cpu")
    assert generator.initial_seed() == 7


@pytest.mark.parametrize(("seed", "error"), [(-1, ValueError), (2**32, ValueError), (1.5, TypeError),
                                             (True, TypeError), ("3", TypeError)])
def test_seed_everything_refuses_bad_seeds(seed, error):
    with pytest.raises(error, match="seed"):
        mbpo_lib.seed_everything(seed)


def test_setup_report_steps_a_mujoco_env_and_reports_failures():
    report = mbpo_lib.setup_report(("InvertedPendulum-v5", "NoSuchEnv-v0"))
    assert report["InvertedPendulum-v5"] == "ok (obs dim 4, act dim 1)"
    assert str(report["NoSuchEnv-v0"]).startswith("FAILED: ")
    assert report["torch"] == torch.__version__.split("+")[0] or report["torch"] == torch.__version__
    assert report["device"] == str(mbpo_lib.default_device())
    assert report["fast_mode"] == mbpo_lib.fast_mode()


def test_default_setup_check_covers_hopper():
    assert "Hopper-v5" in runtime.SETUP_CHECK_ENVS


CPUINFO = """processor\t: 0
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse avx avx2 fma avx512f avx512bw avx512_bf16 sha_ni
processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse avx avx2 fma
"""


def test_cpu_name_and_extensions_read_the_first_processor():
    assert mbpo_lib.cpu_name(CPUINFO) == "AMD EPYC 7B13"
    assert mbpo_lib.vector_extensions(CPUINFO) == ["avx2", "avx512f", "avx512_bf16"]
    assert mbpo_lib.cpu_name("") == "unknown CPU"
    assert mbpo_lib.vector_extensions("processor : 0\n") == []


def test_cpu_description_names_model_cores_and_extensions(monkeypatch):
    monkeypatch.setattr(runtime, "_cpuinfo", lambda: CPUINFO)
    monkeypatch.setattr(runtime.os, "cpu_count", lambda: 2)
    assert mbpo_lib.cpu_description() == "AMD EPYC 7B13, 2 logical cores, avx2, avx512f, avx512_bf16"
    monkeypatch.setattr(runtime, "_cpuinfo", lambda: "processor : 0\nflags : fpu sse\n")
    monkeypatch.setattr(runtime.platform, "processor", lambda: "arm")
    assert mbpo_lib.cpu_description() == "arm, 2 logical cores, no AVX2"
