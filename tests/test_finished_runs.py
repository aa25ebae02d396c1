"""results/finished_runs.sh, the helper every run_sweeps.sh script sources: finished runs are kept
(three small files, no checkpoint), unfinished ones are not, and a restore never touches a run
that is already finished where it restores to."""
import shutil
import subprocess
from pathlib import Path

import pytest

HELPER = Path(__file__).resolve().parents[1] / "results" / "finished_runs.sh"
KEPT_FILES = {"config.json", "done.json", "metrics.csv"}

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def call(function: str, root: Path, kept: Path) -> None:
    subprocess.run(["bash", "-c", f'set -euo pipefail; shopt -s nullglob; source "{HELPER}"; '
                    f'{function} "{root}" "{kept}"'], check=True)


def make_run(folder: Path, finished: bool, text: str = "a") -> None:
    folder.mkdir(parents=True)
    for name in ("config.json", "metrics.csv", "checkpoint.pt"):
        (folder / name).write_text(f"{text} {name}")
    if finished:
        (folder / "done.json").write_text(f"{text} done.json")


def test_save_keeps_finished_runs_only_without_checkpoints(tmp_path):
    root, kept = tmp_path / "runs", tmp_path / "kept"
    make_run(root / "mbpo" / "Hopper-v5_mbpo_seed0", finished=True)
    make_run(root / "mbpo" / "Hopper-v5_mbpo_seed1", finished=False)
    make_run(root / "sac-g1" / "Hopper-v5_sac_seed0", finished=True, text="b")
    call("save_finished", root, kept)
    saved = sorted(p.relative_to(kept).as_posix() for p in kept.glob("*/*"))
    assert saved == ["mbpo/Hopper-v5_mbpo_seed0", "sac-g1/Hopper-v5_sac_seed0"]
    for run in kept.glob("*/*"):
        assert {p.name for p in run.iterdir()} == KEPT_FILES
    assert (kept / "sac-g1" / "Hopper-v5_sac_seed0" / "metrics.csv").read_text() == "b metrics.csv"


def test_restore_fills_a_fresh_root_and_never_overwrites_a_finished_run(tmp_path):
    root, kept = tmp_path / "runs", tmp_path / "kept"
    make_run(root / "mbpo" / "seed0", finished=True, text="old")
    make_run(root / "mbpo" / "seed1", finished=True, text="old")
    call("save_finished", root, kept)
    shutil.rmtree(root / "mbpo" / "seed0")
    (root / "mbpo" / "seed1" / "metrics.csv").write_text("finished here since")
    call("restore_finished", root, kept)
    assert {p.name for p in (root / "mbpo" / "seed0").iterdir()} == KEPT_FILES
    assert (root / "mbpo" / "seed0" / "metrics.csv").read_text() == "old metrics.csv"
    assert (root / "mbpo" / "seed1" / "metrics.csv").read_text() == "finished here since"


def test_nothing_kept_nothing_restored(tmp_path):
    root, kept = tmp_path / "runs", tmp_path / "kept"
    call("restore_finished", root, kept)
    call("save_finished", root, kept)
    assert not root.exists() and not kept.exists()


def test_every_sweep_script_uses_the_helper():
    scripts = sorted(HELPER.parent.glob("*/run_sweeps.sh"))
    assert [s.parent.name for s in scripts] == ["controls", "hopper_arms", "idp_arms"]
    for script in scripts:
        text = script.read_text()
        assert "source results/finished_runs.sh" in text
        assert "restore_finished()" not in text and "save_finished()" not in text
