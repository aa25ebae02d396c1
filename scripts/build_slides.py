"""Build the lecture decks: execute each notebook, export reveal.js slides that work offline.

    .venv/bin/python scripts/build_slides.py                 # every notebook, full budgets
    MBPO_FAST=1 .venv/bin/python scripts/build_slides.py     # FAST budgets: a quick deck
    .venv/bin/python scripts/build_slides.py 03 05           # some notebooks only
    .venv/bin/python scripts/build_slides.py --no-execute    # re-export build/executed/ copies
    .venv/bin/python scripts/build_slides.py --figures-dir figures   # full run that also refreshes figures/

Steps (``make slides`` runs the first form):

1. Vendor the browser assets. reveal.js 4, MathJax 2, require.js and jQuery are fetched from the
   npm registry with ``npm pack`` into a cache (``build/npm-cache/``, reused while its tarballs
   match the pinned integrity hashes) and unpacked, only the files a deck loads, into
   ``build/slides/vendor/``. nbconvert's URL options point at these relative paths.
2. Execute each notebook with nbclient (kernel ``python3``, the notebooks' folder as working
   directory, ``MBPO_FIGURES_DIR`` set to a temporary folder so the committed ``figures/`` is
   never overwritten, a timeout per cell) into ``build/executed/``. ``MBPO_FAST`` is passed on to
   the kernel as it is set here.
3. Export each executed copy with nbconvert's ``SlidesExporter`` into
   ``build/slides/<name>.slides.html``, using the cells' ``slideshow`` metadata: ``skip`` cells
   (the setup cell, the widget cell of notebook 03) are left out, ``notes`` cells become reveal's
   speaker notes (``<aside class="notes">``, press ``s`` in a deck). A code cell tagged
   ``hide-input`` (the plotting cells) shows only its output, so that a figure fits on its
   slide; the notebook keeps the code for students. A cell tagged ``hide-output`` shows its code
   without its output on the slide. Before the export, each markdown cell's slide markup is
   applied (:func:`split_for_slides`): a cell that holds a ``<!-- slide ... -->`` block shows its
   headings, its tables and that block on the slide, and the rest of its text, the prose a
   student reads, becomes the slide's speaker notes; ``<!-- notes -->`` sends a cell's prose to
   the notes whole. Both are HTML comments, so the notebook itself never shows them.
4. Make the page offline: nbconvert's reveal template also loads Mermaid from a CDN (a module
   script, dropped: no notebook draws Mermaid diagrams) and widget state would load the widget
   manager from unpkg (dropped: a deck has no kernel, a widget output shows its text form). Links
   and images in the notebooks' text that point at the internet (the Open-in-Colab badge) become
   plain text with the address as a tooltip. The result is checked: a deck that still refers to
   ``http(s)://`` for a ``src``, ``href``, CSS ``url()`` or import is an error.
5. Write ``build/slides/index.html`` (a list of the decks) and zip ``build/slides/`` to
   ``build/mbpo-slides.zip`` for lecturers.

Needs ``npm`` (Node.js) on the PATH for step 1, and the venv's nbconvert, nbclient and ipykernel.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = REPO / "notebooks"
DEFAULT_BUILD = REPO / "build"
ZIP_NAME = "mbpo-slides.zip"
REVEAL_THEME = "white"  # reveal's "simple" (nbconvert's default) imports Google Fonts; "white" is local


@dataclass(frozen=True)
class VendorPackage:
    """One npm package copied into ``vendor/<folder>``: only the files a deck loads.

    ``keep`` holds path prefixes inside the package (a prefix ending in ``/`` keeps a folder).
    ``integrity`` is the registry's SRI hash of the tarball: a cached tarball that does not match
    it is fetched again, and a fetched one that does not match it is an error.
    """

    name: str
    version: str
    integrity: str
    folder: str
    keep: tuple[str, ...]

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def tarball(self) -> str:
        return f"{self.name.replace('/', '-').lstrip('@')}-{self.version}.tgz"

    def keeps(self, path: str) -> bool:
        return any(path == k or (k.endswith("/") and path.startswith(k)) for k in self.keep)


VENDOR = (
    VendorPackage(
        "reveal.js", "4.6.1",
        "sha512-1CW0auaXNPmwmvQ7TwpszwVxMi2Xr5cTS3J3EBC/HHgbPF32Dn7aiu/LKWDOGjMbaDwKQiGmfqcoGQ74HUHCMw==",
        "reveal.js",
        ("LICENSE", "dist/reveal.js", "dist/reveal.css", f"dist/theme/{REVEAL_THEME}.css",
         "dist/theme/fonts/", "plugin/notes/notes.js"),
    ),
    VendorPackage(
        # TeX input and CommonHTML output (nbconvert's "TeX-AMS_CHTML-full,Safe" configuration) with
        # the TeX web fonts; the other outputs, fonts, languages and the unpacked sources stay out.
        "mathjax", "2.7.9",
        "sha512-NOGEDTIM9+MrsqnjPEjVGNx4q0GQxqm61yQwSK+/5S59i26wId5IC5gNu9/bu8+CCVl5p9G2IHcAl/wJa+5+BQ==",
        "mathjax",
        ("LICENSE", "MathJax.js", "config/TeX-AMS_CHTML-full.js", "config/Safe.js", "config/local/",
         "extensions/", "jax/input/TeX/", "jax/output/CommonHTML/", "jax/output/PreviewHTML/",
         "jax/output/NativeMML/", "jax/element/", "localization/en/", "fonts/HTML-CSS/TeX/woff/"),
    ),
    VendorPackage(
        "requirejs", "2.3.7",
        "sha512-DouTG8T1WanGok6Qjg2SXuCMzszOo0eHeH9hDZ5Y4x8Je+9JB38HdTLT4/VA8OaUhBa0JPVHJ0pyBkM1z+pDsw==",
        "requirejs",
        ("require.js",),
    ),
    VendorPackage(
        "jquery", "3.7.1",
        "sha512-m4avr8yL8kmFN8psrbFFFmB/If14iN5o9nw/NgnnM+kybDJpRsAynV2BsfpTYrTRysYUdADVD7CkUUizgkpLfg==",
        "jquery",
        ("LICENSE.txt", "dist/jquery.min.js"),
    ),
)

# nbconvert's URL options, relative to the deck (decks and vendor/ sit side by side).
URL_OPTIONS = {
    # reveal_scroll: a slide taller than the screen (code and a figure) scrolls instead of being cut
    "SlidesExporter": {"reveal_url_prefix": "vendor/reveal.js", "reveal_theme": REVEAL_THEME,
                       "reveal_scroll": True},
    # a plotting cell tagged hide-input shows its figure without the code that draws it; a cell
    # tagged hide-output shows its code without the output (a %%writefile cell's file path)
    "TagRemovePreprocessor": {"enabled": True, "remove_input_tags": ["hide-input"],
                              "remove_all_outputs_tags": ["hide-output"]},
    "HTMLExporter": {
        "mathjax_url": "vendor/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe",
        "require_js_url": "vendor/requirejs/require.js",
        "jquery_url": "vendor/jquery/dist/jquery.min.js",
    },
}

# The reveal template minus its Mermaid module script, which imports Mermaid from a CDN. No notebook
# draws Mermaid diagrams, and a module script cannot load from file:// anyway.
SLIDES_TEMPLATE_NAME = "mbpo_offline_reveal.html.j2"
SLIDES_TEMPLATE = """{%- extends 'reveal/index.html.j2' -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_css -%}
<style type="text/css">
/* Links to the internet are plain text in an offline deck; the address is the tooltip. */
.mbpo-external { border-bottom: 1px dotted currentColor; cursor: help; }
/* Denser than nbconvert's 20 px text at line height 1.6, so that a figure and its comment, or a
   table, fit on the 960 x 700 canvas (tests/browser/test_slides.py measures every slide). */
:root {
    --jp-content-font-size1: 18px;
    --jp-content-line-height: 1.4;
    --jp-code-font-size: 14px;
    --jp-content-heading-margin-top: 0.5em;
    --jp-content-heading-margin-bottom: 0.5em;
    --jp-cell-prompt-width: 0px;
}
/* Figures: centred and as wide as the slide (a lecture hall reads them from the back), never
   taller than the room a heading and one line leave; object-fit keeps the aspect when the height
   is what limits. tests/browser/test_slides.py measures the width and the font size it gives. */
.reveal .jp-OutputArea-output img {
    display: block; margin: 0 auto; width: 100%; height: auto; max-height: 560px; object-fit: contain;
}
/* No In [n]: / Out[n]: prompts on a slide: the width goes to the code, whose lines (up to the
   project's 110 characters) then fit. */
.jp-InputPrompt, .jp-OutputPrompt { display: none; }
</style>
{%- endblock html_head_css -%}
"""

EXTERNAL = r"""(?:https?:)?//"""
EXTERNAL_REFERENCE = re.compile(
    r"""\b(?:src|href)\s*=\s*["']?\s*""" + EXTERNAL          # <img src=..>, <a href=..>, <link href=..>
    + r"""|url\(\s*["']?\s*""" + EXTERNAL                     # CSS url(...)
    + r"""|@import\s+(?:url\(\s*)?["']?\s*""" + EXTERNAL      # CSS @import
    + r"""|\bimport\b[^;'"]*?\bfrom\s*["']""" + EXTERNAL,    # JS module import
    re.IGNORECASE,
)
EXTERNAL_LINK = re.compile(r"""<a\b[^>]*?\bhref\s*=\s*["'](https?://[^"']*)["'][^>]*>(.*?)</a\s*>""",
                           re.IGNORECASE | re.DOTALL)
EXTERNAL_IMAGE = re.compile(r"""<img\b[^>]*?\bsrc\s*=\s*["'](https?://[^"']*)["'][^>]*>""", re.IGNORECASE)
IMAGE_ALT = re.compile(r"""\balt\s*=\s*["']([^"']*)["']""", re.IGNORECASE)


class BuildError(RuntimeError):
    """A step of the build failed; the message says which notebook or file and why."""


# --- choosing notebooks and the mode --------------------------------------------------------------

def all_notebooks(notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The series' notebooks, ``NN_name.ipynb``, in order."""
    return sorted(p for p in notebooks_dir.glob("[0-9][0-9]_*.ipynb"))


def select_notebooks(names: list[str], notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The notebooks named by ``names`` (``03``, ``03_rollout_length_theory`` or a path); all if empty.

    Raises ``BuildError`` naming every value that matches no notebook, or more than one.
    """
    available = all_notebooks(notebooks_dir)
    if not names:
        return available
    chosen, bad = [], []
    for name in names:
        stem = Path(name).name.removesuffix(".ipynb").removesuffix(".py")
        matches = [nb for nb in available if nb.stem == stem or nb.stem.split("_", 1)[0] == stem]
        if len(matches) != 1:
            bad.append(name)
        elif matches[0] not in chosen:
            chosen.append(matches[0])
    if bad:
        raise BuildError(f"no single notebook matches {', '.join(map(repr, bad))}; "
                         f"choose from {', '.join(nb.stem for nb in available)} (or their numbers)")
    return chosen


def read_fast_mode() -> bool:
    """``MBPO_FAST`` read by the series' one reader, ``mbpo_lib.fast_mode()`` (bad values raise)."""
    sys.path.insert(0, str(REPO))
    try:
        import mbpo_lib
    finally:
        sys.path.remove(str(REPO))
    return mbpo_lib.fast_mode()


# --- step 1: vendored browser assets --------------------------------------------------------------

def sri_sha512(path: Path) -> str:
    """The Subresource-Integrity string (``sha512-<base64>``) npm records for a tarball."""
    digest = hashlib.sha512()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def fetch_tarball(package: VendorPackage, cache_dir: Path, npm: str = "npm") -> Path:
    """The package's tarball from the cache, fetched with ``npm pack`` when missing or damaged."""
    cache_dir = cache_dir.resolve()
    cached = cache_dir / package.tarball
    if cached.exists() and sri_sha512(cached) == package.integrity:
        return cached
    if shutil.which(npm) is None:
        raise BuildError(f"{npm!r} is not on the PATH: install Node.js (npm) to fetch {package.spec} "
                         f"from the npm registry, or put {package.tarball} into {cache_dir}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        result = subprocess.run([npm, "pack", package.spec, "--pack-destination", tmp, "--silent"],
                                capture_output=True, text=True, cwd=tmp)
        packed = Path(tmp) / package.tarball
        if result.returncode != 0 or not packed.exists():
            raise BuildError(f"npm pack {package.spec} failed (exit {result.returncode}): "
                             f"{(result.stderr or result.stdout).strip()[-2000:]}")
        got = sri_sha512(packed)
        if got != package.integrity:
            raise BuildError(f"{package.spec} from the registry has integrity {got}, "
                             f"expected {package.integrity}")
        os.replace(packed, cached)  # atomic: an interrupted fetch never leaves a half tarball
    return cached


def unpack(package: VendorPackage, tarball: Path, vendor_dir: Path) -> int:
    """Copy the kept files of ``tarball`` (its ``package/`` folder) into ``vendor_dir/<folder>``."""
    target = vendor_dir / package.folder
    if target.exists():
        shutil.rmtree(target)
    count = 0
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) < 2 or ".." in parts or Path(member.name).is_absolute():
                continue
            inner = "/".join(parts[1:])  # drop the tarball's top folder, "package/"
            if not package.keeps(inner):
                continue
            destination = target / inner
            destination.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as source, open(destination, "wb") as out:
                shutil.copyfileobj(source, out)
            count += 1
    missing = [k for k in package.keep if not k.endswith("/") and not (target / k).is_file()]
    if missing:
        raise BuildError(f"{package.spec} has no {', '.join(missing)}: the pinned version changed layout")
    return count


def vendor_assets(vendor_dir: Path, cache_dir: Path, npm: str = "npm") -> None:
    """Fill ``vendor_dir`` with the pinned packages and write ``VERSIONS.txt`` beside them."""
    vendor_dir.mkdir(parents=True, exist_ok=True)
    lines = ["Browser assets of the decks, from the npm registry (each package's licence is inside):"]
    for package in VENDOR:
        files = unpack(package, fetch_tarball(package, cache_dir, npm), vendor_dir)
        lines.append(f"{package.spec:<18} {files:5d} files  {package.integrity}")
    (vendor_dir / "VERSIONS.txt").write_text("\n".join(lines) + "\n")
    problems = [f"{css.relative_to(vendor_dir)}: {m.group(0)!r}" for css in sorted(vendor_dir.rglob("*.css"))
                for m in EXTERNAL_REFERENCE.finditer(css.read_text(errors="replace"))]
    if problems:
        raise BuildError("vendored style sheets load from the internet: " + "; ".join(problems))


# --- step 2: execution ----------------------------------------------------------------------------

def execute(notebook: Path, executed: Path, cell_timeout: int, fast: bool,
            figures_dir: Path | None = None) -> float:
    """Run ``notebook`` top to bottom in a fresh ``python3`` kernel; write the result to ``executed``.

    The kernel starts in the notebooks' folder, with ``MBPO_FIGURES_DIR`` pointing at
    ``figures_dir`` (``figures/`` of the repository refreshes the committed figures from this run)
    or, by default, at a temporary folder that is thrown away. A failing cell (unless tagged
    ``raises-exception``) stops the build; the partly executed copy is still written, so its
    outputs show what went wrong. Returns the seconds taken.
    """
    import nbformat
    from jupyter_kernels import ipc_kernel_config, patch_missed_wakeups
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    patch_missed_wakeups()   # a missed wake-up cost a whole cell timeout (scripts/jupyter_kernels.py)

    nb = nbformat.read(notebook, as_version=4)
    executed.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    previous = os.environ.get("MBPO_FIGURES_DIR")
    with tempfile.TemporaryDirectory(prefix="mbpo_slides_figures_") as scratch, \
            tempfile.TemporaryDirectory(prefix="mbpo-kernel-") as sockets:
        if figures_dir is not None:
            figures_dir.mkdir(parents=True, exist_ok=True)
        os.environ["MBPO_FIGURES_DIR"] = str(figures_dir or scratch)
        client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(notebook.parent)}},
                                config=ipc_kernel_config(Path(sockets)))
        try:
            client.execute()
        except (CellExecutionError, CellTimeoutError) as error:
            nb.metadata["mbpo_slides"] = {"fast": fast, "failed": True}  # --no-execute refuses it
            nbformat.write(nb, executed)
            raise BuildError(f"{notebook.name} failed while executing (partial copy in {executed}):\n"
                             f"{str(error)[-3000:]}") from None
        finally:
            if previous is None:
                os.environ.pop("MBPO_FIGURES_DIR", None)
            else:
                os.environ["MBPO_FIGURES_DIR"] = previous
    nb.metadata["mbpo_slides"] = {"fast": fast, "seconds": round(time.perf_counter() - start, 1)}
    nbformat.write(nb, executed)
    return time.perf_counter() - start


# --- step 3, first: what goes on a slide and what into its notes -----------------------------------

# A markdown cell's slide markup, both HTML comments (invisible in Jupyter, Colab and on GitHub):
#   <!-- slide            what the slide shows of this cell, as markdown (bullets, an equation);
#   - a short phrase      the cell's headings and tables stay on the slide too, and the rest of its
#   -->                   text goes to the slide's speaker notes.
#   <!-- notes -->        the cell's prose (all but its headings and tables) goes to the notes.
SLIDE_BLOCK = re.compile(r"<!--[ \t]*slide[ \t]*\n(?P<body>.*?)-->[ \t]*\n?", re.DOTALL)
NOTES_MARK = re.compile(r"<!--[ \t]*notes[ \t]*-->[ \t]*\n?")
MARKUP_WORD = re.compile(r"<!--[ \t]*(slide|notes)\b")
HEADING_LINE = re.compile(r"#{1,6}[ \t]")


def split_for_slides(source: str, where: str = "a markdown cell") -> tuple[str, str]:
    """A markdown cell's ``(slide, notes)``: what its slide shows and what goes to the notes.

    Without markup the whole cell is the slide and there are no notes. With one or more
    ``<!-- slide ... -->`` blocks, or with ``<!-- notes -->``, the slide keeps, in the cell's
    order, its heading lines, its tables (a table is read as a grid, and is not repeated in a
    block) and the blocks' bodies; the notes are the rest of the cell, the prose. ``where`` names
    the cell in the ``BuildError`` raised for markup that is neither (an unclosed block,
    ``slide`` and ``notes`` in one cell).
    """
    blocks = list(SLIDE_BLOCK.finditer(source))
    notes_marks = NOTES_MARK.findall(source)
    if len(MARKUP_WORD.findall(source)) != len(blocks) + len(notes_marks):
        raise BuildError(f"{where}: slide markup must be '<!-- slide' on a line of its own, the slide's "
                         f"markdown, then '-->'; or '<!-- notes -->' (found: {source[:120]!r}...)")
    if not blocks and not notes_marks:
        return source, ""
    if blocks and notes_marks:
        raise BuildError(f"{where}: a cell has either <!-- slide --> blocks or <!-- notes -->, not both")
    slide: list[str] = []   # markdown pieces, in the cell's order
    prose: list[str] = []
    position = 0
    pieces = [(block.start(), block.end(), block.group("body").strip()) for block in blocks]
    fenced = False   # inside a ``` code block every line is prose, whatever it starts with
    for start, end, body in [*pieces, (len(source), len(source), None)]:
        table: list[str] = []
        for line in NOTES_MARK.sub("", source[position:start]).splitlines():
            if line.lstrip().startswith("```"):
                fenced = not fenced
            if not fenced and line.lstrip().startswith("|"):
                table.append(line)
                continue
            if table:
                slide.append("\n".join(table))
                table = []
            (slide if not fenced and HEADING_LINE.match(line) else prose).append(line)
        if table:
            slide.append("\n".join(table))
        if body:
            slide.append(body)
        position = end
    notes = re.sub(r"\n{3,}", "\n\n", "\n".join(prose)).strip()
    return "\n\n".join(slide).strip(), notes


def apply_slide_markup(nb, name: str = "the notebook"):
    """``nb`` with every markdown cell's slide markup applied (:func:`split_for_slides`): the cell
    keeps what its slide shows, and a ``notes`` cell after it holds the rest. A cell left with
    nothing for the slide becomes the notes cell itself, unless it opens a slide or subslide (its
    slide would be empty: a ``BuildError``)."""
    import nbformat

    def notes_cell(cell, notes: str):
        new = nbformat.v4.new_markdown_cell(notes, metadata={"slideshow": {"slide_type": "notes"}})
        if cell.get("id"):
            new.id = f"{cell.id[:58]}-notes"   # deterministic: the same notebook gives the same deck
        return new

    cells = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            cells.append(cell)
            continue
        slide, notes = split_for_slides(cell.source, f"{name}, markdown cell {index}")
        if not notes and slide == cell.source:
            cells.append(cell)
            continue
        show = cell.metadata.get("slideshow", {}).get("slide_type", "-")
        if not slide:
            if show in ("slide", "subslide"):
                raise BuildError(f"{name}, markdown cell {index} opens a {show} but gives it nothing: "
                                 "keep its heading or add a <!-- slide ... --> block")
            cells.append(notes_cell(cell, notes))
            continue
        cell = nbformat.from_dict(dict(cell))
        cell.source = slide
        cells.append(cell)
        if notes:
            cells.append(notes_cell(cell, notes))
    nb.cells = cells
    return nb


# --- steps 3 and 4: export and offline clean-up ---------------------------------------------------

def deck_title(nb) -> str:
    """The notebook's first heading (``03 · How long may a model rollout be?``), else its name."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return ""


def offline_links(page: str) -> str:
    """Turn links and images that point at the internet into plain text with the address as tooltip.

    ``<img src="https://...">`` becomes its alt text (``span.mbpo-external-image``; the Colab badge
    reads "Open In Colab"), ``<a href="https://...">text</a>`` its text in a ``span.mbpo-external``
    whose ``title`` holds the address.
    """
    def image(match: re.Match) -> str:
        alt = IMAGE_ALT.search(match.group(0))
        return f'<span class="mbpo-external-image">{alt.group(1) if alt and alt.group(1) else "image"}</span>'

    def link(match: re.Match) -> str:
        return f'<span class="mbpo-external" title="{html.escape(match.group(1))}">{match.group(2)}</span>'

    return EXTERNAL_LINK.sub(link, EXTERNAL_IMAGE.sub(image, page))


def external_references(page: str) -> list[str]:
    """Every place in ``page`` that would load from, or link to, the internet (empty when offline)."""
    return [page[max(0, m.start() - 40):m.end() + 60].replace("\n", " ")
            for m in EXTERNAL_REFERENCE.finditer(page)]


def slides_exporter():
    """nbconvert's ``SlidesExporter`` with the vendored URLs and the offline template."""
    from jinja2 import DictLoader
    from nbconvert import SlidesExporter
    from traitlets.config import Config

    return SlidesExporter(config=Config(URL_OPTIONS), template_file=SLIDES_TEMPLATE_NAME,
                          extra_loaders=[DictLoader({SLIDES_TEMPLATE_NAME: SLIDES_TEMPLATE})])


def export_deck(executed: Path, deck: Path, exporter=None) -> dict:
    """Export one executed notebook to an offline reveal.js deck; return a few counts about it.

    Raises ``BuildError`` if the deck still refers to the internet.
    """
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    if nb.metadata.get("mbpo_slides", {}).get("failed"):
        raise BuildError(f"{executed} stopped at an error when it was executed: execute it again "
                         f"(without --no-execute)")
    nb.metadata.pop("widgets", None)  # no widget manager from unpkg: widget outputs show as text
    nb = apply_slide_markup(nb, executed.name)
    nb.metadata["title"] = deck_title(nb) or executed.stem
    exporter = exporter or slides_exporter()
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": executed.stem}})
    body = offline_links(body)
    left = external_references(body)
    if left:
        raise BuildError(f"{deck.name} still refers to the internet:\n  " + "\n  ".join(left))
    deck.parent.mkdir(parents=True, exist_ok=True)
    deck.write_text(body, encoding="utf-8")
    slide_types = [c.metadata.get("slideshow", {}).get("slide_type", "-") for c in nb.cells]
    return {"title": nb.metadata["title"], "fast": nb.metadata.get("mbpo_slides", {}).get("fast"),
            "slides": sum(t in ("slide", "subslide") for t in slide_types),
            "notes": body.count('<aside class="notes">'), "notes_cells": slide_types.count("notes")}


# --- step 5: index and zip ------------------------------------------------------------------------

def write_index(slides_dir: Path) -> Path:
    """``index.html``: one link per deck found in ``slides_dir``, by the deck's title."""
    items = []
    for deck in sorted(slides_dir.glob("*.slides.html")):
        match = re.search(r"<title>(.*?) slides</title>", deck.read_text(encoding="utf-8"), re.DOTALL)
        title = match.group(1).strip() if match else deck.stem
        items.append(f'  <li><a href="{deck.name}">{title}</a></li>')
    page = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
            "<title>MBPO lecture slides</title></head>\n<body>\n<h1>MBPO lecture slides</h1>\n"
            "<p>Open a deck; it works without a network. Arrow keys move, <kbd>s</kbd> opens the "
            "speaker notes, <kbd>Esc</kbd> the overview.</p>\n<ul>\n" + "\n".join(items)
            + "\n</ul>\n</body>\n</html>\n")
    index = slides_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def zip_slides(slides_dir: Path, archive: Path) -> Path:
    """Zip ``slides_dir`` (decks, index and vendor/) into ``archive`` under a ``mbpo-slides/`` folder."""
    partial = archive.with_suffix(".zip.part")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(slides_dir.rglob("*")):
            if path.is_file():
                zf.write(path, Path("mbpo-slides") / path.relative_to(slides_dir))
    os.replace(partial, archive)
    return archive


# --- the command ----------------------------------------------------------------------------------

def build(notebooks: list[Path], build_dir: Path, cache_dir: Path, execute_first: bool, fast: bool,
          cell_timeout: int, npm: str = "npm", log=print, figures_dir: Path | None = None) -> dict[str, dict]:
    """Run the whole build for ``notebooks``; return the export counts per deck name."""
    executed_dir, slides_dir = build_dir / "executed", build_dir / "slides"
    missing = [str(executed_dir / nb.name) for nb in notebooks if not (executed_dir / nb.name).exists()]
    if not execute_first and missing:
        raise BuildError(f"--no-execute needs executed copies, and {', '.join(missing)} "
                         f"{'does' if len(missing) == 1 else 'do'} not exist: run without --no-execute first")
    start = time.perf_counter()
    vendor_assets(slides_dir / "vendor", cache_dir, npm)
    log(f"vendor: {', '.join(p.spec for p in VENDOR)} in {slides_dir / 'vendor'} "
        f"({time.perf_counter() - start:.1f} s)")
    exporter, decks = slides_exporter(), {}
    for notebook in notebooks:
        executed = executed_dir / notebook.name
        if execute_first:
            seconds = execute(notebook, executed, cell_timeout, fast, figures_dir)
            log(f"executed {notebook.name} ({'FAST' if fast else 'full'} mode) in {seconds:.0f} s")
        deck = slides_dir / f"{notebook.stem}.slides.html"
        info = export_deck(executed, deck, exporter)
        decks[deck.name] = info
        mode = {True: "FAST", False: "full"}.get(info["fast"], "unknown")
        log(f"exported {deck.relative_to(build_dir)}: {info['slides']} slides, {info['notes']} speaker "
            f"notes, executed in {mode} mode")
        if info["notes"] != info["notes_cells"]:
            raise BuildError(f"{deck.name}: {info['notes_cells']} notes cells but "
                             f"{info['notes']} speaker notes")
    write_index(slides_dir)
    archive = zip_slides(slides_dir, build_dir / ZIP_NAME)
    log(f"wrote {archive} ({archive.stat().st_size / 1e6:.1f} MB); "
        f"{time.perf_counter() - start:.0f} s in all")
    return decks


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                        help="notebooks to build, by number (03), name or path; default: all")
    parser.add_argument("--no-execute", action="store_true",
                        help="export the copies already executed in BUILD_DIR/executed/")
    parser.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD,
                        help="where executed/, slides/ and the zip go (default: build/)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="where the npm tarballs are cached (default: BUILD_DIR/npm-cache)")
    parser.add_argument("--cell-timeout", type=int, default=None,
                        help="seconds a cell may run (default: 900 in FAST mode, 86400 in full mode)")
    parser.add_argument("--npm", default="npm", help="the npm command (default: npm)")
    parser.add_argument("--figures-dir", type=Path, default=None,
                        help="keep the figures the notebooks save here (e.g. figures/ after a "
                             "full-mode build; default: a temporary folder, thrown away)")
    args = parser.parse_args(argv)
    if args.cell_timeout is not None and args.cell_timeout <= 0:
        parser.error(f"--cell-timeout must be a positive number of seconds, got {args.cell_timeout}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        notebooks = select_notebooks(args.notebooks)
        fast = read_fast_mode()
        timeout = args.cell_timeout or (900 if fast else 86400)
        build_dir = args.build_dir.resolve()
        cache_dir = (args.cache_dir or build_dir / "npm-cache").resolve()
        if args.figures_dir is not None and fast:
            raise BuildError("--figures-dir keeps figures from full-mode runs only: unset MBPO_FAST")
        build(notebooks, build_dir, cache_dir, not args.no_execute, fast, timeout, args.npm,
              log=lambda message: print(message, flush=True),
              figures_dir=args.figures_dir.resolve() if args.figures_dir else None)
    except (BuildError, ValueError) as error:
        print(f"build_slides: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
