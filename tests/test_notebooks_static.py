"""Static checks of the notebooks, no kernel needed (the nbdev habit: clean and in sync first).

Each ``notebooks/NN_name.ipynb`` must be paired with its jupytext percent file ``NN_name.py``
and agree with it (cell types, sources, tags, slide metadata); hold no outputs, execution
counts or widget state; give every cell a ``slideshow.slide_type``; carry an Open-in-Colab
badge to its own path in its title cell; start its code with the guarded Colab setup cell;
and use the ``python3`` kernel.
"""

import json
import re
import shutil
from pathlib import Path

import jupytext
import pytest
import tomllib

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
# HTML comments: the slide markup (scripts/build_slides.py), which a notebook reader never sees.
HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def _build_slides():
    """scripts/build_slides.py as a module: what the decks make of a notebook's slide markup."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("build_slides_static", REPO / "scripts" / "build_slides.py")
    if spec.name not in sys.modules:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules[spec.name]
REPOSITORY_URL = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
GITHUB_PATH = REPOSITORY_URL.removeprefix("https://github.com/")
COLAB_LINK = re.compile(r"https://colab\.research\.google\.com/github/[^)\s\"']+")
SLIDE_TYPES = {"slide", "subslide", "fragment", "skip", "notes", "-"}
COLAB_GUARD = 'if "google.colab" in sys.modules:'


def colab_url(notebook: Path) -> str:
    return f"https://colab.research.google.com/github/{GITHUB_PATH}/blob/main/notebooks/{notebook.name}"


def cell_summary(cell) -> tuple:
    metadata = cell.get("metadata", {})
    return (cell["cell_type"], cell["source"].rstrip(), tuple(metadata.get("tags", [])),
            metadata.get("slideshow"))


def pair_problems(ipynb: Path) -> list[str]:
    """Every way the notebook and its percent .py disagree (empty when the pair is in sync)."""
    py = ipynb.with_suffix(".py")
    if not py.exists():
        return [f"{ipynb.name} has no paired {py.name}"]
    from_ipynb = [cell_summary(c) for c in jupytext.read(ipynb).cells]
    from_py = [cell_summary(c) for c in jupytext.read(py).cells]
    problems = []
    if len(from_ipynb) != len(from_py):
        problems.append(f"{ipynb.name} has {len(from_ipynb)} cells, {py.name} has {len(from_py)}")
    fields = ("cell type", "source", "tags", "slide metadata")
    for index, (a, b) in enumerate(zip(from_ipynb, from_py, strict=False)):
        for field, x, y in zip(fields, a, b, strict=True):
            if x != y:
                problems.append(f"cell {index}: {field} differs between {ipynb.name} and {py.name}")
    return problems


def committed_state_problems(ipynb: Path) -> list[str]:
    raw = json.loads(ipynb.read_text())
    problems = []
    for index, cell in enumerate(raw["cells"]):
        if cell.get("outputs"):
            problems.append(f"cell {index} holds outputs")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {index} holds an execution count")
        slide_type = cell.get("metadata", {}).get("slideshow", {}).get("slide_type")
        if slide_type not in SLIDE_TYPES:
            problems.append(f"cell {index} has slide_type {slide_type!r}, not one of {sorted(SLIDE_TYPES)}")
    if "widgets" in raw["metadata"]:
        problems.append("notebook metadata holds widget state")
    return problems


def test_the_series_has_notebooks_with_numbered_unique_names():
    names = [nb.stem for nb in NOTEBOOKS]
    assert "00_overview" in names
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+", name) for name in names), names
    assert len({name[:2] for name in names}) == len(names), "two notebooks share a number"


def test_every_percent_file_has_its_notebook():
    for py in (REPO / "notebooks").glob("*.py"):
        assert py.with_suffix(".ipynb").exists(), f"{py.name} has no paired notebook"


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_pair_is_in_sync(ipynb):
    assert pair_problems(ipynb) == []


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_outputs_counts_or_widget_state_and_every_cell_has_a_slide_type(ipynb):
    assert committed_state_problems(ipynb) == []


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_title_cell_has_a_colab_badge_to_its_own_path(ipynb):
    title = jupytext.read(ipynb).cells[0]
    assert title.cell_type == "markdown" and title.source.startswith("# ")
    assert "colab-badge.svg" in title.source
    assert COLAB_LINK.findall(title.source) == [colab_url(ipynb)]


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_setup_cell_installs_mbpo_lib_on_colab_only(ipynb):
    setup = next(c for c in jupytext.read(ipynb).cells if c.cell_type == "code")
    assert COLAB_GUARD in setup.source
    guarded = setup.source.split(COLAB_GUARD, 1)[1]
    assert f"mbpo_lib @ git+{REPOSITORY_URL}@main" in guarded
    assert "-e" not in guarded.split() and "--editable" not in guarded  # editable is invisible to a kernel
    assert "import mbpo_lib" in setup.source
    assert "mbpo_lib.fast_mode()" in setup.source
    assert setup.metadata["slideshow"]["slide_type"] == "skip"


# Markers a writer leaves for numbers still to be measured; a committed notebook has none.
UNFINISHED = re.compile(r"\b(?:[A-Z]+_)*PLACEHOLDER\b|\bFILL\b|\bTODO\b|\bTBD\b"
                        r"|\bRESULTS_[A-Z]+\b|\bMEASURED_[A-Z]+\b")


def unfinished_markers(ipynb: Path) -> list[str]:
    return [f"cell {i}: {m.group(0)}" for i, cell in enumerate(jupytext.read(ipynb).cells)
            for m in UNFINISHED.finditer(cell.source)]


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_text_is_left_waiting_for_a_measurement(ipynb):
    assert unfinished_markers(ipynb) == []


def test_a_left_marker_is_caught(pair_copy):
    ipynb = pair_copy
    notebook = json.loads(ipynb.read_text())
    notebook["cells"][0]["source"] = ["# Title\n", "- RESULTS_PLACEHOLDER\n", "FILL"]
    ipynb.write_text(json.dumps(notebook))
    assert unfinished_markers(ipynb) == ["cell 0: RESULTS_PLACEHOLDER", "cell 0: FILL"]


MAX_SLIDE_CELL_LINES = 26  # a longer cell cannot fit on a 960 x 700 slide at the decks' font sizes


def lecture_problems(ipynb: Path) -> list[str]:
    """What a lecture-ready notebook lacks: a Summary and an Exercises section (in that order),
    speaker notes, and cells short enough for a slide (skipped cells, like the setup cell, may be
    longer). Lengths are those of the slides: after the slide markup, whose prose goes to the
    speaker notes (which may be longer)."""
    cells = _build_slides().apply_slide_markup(jupytext.read(ipynb), ipynb.name).cells
    slide_type = [c.metadata.get("slideshow", {}).get("slide_type", "-") for c in cells]
    headings = [(i, line) for i, c in enumerate(cells) if c.cell_type == "markdown"
                for line in c.source.splitlines() if line.startswith("## ")]
    where = {name: next((i for i, line in headings if line == f"## {name}"), None)
             for name in ("Summary", "Exercises")}
    problems = [f"no '## {name}' section" for name, i in where.items() if i is None]
    if None not in where.values() and not where["Summary"] < where["Exercises"]:
        problems.append("'## Exercises' comes before '## Summary'")
    if "notes" not in slide_type:
        problems.append("no speaker notes (a cell with slide_type 'notes')")
    problems += [f"cell {i} ({c.cell_type}) has {len(c.source.splitlines())} lines, more than a slide "
                 f"shows ({MAX_SLIDE_CELL_LINES}): split it" for i, c in enumerate(cells)
                 if slide_type[i] not in ("skip", "notes")
                 and len(c.source.splitlines()) > MAX_SLIDE_CELL_LINES]
    return problems


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_is_lecture_ready(ipynb):
    assert lecture_problems(ipynb) == []


def test_a_notebook_that_is_not_lecture_ready_is_caught(pair_copy):
    ipynb = pair_copy
    notebook = json.loads(ipynb.read_text())
    long_cell = {"cell_type": "code", "id": "too-long", "execution_count": None, "outputs": [],
                 "source": ["x = 1\n"] * 30, "metadata": {"slideshow": {"slide_type": "subslide"}}}
    notebook["cells"] = [c for c in notebook["cells"] if c["metadata"].get("slideshow", {}).get(
        "slide_type") != "notes" and "## Summary" not in "".join(c["source"])] + [long_cell]
    for cell in notebook["cells"]:   # no slide markup either: its prose would become notes
        cell["source"] = HTML_COMMENT.sub("", "".join(cell["source"]))
    ipynb.write_text(json.dumps(notebook))
    problems = lecture_problems(ipynb)
    assert problems[:2] == ["no '## Summary' section", "no speaker notes (a cell with slide_type 'notes')"]
    assert len(problems) == 3 and "has 30 lines" in problems[2]


def test_notebook_00_holds_the_notation_table_of_the_series():
    """The symbols the later notebooks use each have a row in 00's notation table."""
    cells = jupytext.read(REPO / "notebooks" / "00_overview.ipynb").cells
    rows = [line for c in cells if c.cell_type == "markdown" and "## Notation" in c.source
            for line in c.source.splitlines() if line.startswith("| ")]
    first_column = " ".join(row.split("|")[1] for row in rows)
    for symbol in ("\\gamma", "\\alpha", "Q(s, a)", "$k$", "$G$", "M_\\mathrm{roll}", "\\varepsilon_m",
                   "\\varepsilon_\\pi", "\\mathcal{D}_\\mathrm{env}", "real_ratio", "elites"):
        assert symbol in first_column, symbol


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_kernelspec_is_python3(ipynb):
    assert json.loads(ipynb.read_text())["metadata"]["kernelspec"]["name"] == "python3"
    assert jupytext.read(ipynb.with_suffix(".py")).metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_readme_lists_the_notebook_with_its_badge(ipynb):
    readme = (REPO / "README.md").read_text()
    assert f"notebooks/{ipynb.name}" in readme
    assert colab_url(ipynb) in readme


# --- the checks themselves catch what they are for ------------------------------------------

@pytest.fixture
def pair_copy(tmp_path):
    source = REPO / "notebooks" / "00_overview.ipynb"
    shutil.copy(source, tmp_path / source.name)
    shutil.copy(source.with_suffix(".py"), tmp_path / source.with_suffix(".py").name)
    return tmp_path / source.name


def test_a_stale_source_is_caught(pair_copy):
    py = pair_copy.with_suffix(".py")
    text = py.read_text()
    assert "import sys" in text
    py.write_text(text.replace("import sys", "import sys  # edited in the .py only", 1))
    problems = pair_problems(pair_copy)
    assert len(problems) == 1 and "source differs" in problems[0]


def test_a_changed_slide_type_is_caught(pair_copy):
    py = pair_copy.with_suffix(".py")
    text = py.read_text()
    py.write_text(text.replace('slideshow={"slide_type": "skip"}', 'slideshow={"slide_type": "slide"}', 1))
    assert any("slide metadata differs" in p for p in pair_problems(pair_copy))


def test_a_cell_added_to_one_side_is_caught(pair_copy):
    py = pair_copy.with_suffix(".py")
    py.write_text(py.read_text() + '\n# %% slideshow={"slide_type": "skip"}\nprint("new")\n')
    assert any("cells" in p for p in pair_problems(pair_copy))


def test_a_missing_pair_is_caught(pair_copy):
    pair_copy.with_suffix(".py").unlink()
    assert pair_problems(pair_copy) == [f"{pair_copy.name} has no paired {pair_copy.stem}.py"]


def test_committed_outputs_and_missing_slide_metadata_are_caught(pair_copy):
    raw = json.loads(pair_copy.read_text())
    code = next(c for c in raw["cells"] if c["cell_type"] == "code")
    code["execution_count"] = 3
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hi\n"]}]
    del raw["cells"][0]["metadata"]["slideshow"]
    raw["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    pair_copy.write_text(json.dumps(raw))
    problems = committed_state_problems(pair_copy)
    assert any("outputs" in p for p in problems)
    assert any("execution count" in p for p in problems)
    assert any("cell 0 has slide_type None" in p for p in problems)
    assert "notebook metadata holds widget state" in problems


# --- lesson rules: answers collapsed, exercises that check themselves, no development log ----

SOLUTION_BLOCK = re.compile(r"<details>\s*<summary>\s*Solution\s*</summary>.*?</details>", re.S)
# How an answer announces itself when it is given in plain view.
ANSWER_MARKER = re.compile(r"\bcorrect answer\b|^\s*(?:\d+\.\s*)?\**(?:answer|solution)\s*:"
                           r"|\*(?:answer|solution)\b", re.IGNORECASE | re.MULTILINE)
# Thread and core counts, CPU vendors and models, kernel libraries, a busy machine.
DEV_LOG = re.compile(
    r"(?i)\bthreads?\b|\b(?:\d+|one|two|four|eight|single|many)[- ](?:cpu[- ])?cores?\b"
    r"|\bcore counts?\b|\b(?:AMD|Intel|EPYC|Xeon|Ryzen|Apple M\d|AVX(?:-?512|2)?|AMX|oneDNN|MKL"
    r"|OpenBLAS|cuBLAS)\b|\b(?:busy|shared) (?:machine|CPU|computer)\b|\bother jobs\b")
STUDENT_CELL = "✏️ YOUR ANSWER"
CHECK_CALL = re.compile(r"mbpo_lib\.exercises\.check_\w+\(")


def answer_problems(ipynb: Path) -> list[str]:
    """Answers shown outside a collapsed block, and exercises without one."""
    problems, in_exercises = [], False
    for index, cell in enumerate(jupytext.read(ipynb).cells):
        if cell.cell_type != "markdown":
            continue
        cell = cell.copy()
        cell.source = HTML_COMMENT.sub("", cell.source)   # the slide's short form of the questions
        headings = [line.strip() for line in cell.source.splitlines() if line.startswith("## ")]
        if headings:
            in_exercises = "## Exercises" in headings
        if cell.source.count("<details>") != cell.source.count("</details>"):
            problems.append(f"cell {index}: a <details> block is not closed")
        visible = SOLUTION_BLOCK.sub("", cell.source)
        problems += [f"cell {index}: an answer in plain view ({m.group(0)!r})"
                     for m in ANSWER_MARKER.finditer(visible)]
        if in_exercises:
            for item in re.split(r"(?m)^\d+\. ", cell.source)[1:]:
                if not SOLUTION_BLOCK.search(item):
                    problems.append(f"cell {index}: exercise {item.splitlines()[0][:50]!r} has no "
                                    "<details><summary>Solution</summary> block")
    return problems


def code_exercise_problems(ipynb: Path) -> list[str]:
    """At least two code exercises (a student cell, then a check cell), and reference solutions
    that run through the checkers in a final Solutions section, collapsed and tagged."""
    cells = jupytext.read(ipynb).cells
    problems = []
    student = [i for i, c in enumerate(cells) if c.cell_type == "code" and STUDENT_CELL in c.source]
    checks = [i for i, c in enumerate(cells) if c.cell_type == "code" and CHECK_CALL.search(c.source)
              and "solution" not in c.metadata.get("tags", [])]
    if len(student) < 2:
        problems.append(f"{len(student)} student cells marked {STUDENT_CELL!r}, at least 2 wanted")
    for i in student:
        if i + 1 not in checks:
            problems.append(f"student cell {i} is not followed by a check cell")
    solutions_at = next((i for i, c in enumerate(cells) if c.cell_type == "markdown"
                         and "## Solutions" in c.source.splitlines()), None)
    if solutions_at is None:
        return [*problems, "no '## Solutions' section"]
    later_headings = [i for i, c in enumerate(cells[solutions_at + 1:], solutions_at + 1)
                      if c.cell_type == "markdown" and re.search(r"(?m)^## ", c.source)]
    if later_headings:
        problems.append("the Solutions section is not the last one")
    references = [c for c in cells[solutions_at + 1:] if c.cell_type == "code"]
    if len(references) < len(student):
        problems.append(f"{len(student)} code exercises but {len(references)} reference solutions")
    for c in references:
        hidden = c.metadata.get("jupyter", {}).get("source_hidden")
        if "solution" not in c.metadata.get("tags", []) or not hidden:
            problems.append("a reference solution cell lacks the 'solution' tag or jupyter.source_hidden")
        if not re.search(r"assert \w+\.ok", c.source) and CHECK_CALL.search(c.source):
            problems.append("a reference solution is checked without asserting the checker's verdict")
    return problems


def dev_log_problems(ipynb: Path) -> list[str]:
    return [f"cell {i}: {m.group(0)!r}" for i, c in enumerate(jupytext.read(ipynb).cells)
            if c.cell_type == "markdown" for m in DEV_LOG.finditer(c.source)]


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercise_answers_are_collapsed(ipynb):
    assert answer_problems(ipynb) == []


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_exercises_check_themselves_and_their_solutions_close_the_notebook(ipynb):
    assert code_exercise_problems(ipynb) == []


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_development_log_in_lesson_text(ipynb):
    assert dev_log_problems(ipynb) == []


def test_an_answer_in_plain_view_is_caught(pair_copy):
    notebook = json.loads(pair_copy.read_text())
    notebook["cells"].append({"cell_type": "markdown", "id": "plain-answer", "metadata": {
        "slideshow": {"slide_type": "subslide"}}, "source": [
        "## Exercises\n", "\n", "1. **Pick k.** Which k? *Correct answer: k = 8.*\n",
        "2. **Another.** Why?\n", "\n", "<details><summary>Solution</summary>\n", "\n",
        "Because.\n", "\n", "</details>\n"]})
    pair_copy.write_text(json.dumps(notebook))
    problems = answer_problems(pair_copy)
    assert any("plain view ('Correct answer')" in p for p in problems)
    assert sum("has no <details>" in p for p in problems) == 1  # the second item has its block


def test_development_log_remarks_are_caught(pair_copy):
    notebook = json.loads(pair_copy.read_text())
    notebook["cells"].append({"cell_type": "markdown", "id": "dev-log", "metadata": {
        "slideshow": {"slide_type": "fragment"}}, "source": [
        "On a busy 2-core machine a second thread made it slower; the AMD EPYC uses oneDNN."]})
    pair_copy.write_text(json.dumps(notebook))
    found = {m.split(": ", 1)[1] for m in dev_log_problems(pair_copy)}
    assert {"'busy 2-core machine'"} <= found or {"'2-core'"} <= found
    assert {"'thread'", "'AMD'", "'EPYC'", "'oneDNN'"} <= found


def test_a_code_exercise_without_its_check_is_caught(pair_copy):
    notebook = json.loads(pair_copy.read_text())
    notebook["cells"] = [c for c in notebook["cells"] if not CHECK_CALL.search("".join(c["source"]))]
    pair_copy.write_text(json.dumps(notebook))
    assert any("not followed by a check cell" in p for p in code_exercise_problems(pair_copy))
