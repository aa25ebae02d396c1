"""The package's public surface and the house rule that dependencies point one way."""

import ast
from pathlib import Path

import mbpo_lib

PACKAGE = Path(mbpo_lib.__file__).parent
# design.md: models <- dynamics <- rollout <- mbpo; sac and buffer stand alone; theory,
# diagnostics, plotting and widgets sit on top and nothing core imports them, with one
# deliberate exception: the trainer (mbpo) imports diagnostics to log its model monitoring,
# and diagnostics then imports only the lower layers it measures and draws with.
CORE = {"models", "dynamics", "rollout", "mbpo", "sac", "buffer", "config", "envs", "termination",
        "precision", "files", "learned_termination", "task_functions"}
ON_TOP = {"theory", "diagnostics", "plotting", "widgets", "diagrams", "sweep", "render", "exercises",
          "intervals"}
ALLOWED = {("mbpo", "diagnostics")}
DIAGNOSTICS_MAY_IMPORT = {"models", "dynamics", "theory", "buffer", "plotting"}


def imported_modules(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mbpo_lib."):
            found.add(node.module.split(".")[1])
    return found


def test_every_exported_name_exists_and_all_is_sorted():
    assert mbpo_lib.__all__ == sorted(mbpo_lib.__all__)
    for name in mbpo_lib.__all__:
        assert hasattr(mbpo_lib, name), name


def test_core_modules_do_not_import_the_layers_on_top():
    for module in CORE:
        if (PACKAGE / f"{module}.py").exists():
            assert not {m for m in imported_modules(module) & ON_TOP if (module, m) not in ALLOWED}, module


def test_diagnostics_imports_only_what_it_measures_so_the_trainer_can_import_it_without_a_cycle():
    assert imported_modules("diagnostics") <= DIAGNOSTICS_MAY_IMPORT
    assert "mbpo" not in imported_modules("theory") | imported_modules("plotting")


def test_models_import_nothing_from_the_package_and_the_chain_points_one_way():
    assert imported_modules("models") == set()
    assert imported_modules("files") == set()      # atomic writes and checkpoints: the bottom layer
    assert "dynamics" not in imported_modules("models")
    assert "rollout" not in imported_modules("dynamics")
