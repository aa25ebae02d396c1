"""The slide build's own logic, without a kernel, npm or a browser (tests/browser/test_slides.py
builds and opens the real decks)."""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("build_slides", REPO / "scripts" / "build_slides.py")
build_slides = importlib.util.module_from_spec(_spec)
sys.modules["build_slides"] = build_slides
_spec.loader.exec_module(build_slides)


def test_notebooks_are_chosen_by_number_name_or_path():
    everything = build_slides.select_notebooks([])
    assert [nb.stem[:2] for nb in everything] == sorted(nb.stem[:2] for nb in everything)
    chosen = build_slides.select_notebooks(["03", "notebooks/00_overview.ipynb", "03_rollout_length_theory"])
    assert [nb.stem for nb in chosen] == ["03_rollout_length_theory", "00_overview"]


def test_an_unknown_notebook_is_an_error_naming_it_and_the_choices():
    with pytest.raises(build_slides.BuildError, match=r"'99', 'nope'.*00_overview"):
        build_slides.select_notebooks(["03", "99", "nope"])


def test_links_and_images_to_the_internet_become_text():
    badge = ('<p><a href="https://colab.research.google.com/github/x/y/blob/main/notebooks/03.ipynb">'
             '<img alt="Open In Colab" src="https://colab.research.google.com/assets/colab-badge.svg"/></a> '
             'and <a href="#local">a local anchor</a></p>')
    page = build_slides.offline_links(badge)
    assert build_slides.external_references(page) == []
    assert "Open In Colab" in page and 'title="https://colab.research.google.com/github/x/y' in page
    assert '<a href="#local">a local anchor</a>' in page


@pytest.mark.parametrize("html", [
    '<script src="https://cdn.example.org/x.js"></script>',
    "<link rel='stylesheet' href='//fonts.example.org/a.css'>",
    "<style>@import url(https://fonts.googleapis.com/css?family=Lato);</style>",
    '<style>.a { background: url("http://example.org/a.png") }</style>',
    "<script type='module'>import mermaid from 'https://cdn.example.org/mermaid.mjs';</script>",
])
def test_every_kind_of_reference_to_the_internet_is_found(html):
    assert len(build_slides.external_references(html)) == 1


def test_relative_and_inline_references_are_offline():
    html = ('<script src="vendor/requirejs/require.js"></script><img src="data:image/png;base64,AAAA">'
            '<a href="#/3">next</a><style>@import url(./fonts/a.css);</style>')
    assert build_slides.external_references(html) == []


def test_vendored_packages_keep_only_what_a_deck_loads():
    reveal = next(p for p in build_slides.VENDOR if p.name == "reveal.js")
    assert reveal.keeps("dist/reveal.js") and reveal.keeps("dist/theme/fonts/source-sans-pro/x.woff")
    assert not reveal.keeps("dist/theme/simple.css")  # imports Google Fonts
    assert not reveal.keeps("dist/reveal.js.map")
    majors = {p.name: p.version.split(".")[0] for p in build_slides.VENDOR}
    assert majors == {"reveal.js": "4", "mathjax": "2", "requirejs": "2", "jquery": "3"}


def test_a_bad_cell_timeout_is_refused(capsys):
    with pytest.raises(SystemExit):
        build_slides.parse_args(["--cell-timeout", "0"])
    assert "--cell-timeout must be a positive number of seconds, got 0" in capsys.readouterr().err


def test_a_hide_input_cell_shows_its_output_without_its_code(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    def code(source, tags=()):
        printed = new_output("stream", name="stdout", text=f"printed by cell {len(source)}\n")
        cell = new_code_cell(source, outputs=[printed])
        cell.metadata["slideshow"] = {"slide_type": "slide"}
        cell.metadata["tags"] = list(tags)
        return cell

    nb = new_notebook(cells=[new_markdown_cell("# A deck"), code("drawn_here = 1", ["hide-input"]),
                             code("shown_here = 2")])
    executed = tmp_path / "executed.ipynb"
    nbformat.write(nb, executed)
    build_slides.export_deck(executed, tmp_path / "deck.slides.html")
    page = (tmp_path / "deck.slides.html").read_text(encoding="utf-8")
    assert page.count("printed by cell 14") == 2        # both outputs (the sources are 14 long)
    assert "shown_here" in page                         # the code of a plain cell
    assert "drawn_here" not in page                     # not the code of a hide-input cell


def test_figures_go_to_a_temporary_folder_unless_figures_dir_is_given(tmp_path, monkeypatch):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    monkeypatch.setenv("MBPO_FIGURES_DIR", "/the/callers/choice")
    nb = new_notebook(cells=[new_code_cell(
        "import os, pathlib\n"
        "where = pathlib.Path(os.environ['MBPO_FIGURES_DIR'])\n"
        "(where / 'figure.png').write_text('drawn')\n"
        "print(where)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = tmp_path / "nb.ipynb"
    nbformat.write(nb, notebook)

    kept = tmp_path / "kept"
    build_slides.execute(notebook, tmp_path / "executed" / "a.ipynb", 120, False, figures_dir=kept)
    assert (kept / "figure.png").read_text() == "drawn"
    build_slides.execute(notebook, tmp_path / "executed" / "b.ipynb", 120, False)
    executed = nbformat.read(tmp_path / "executed" / "b.ipynb", as_version=4)
    scratch = executed.cells[0].outputs[0]["text"].strip()
    assert scratch != str(kept) and not Path(scratch).exists()   # a temporary folder, removed
    assert os.environ["MBPO_FIGURES_DIR"] == "/the/callers/choice"  # the caller's value is back


def test_figures_dir_is_refused_in_fast_mode(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MBPO_FAST", "1")
    assert build_slides.main(["--figures-dir", str(tmp_path), "--build-dir", str(tmp_path)]) == 1
    assert "--figures-dir keeps figures from full-mode runs only" in capsys.readouterr().err


CELL = """## Theorem 4.3
<!-- slide
- the error under the new policy, measured
- $k^\\star > 0 \\iff \\varepsilon_{m'} < \\varepsilon_\\pi$
-->
Replace the worst case by the model's actual error on the new policy's states.

Then the best $k$ is positive when the slope is small."""


def test_a_slide_block_goes_on_the_slide_and_the_prose_into_the_notes():
    slide, notes = build_slides.split_for_slides(CELL)
    assert slide == ("## Theorem 4.3\n\n- the error under the new policy, measured\n"
                     "- $k^\\star > 0 \\iff \\varepsilon_{m'} < \\varepsilon_\\pi$")
    assert notes == ("Replace the worst case by the model's actual error on the new policy's states.\n\n"
                     "Then the best $k$ is positive when the slope is small.")
    assert "<!--" not in slide + notes


def test_a_cell_without_markup_is_all_slide_and_notes_mark_sends_the_prose_to_the_notes():
    assert build_slides.split_for_slides("## A\n\nSome text.") == ("## A\n\nSome text.", "")
    assert build_slides.split_for_slides("### A\n<!-- notes -->\nSome text.") == ("### A", "Some text.")
    assert build_slides.split_for_slides("<!-- notes -->\nOnly prose.") == ("", "Only prose.")


@pytest.mark.parametrize("source, message", [
    ("## A\n<!-- slide\n- a bullet\n", "on a line of its own"),           # never closed
    ("## A\n<!-- slide - a bullet -->\n", "on a line of its own"),        # not on its own line
    ("<!-- notes -->\n<!-- slide\n- b\n-->\ntext", "not both"),
])
def test_bad_markup_is_an_error_naming_the_cell(source, message):
    with pytest.raises(build_slides.BuildError, match=message):
        build_slides.split_for_slides(source, "03.ipynb, markdown cell 7")


def test_a_table_stays_on_the_slide_in_its_place():
    source = "### MBPO vs Dyna\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nProse.\n<!-- slide\n- a bullet\n-->\n"
    assert build_slides.split_for_slides(source) == (
        "### MBPO vs Dyna\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- a bullet", "Prose.")
    assert build_slides.split_for_slides("<!-- notes -->\n| a |\n|---|\nWords.") == ("| a |\n|---|", "Words.")


def test_a_code_block_in_the_prose_goes_to_the_notes_whole():
    source = ("## Run it\n<!-- slide\n- one command\n-->\n```bash\n# a comment, not a heading\n"
              "echo '| not a table |'\n```\n")
    slide, notes = build_slides.split_for_slides(source)
    assert slide == "## Run it\n\n- one command"
    assert notes == "```bash\n# a comment, not a heading\necho '| not a table |'\n```"


def test_markup_turns_into_slide_cells_and_speaker_notes_cells():
    import nbformat

    nb = nbformat.v4.new_notebook()
    slide = {"slideshow": {"slide_type": "slide"}}
    nb.cells = [nbformat.v4.new_markdown_cell(CELL, metadata=slide),
                nbformat.v4.new_code_cell("x = 1", metadata={"slideshow": {"slide_type": "fragment"}}),
                nbformat.v4.new_markdown_cell("<!-- notes -->\nWhat to say.",
                                              metadata={"slideshow": {"slide_type": "fragment"}}),
                nbformat.v4.new_markdown_cell("Plain text.",
                                              metadata={"slideshow": {"slide_type": "fragment"}})]
    out = build_slides.apply_slide_markup(nbformat.from_dict(nb), "test.ipynb")
    kinds = [(c.cell_type, c.metadata["slideshow"]["slide_type"]) for c in out.cells]
    assert kinds == [("markdown", "slide"), ("markdown", "notes"), ("code", "fragment"),
                     ("markdown", "notes"), ("markdown", "fragment")]
    assert out.cells[1].source.startswith("Replace the worst case")
    assert out.cells[1].id == f"{nb.cells[0].id}-notes"
    assert out.cells[3].source == "What to say." and out.cells[4].source == "Plain text."
    nb.cells[0].source = "<!-- notes -->\nNo heading, no slide block."
    with pytest.raises(build_slides.BuildError, match="opens a slide but gives it nothing"):
        build_slides.apply_slide_markup(nbformat.from_dict(nb), "test.ipynb")
