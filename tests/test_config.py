"""MBPOConfig and the presets: the reference table number by number, validation, variants, smoke."""

import ast
import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

import mbpo_lib
from mbpo_lib.config import (
    PRESETS,
    ROLLOUT_SCHEDULES,
    EnsembleConfig,
    MBPOConfig,
    SACConfig,
    Schedule,
    apply_overrides,
    preset,
    schedule_variants,
)
from mbpo_lib.envs import SUPPORTED_ENVS
from mbpo_lib.rollout import model_buffer_capacity, rollout_schedule

HOPPER = PRESETS["Hopper-v5"]

# mbpo-reference.md, "Per-environment settings (official configuration files)", copied by hand:
# env, G, schedule, target entropy, epoch length, random start, budget, then the Humanoid
# extras (model_train_freq, retain_epochs, model hidden units) that are 250, 1, 200 elsewhere.
REFERENCE_TABLE = [
    ("Hopper-v5", 20, (20, 150, 1, 15), -1.0, 1000, 5000, 125_000, 250, 1, 200),
    ("Walker2d-v5", 20, (20, 150, 1, 1), -3.0, 1000, 5000, 300_000, 250, 1, 200),
    ("HalfCheetah-v5", 40, (20, 150, 1, 1), -3.0, 1000, 5000, 400_000, 250, 1, 200),
    ("Ant-v5", 20, (20, 100, 1, 25), -4.0, 1000, 5000, 300_000, 250, 1, 200),
    ("Humanoid-v5", 20, (20, 300, 1, 25), -2.0, 1000, 5000, 300_000, 1000, 5, 400),
    ("InvertedPendulum-v5", 10, (1, 15, 1, 1), -0.05, 250, 500, 15_000, 250, 1, 200),
    ("InvertedDoublePendulum-v5", 20, (1, 15, 1, 1), -0.5, 250, 500, 20_000, 250, 1, 200),
]


# --- the presets ---------------------------------------------------------------------------


def test_presets_cover_exactly_the_papers_environments():
    assert list(PRESETS) == [row[0] for row in REFERENCE_TABLE]
    assert set(PRESETS) <= set(SUPPORTED_ENVS)
    assert all(config.env_id == env_id for env_id, config in PRESETS.items())


@pytest.mark.parametrize(("env_id", "G", "schedule", "entropy", "epoch", "random_start", "budget",
                          "train_freq", "retain", "hidden"), REFERENCE_TABLE)
def test_each_preset_has_the_reference_tables_values(env_id, G, schedule, entropy, epoch, random_start,
                                                     budget, train_freq, retain, hidden):
    config = PRESETS[env_id]
    assert config.validate() is config
    assert config.updates_per_step == G
    assert config.rollout_schedule == Schedule(*schedule) and isinstance(config.rollout_schedule, Schedule)
    assert config.rollout_schedule == ROLLOUT_SCHEDULES[env_id]
    assert config.sac.target_entropy == entropy
    assert config.epoch_length == epoch
    assert config.init_exploration_steps == random_start
    assert config.total_steps == budget
    assert config.model_train_freq == train_freq
    assert config.retain_epochs == retain
    assert config.ensemble.hidden_dim == hidden


@pytest.mark.parametrize("env_id", list(PRESETS))
def test_every_preset_shares_the_papers_common_settings(env_id):
    config = PRESETS[env_id]
    ensemble = config.ensemble
    assert (ensemble.ensemble_size, ensemble.num_elites, ensemble.num_layers) == (7, 5, 4)
    assert config.ensemble.max_epochs is None and config.max_model_epochs is None   # the paper's rule
    assert config.rollout_batch_size == 100_000 and config.real_ratio == 0.05
    assert int(config.sac.batch_size * config.real_ratio) == 12                     # 12 real + 244 model
    assert config.sac.hidden_sizes == (256, 256) and config.sac.gamma == 0.99 and config.sac.tau == 5e-3
    assert config.sac.actor_lr == config.sac.critic_lr == 3e-4 and config.sac.init_log_alpha == 0.0
    assert config.model_buffer_dtype == "float32" and config.model_buffer_torch_dtype is torch.float32
    assert config.epoch_length % config.model_train_freq == 0


def test_presets_are_read_only_and_frozen():
    with pytest.raises(TypeError):
        PRESETS["Hopper-v5"] = HOPPER  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        HOPPER.total_steps = 1  # type: ignore[misc]


def test_hopper_has_the_official_schedule_and_the_appendix_one_on_request():
    assert preset("Hopper-v5") is HOPPER
    assert HOPPER.rollout_schedule == (20, 150, 1, 15)
    appendix = preset("Hopper-v5", schedule="paper appendix")
    assert appendix.rollout_schedule == Schedule(20, 100, 1, 15)
    assert dataclasses.replace(appendix, rollout_schedule=HOPPER.rollout_schedule) == HOPPER
    assert rollout_schedule(100, appendix.rollout_schedule) == 15
    assert rollout_schedule(100, HOPPER.rollout_schedule) == 9     # 1 + 80/130 * 14
    assert schedule_variants("Hopper-v5") == ["official", "paper appendix"]
    assert schedule_variants("Walker2d-v5") == ["official"]


def test_preset_takes_a_schedule_or_overrides_and_refuses_unknowns():
    assert preset("Ant-v5", schedule=(10, 50, 1, 5)).rollout_schedule == Schedule(10, 50, 1, 5)
    assert preset("Hopper-v5", seed=3, total_steps=50_000).total_steps == 50_000
    with pytest.raises(ValueError, match=r"no 'paper appendix' schedule for Walker2d-v5; choose one of "
                                         r"\['official'\]"):
        preset("Walker2d-v5", schedule="paper appendix")
    with pytest.raises(ValueError, match="no preset for env id 'Pendulum-v1'; presets exist for Hopper-v5"):
        preset("Pendulum-v1")
    with pytest.raises(ValueError, match="pass the schedule once"):
        preset("Hopper-v5", schedule="paper appendix", rollout_schedule=(20, 100, 1, 15))


def test_the_humanoid_model_buffer_is_the_big_one():
    humanoid = PRESETS["Humanoid-v5"]
    assert SUPPORTED_ENVS["Humanoid-v5"].obs_dim == 45 and SUPPORTED_ENVS["Ant-v5"].obs_dim == 27
    # 5 epochs retained x k x 100,000 x 1 fit per epoch: 12.5M rows at k = 25
    assert model_buffer_capacity(humanoid, humanoid.rollout_schedule.max_k) == 12_500_000


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "message"), [
    ({"ensemble": EnsembleConfig(ensemble_size=3, num_elites=5)}, "num_elites=5 exceeds ensemble_size=3"),
    ({"sac": SACConfig(gamma=1.0)}, r"SACConfig.gamma must be in \[0, 1\)"),
    ({"ensemble": "big"}, "MBPOConfig.ensemble must be an instance of EnsembleConfig, got str"),
    ({"rollout_schedule": (20, 150, 0, 15)}, r"MBPOConfig.rollout_schedule: .*k < 1 is no rollout"),
    ({"rollout_schedule": (150, 20, 1, 15)}, "min_epoch < max_epoch"),
    ({"rollout_schedule": (20, 150, 1)}, r"4 ints \[min_epoch, max_epoch, min_k, max_k\]"),
    ({"rollout_schedule": (20, 150, 1.5, 15)}, "schedule min_k must be an int, got 1.5"),
    ({"real_ratio": 1.5}, r"real_ratio must be a number in \[0, 1\], got 1.5"),
    ({"real_ratio": -0.1}, r"real_ratio must be a number in \[0, 1\], got -0.1"),
    ({"real_ratio": math.nan}, r"real_ratio must be a number in \[0, 1\], got nan"),
    ({"sac": SACConfig(batch_size=16, target_entropy=-1.0)}, r"int\(0.8\) = 0 real rows per SAC batch"),
    ({"model_train_freq": 300}, "model_train_freq=300 must divide epoch_length=1000"),
    ({"updates_per_step": -1}, "updates_per_step must be an int >= 0, got -1"),
    ({"rollout_batch_size": 0}, "rollout_batch_size must be an int >= 1, got 0"),
    ({"epoch_length": 1000.0}, "epoch_length must be an int >= 1, got 1000.0"),
    ({"retain_epochs": 0}, "retain_epochs must be an int >= 1, got 0"),
    ({"total_steps": 0}, "total_steps must be an int >= 1, got 0"),
    ({"eval_episodes": 0}, "eval_episodes must be an int >= 1, got 0"),
    ({"checkpoint_every": -1}, "checkpoint_every must be an int >= 0, got -1"),
    ({"seed": True}, "seed must be an int >= 0, got True"),
    ({"env_id": "Hopper-v4"}, r"termination='preset' is the exact rule of a supported task, and 'Hopper-v4' "
                              r"\(did you mean Hopper-v5\?\) is not one \(supported: Hopper-v5, Walker2d-v5"),
    ({"init_exploration_steps": 200_000}, "init_exploration_steps=200000 exceeds total_steps=125000"),
    ({"init_exploration_steps": 4}, r"needs a holdout row, so >= 5 steps at ensemble.holdout_ratio=0.2"),
    ({"model_buffer_dtype": "int8"}, "dtype must be one of float32, bfloat16, float16, got 'int8'"),
])
def test_impossible_settings_are_refused_with_a_clear_message(changes, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(HOPPER, **changes).validate()
    with pytest.raises(ValueError, match=message):   # with_overrides validates too
        HOPPER.with_overrides(**changes)


def test_edge_settings_that_make_sense_are_allowed():
    assert HOPPER.with_overrides(real_ratio=0.0).real_ratio == 0.0        # model data only, on purpose
    assert HOPPER.with_overrides(real_ratio=1.0).real_ratio == 1.0        # SAC on real data only
    assert HOPPER.with_overrides(updates_per_step=0, checkpoint_every=0).updates_per_step == 0
    assert HOPPER.with_overrides(init_exploration_steps=5).init_exploration_steps == 5   # holdout 1 row
    assert HOPPER.with_overrides(env_id="Pendulum-v1").env_id == "Pendulum-v1"         # no preset, supported


def test_env_specific_fields_have_no_defaults():
    with pytest.raises(TypeError, match="rollout_schedule"):
        MBPOConfig(env_id="Walker2d-v5", total_steps=300_000)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        MBPOConfig("Hopper-v5", (20, 150, 1, 15), 125_000)  # type: ignore[misc]   keyword-only
    config = MBPOConfig(env_id="Walker2d-v5", rollout_schedule=[20, 150, 1, 1], total_steps=300_000,
                        model_buffer_dtype=torch.bfloat16).validate()
    assert isinstance(config.rollout_schedule, Schedule) and config.rollout_schedule == (20, 150, 1, 1)
    assert config.model_buffer_dtype == "bfloat16" and config.model_buffer_torch_dtype is torch.bfloat16


def test_with_overrides_merges_nested_dicts_and_names_unknown_fields():
    config = HOPPER.with_overrides(total_steps=50_000, ensemble={"max_epochs": 20}, sac={"batch_size": 512})
    assert config.max_model_epochs == 20 and config.ensemble.hidden_dim == 200
    assert config.sac.batch_size == 512 and config.sac.target_entropy == -1.0
    assert HOPPER.total_steps == 125_000 and HOPPER.max_model_epochs is None    # the preset is untouched
    with pytest.raises(ValueError, match=r"unknown MBPOConfig field\(s\) \['max_k'\]; the fields are env_id"):
        HOPPER.with_overrides(max_k=3)
    with pytest.raises(ValueError, match=r"unknown MBPOConfig.ensemble field\(s\) \['elites'\]"):
        HOPPER.with_overrides(ensemble={"elites": 3})
    with pytest.raises(ValueError, match="num_elites=5 exceeds ensemble_size=4"):
        HOPPER.with_overrides(ensemble={"ensemble_size": 4})


def test_to_dict_is_json_and_from_dict_gives_the_same_config():
    for config in (*PRESETS.values(), HOPPER.smoke(), HOPPER.with_overrides(model_buffer_dtype="float16")):
        data = json.loads(json.dumps(config.to_dict()))
        assert data["rollout_schedule"] == list(config.rollout_schedule)
        again = MBPOConfig.from_dict(data)
        assert again == config and isinstance(again.rollout_schedule, Schedule)
        assert isinstance(again.ensemble.weight_decays, tuple) and isinstance(again.sac.hidden_sizes, tuple)
    with pytest.raises(ValueError, match=r"unknown MBPOConfig field\(s\) \['colour'\]"):
        MBPOConfig.from_dict({**HOPPER.to_dict(), "colour": "red"})


# --- the smoke variant ---------------------------------------------------------------------


@pytest.mark.parametrize("env_id", list(PRESETS))
def test_smoke_keeps_the_environment_and_shrinks_everything_else(env_id):
    full = PRESETS[env_id]
    smoke = full.smoke()
    assert smoke.validate() is smoke
    # the same task and the same algorithmic choices
    assert (smoke.env_id, smoke.sac.target_entropy, smoke.real_ratio, smoke.retain_epochs) == (
        full.env_id, full.sac.target_entropy, full.real_ratio, full.retain_epochs)
    assert smoke.ensemble.weight_decays == full.ensemble.weight_decays and smoke.sac.batch_size == 256
    # tiny sizes
    assert (smoke.ensemble.ensemble_size, smoke.ensemble.num_elites, smoke.ensemble.hidden_dim) == (3, 2, 32)
    assert smoke.max_model_epochs == 5 and smoke.rollout_batch_size == 256
    assert smoke.total_steps == 400 and smoke.init_exploration_steps == 100
    assert smoke.epoch_length == 100 and smoke.model_train_freq == 50
    assert 1 <= smoke.updates_per_step <= 2 and smoke.eval_episodes == 1
    # the rollout length still grows where the real schedule grows, reaching min(max_k, 3) by epoch 2
    ks = [rollout_schedule(epoch, smoke.rollout_schedule) for epoch in range(4)]
    assert ks[0] == full.rollout_schedule.min_k and ks[2] == min(full.rollout_schedule.max_k, 3) == ks[3]
    assert model_buffer_capacity(smoke, ks[-1]) <= 5 * 3 * 256 * 2


def test_smoke_is_a_method_available_on_any_config():
    custom = HOPPER.with_overrides(rollout_schedule=(5, 10, 2, 8), updates_per_step=0, checkpoint_every=0)
    smoke = custom.smoke()
    assert smoke.rollout_schedule == Schedule(0, 2, 2, 3)
    assert smoke.updates_per_step == 0 and smoke.checkpoint_every == 0
    assert HOPPER.smoke().checkpoint_every == 1


# --- layering ------------------------------------------------------------------------------


def _package_imports(module: str) -> set[str]:
    tree = ast.parse((Path(mbpo_lib.__file__).parent / f"{module}.py").read_text())
    return {node.module.split(".")[0] for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module}


def test_config_stays_at_the_bottom_and_rollout_only_uses_config():
    assert _package_imports("config") == {"models", "envs", "precision", "task_functions"}
    assert _package_imports("task_functions") == set()
    assert _package_imports("precision") == set()
    assert _package_imports("rollout") == {"config"}
    from mbpo_lib import rollout
    assert rollout.Schedule is Schedule and rollout.ROLLOUT_SCHEDULES is ROLLOUT_SCHEDULES


@pytest.mark.parametrize(("pair", "message"), [
    ("ensemble.lr=abc", r"EnsembleConfig.lr must be a finite number > 0, got 'abc'"),
    ("ensemble.lr=Infinity", r"EnsembleConfig.lr must be a finite number > 0, got inf"),
    ("ensemble.logvar_bound_coef=NaN", r"logvar_bound_coef must be a finite number >= 0, got nan"),
    ('ensemble.init_max_logvar="abc"', r"init_max_logvar must be a finite number, got 'abc'"),
    ("ensemble.init_min_logvar=1", r"init_min_logvar \(1\) must be below init_max_logvar"),
    ("ensemble.max_epochs=true", r"max_epochs must be None or an int >= 1, got True"),
    ("ensemble.holdout_ratio=abc", r"holdout_ratio must be in \(0, 1\), got 'abc'"),
    ("ensemble.weight_decays=[0.1,-1,0,0,0]", r"weight_decays must be a tuple of finite numbers >= 0"),
    ("sac.tau=NaN", r"SACConfig.tau must be in \(0, 1\], got nan"),
    ("sac.batch_size=2.5", r"SACConfig.batch_size must be an int >= 1, got 2.5"),
])
def test_every_set_value_is_checked_for_type_finiteness_and_range(pair, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(preset("InvertedPendulum-v5"), [pair])


def test_set_pairs_are_validated_together_with_the_flag_changes():
    """A budget below the preset's random steps is refused alone, and accepted when a --set pair
    lowers the random steps in the same command (one validation at the end)."""
    hopper = preset("Hopper-v5")
    with pytest.raises(ValueError, match="total_steps"):
        hopper.with_overrides(total_steps=600)
    config = apply_overrides(hopper, ["init_exploration_steps=200", "ensemble.max_epochs=7"], total_steps=600)
    assert (config.total_steps, config.init_exploration_steps, config.ensemble.max_epochs) == (600, 200, 7)
    # the pairs win over the flag changes where both name a field
    assert apply_overrides(hopper, ["total_steps=700", "init_exploration_steps=200"],
                           total_steps=600).total_steps == 700


# --- the controlled-experiment switches of issue 17 ------------------------------------------


def test_rollout_start_and_freeze_are_off_by_default_and_validated():
    from mbpo_lib.config import ROLLOUT_STARTS

    assert ROLLOUT_STARTS == ("real", "reset") and mbpo_lib.ROLLOUT_STARTS is ROLLOUT_STARTS
    assert all(c.rollout_start == "real" and c.freeze_model_after_epoch is None for c in PRESETS.values())
    both = HOPPER.with_overrides(rollout_start="reset", freeze_model_after_epoch=0)
    assert (both.rollout_start, both.freeze_model_after_epoch) == ("reset", 0)
    for bad in ("Reset", "branched", 1, None):
        with pytest.raises(ValueError, match=rf"rollout_start must be one of 'real', 'reset' .*got {bad!r}"):
            HOPPER.with_overrides(rollout_start=bad)
    for bad in (-1, 1.0, True, "3"):
        with pytest.raises(ValueError, match=rf"freeze_model_after_epoch must be None or an int >= 0, "
                                             rf"got {bad!r}"):
            HOPPER.with_overrides(freeze_model_after_epoch=bad)


def test_the_new_fields_round_trip_and_an_old_config_reads_with_their_defaults():
    config = HOPPER.smoke().with_overrides(rollout_start="reset", freeze_model_after_epoch=3)
    data = json.loads(json.dumps(config.to_dict()))
    assert (data["rollout_start"], data["freeze_model_after_epoch"]) == ("reset", 3)
    assert MBPOConfig.from_dict(data) == config
    new = ("rollout_start", "freeze_model_after_epoch")
    old = {k: v for k, v in HOPPER.to_dict().items() if k not in new}
    assert MBPOConfig.from_dict(old) == HOPPER


def test_the_new_fields_take_set_pairs():
    ip = preset("InvertedPendulum-v5")
    config = apply_overrides(ip, ["rollout_start=reset", "freeze_model_after_epoch=1"])
    assert (config.rollout_start, config.freeze_model_after_epoch) == ("reset", 1)
    assert apply_overrides(config, ["freeze_model_after_epoch=null"]).freeze_model_after_epoch is None
    with pytest.raises(ValueError, match="rollout_start must be one of 'real', 'reset'"):
        apply_overrides(ip, ["rollout_start=start"])
    with pytest.raises(ValueError, match="freeze_model_after_epoch must be None or an int >= 0, got 1.5"):
        apply_overrides(ip, ["freeze_model_after_epoch=1.5"])
