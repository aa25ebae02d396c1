"""The lecture decks: exported in FAST mode, then opened offline from file:// in headless Chromium.

``scripts/build_slides.py`` runs once for the whole module (every notebook executed once, in FAST
mode, into a temporary folder; the npm tarballs cached in ``build/npm-cache/``), then:

- no ``src=`` or ``href=`` in any deck points at ``http``;
- each deck has at least as many ``<section>``s as slide cells, and one ``<aside class="notes">``
  per ``notes`` cell;
- the widget cell of notebook 03 is left out, its static figure shown on a slide before it;
- each deck opens from ``file://`` in Chromium with every request to the network refused: reveal.js
  starts, MathJax typesets every equation (checked in full on the theory deck, notebook 03), no
  TeX is left raw, and the page logs no errors and no failed requests;
- every slide, all fragments shown, fits reveal's 960 x 700 canvas: none taller, no line of code
  or output cut at the right edge (a slide that does not fit: split it with a ``subslide`` cell,
  or tag a plotting cell ``hide-input`` so that only its figure shows).

- the decks written for the lecture hall (:data:`LECTURE_DECKS`, where the notebooks' slide markup
  is done) hold at most :data:`MAX_WORDS` words of body text per slide, show every figure at least
  :data:`MIN_FIGURE_WIDTH` canvas pixels wide with its base font at :data:`MIN_FONT_PX` pixels or
  more, no table longer than :data:`MAX_TABLE_ROWS` rows, and no notebook-only words
  (:data:`NOTEBOOK_ONLY`); a synthetic deck shows that each limit catches a slide that breaks it.

Screenshots go to a ``slides_screenshots`` folder under pytest's temp folder (the path is
printed). ``MBPO_SLIDES_BUILD=build`` runs the same checks on an existing build instead, e.g. the
full-mode decks of ``make slides``.

Like the widget's browser test, this needs Debian's Chromium at /usr/bin/chromium and skips
without it, unless ``MBPO_REQUIRE_BROWSER=1`` (set by ``.ci/run``), where a missing browser is a
failure. The build also needs ``npm`` (Node.js) on the PATH, as ``make slides`` does.
"""

import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from jupyter_servers import CHROMIUM, CHROMIUM_FLAGS, require_chromium

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "build_slides.py"
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
THEORY = "03_rollout_length_theory"
BUILD_TIMEOUT = 2400  # seconds for executing every notebook in FAST mode on a loaded 2-core machine
ONLINE = re.compile(r"""\b(?:src|href)\s*=\s*["']?\s*http""", re.IGNORECASE)

# The build runs in the first test that needs it: give that test the build's time as well.
pytestmark = pytest.mark.timeout(BUILD_TIMEOUT + 600)


def _build_slides_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_slides_for_tests", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module   # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def slide_types(notebook: Path) -> list[str]:
    """Each cell's slide type as the deck is made: after the slide markup (notes cells added)."""
    nb = _build_slides_module().apply_slide_markup(nbformat.read(notebook, as_version=4), notebook.name)
    return [c.metadata.get("slideshow", {}).get("slide_type", "-") for c in nb.cells]


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("slides_screenshots")


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    """Every notebook executed in FAST mode and exported; the build folder.

    ``MBPO_SLIDES_BUILD=build`` checks an existing build instead (e.g. the full-mode decks of
    ``make slides``) and builds nothing.
    """
    require_chromium()
    existing = os.environ.get("MBPO_SLIDES_BUILD")
    if existing:
        if not (Path(existing) / "slides").is_dir():
            pytest.fail(f"MBPO_SLIDES_BUILD={existing!r} has no slides/ folder: run `make slides` first")
        return Path(existing).resolve()
    out = tmp_path_factory.mktemp("slides_build")
    env = {**os.environ, "MBPO_FAST": "1", "OMP_NUM_THREADS": "1"}
    start = time.monotonic()
    command = [sys.executable, str(SCRIPT), "--build-dir", str(out),
               "--cache-dir", str(REPO / "build" / "npm-cache")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    output = f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    assert result.returncode == 0, f"build_slides.py failed:\n{output}"
    print(f"\nbuilt {len(NOTEBOOKS)} FAST decks in {time.monotonic() - start:.0f} s into {out}")
    print(result.stdout)
    return out


@pytest.fixture(scope="module")
def browser(build):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def deck_path(build: Path, notebook: Path) -> Path:
    return build / "slides" / f"{notebook.stem}.slides.html"


# --- the files ----------------------------------------------------------------------------------

def test_a_deck_per_notebook_an_index_and_the_zip(build):
    with zipfile.ZipFile(build / "mbpo-slides.zip") as zf:
        names = set(zf.namelist())
    expected = {f"mbpo-slides/{nb.stem}.slides.html" for nb in NOTEBOOKS} | {
        "mbpo-slides/index.html",
        "mbpo-slides/vendor/reveal.js/dist/reveal.js",
        "mbpo-slides/vendor/reveal.js/plugin/notes/notes.js",
        "mbpo-slides/vendor/mathjax/MathJax.js",
        "mbpo-slides/vendor/requirejs/require.js",
        "mbpo-slides/vendor/jquery/dist/jquery.min.js",
    }
    assert expected - names == set()
    index = (build / "slides" / "index.html").read_text(encoding="utf-8")
    assert all(f'href="{nb.stem}.slides.html"' in index for nb in NOTEBOOKS)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_src_or_href_points_at_http(build, notebook):
    page = deck_path(build, notebook).read_text(encoding="utf-8")
    assert [page[m.start() - 60:m.end() + 80] for m in ONLINE.finditer(page)] == []


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_sections_for_every_slide_cell_and_notes_for_every_notes_cell(build, notebook):
    page = deck_path(build, notebook).read_text(encoding="utf-8")
    types = slide_types(notebook)
    slide_cells = sum(t in ("slide", "subslide") for t in types)
    assert page.count("<section") >= slide_cells > 0
    assert page.count('<aside class="notes">') == types.count("notes")


def test_the_widget_cell_is_skipped_and_its_static_figure_shown_before_it(build):
    executed = nbformat.read(build / "executed" / f"{THEORY}.ipynb", as_version=4)
    page = deck_path(build, REPO / "notebooks" / f"{THEORY}.ipynb").read_text(encoding="utf-8")
    index = next(i for i, c in enumerate(executed.cells) if "widget" in c.metadata.get("tags", []))
    widget = executed.cells[index]
    assert widget.metadata["slideshow"]["slide_type"] == "skip"
    assert widget.outputs, "the widget cell did not run"
    figure_cell = next(c for c in reversed(executed.cells[:index]) if c.cell_type == "code")
    assert figure_cell.metadata["slideshow"]["slide_type"] not in ("skip", "notes")
    png = next(o["data"]["image/png"] for o in figure_cell.outputs if "image/png" in o.get("data", {}))
    figure_at = page.find(png.strip()[:400])
    assert figure_at > 0, "the static figure before the widget is not on the slides"
    assert page.find("Try it with the widget") > figure_at
    assert "mbpo_lib.k_vs_error_widget()" not in page
    assert "application/vnd.jupyter.widget" not in page  # no widget view, no widget state


# --- in the browser ---------------------------------------------------------------------------

SLIDE_OF_TEXT = """text => {
    const slides = [...document.querySelectorAll('.reveal .slides > section')];
    for (const [h, slide] of slides.entries()) {
        const inner = [...slide.querySelectorAll(':scope > section')];
        for (const [v, section] of inner.entries()) {
            if (section.textContent.includes(text)) return [h, v];
        }
    }
    return null;
}"""

# Text outside typeset math that still looks like TeX: MathJax missed it.
RAW_TEX = r"""() => {
    const tex = /\$\$|\$[^$\n]+\$|\\(frac|varepsilon|gamma|eta|hat|mathbb|le|ge|underbrace)\b/;
    const found = [];
    for (const root of document.querySelectorAll('.jp-RenderedMarkdown')) {
        const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            if (node.parentElement.closest('script, style, code, pre, .MathJax_CHTML, .MJX_Assistive_MathML'))
                continue;
            if (tex.test(node.textContent)) found.push(node.textContent.slice(0, 120));
        }
    }
    return found;
}"""

MATHJAX_DONE = """() => new Promise(done => MathJax.Hub.Queue(() => done({
    sources: document.querySelectorAll('script[type^="math/tex"]').length,
    typeset: MathJax.Hub.getAllJax().length,
    rendered: document.querySelectorAll('.MathJax_CHTML').length,
    // a TeX error shows as its source (noErrors), an unknown macro as red text (noUndefined)
    errors: [...document.querySelectorAll('.mjx-noError, .mjx-merror, .MathJax_Error, .mjx-mtext')]
        .filter(e => !e.classList.contains('mjx-mtext') || e.style.color === 'red')
        .map(e => e.textContent.slice(0, 80)),
})))"""

# Reveal is an AMD module here (the page loads it with require.js); ask require.js for it.
REVEAL_STATE = """() => new Promise(done => require(['vendor/reveal.js/dist/reveal.js'], R => {
    const withNotes = [...document.querySelectorAll('.reveal .slides > section > section')]
        .filter(s => s.querySelector('aside.notes'));
    done({ready: R.isReady(), slides: R.getTotalSlides(), sectionsWithNotes: withNotes.length,
          notesShown: withNotes.filter(s => (R.getSlideNotes(s) || '').trim().length > 0).length});
}))"""

GO_TO = """([h, v]) => new Promise(done => require(['vendor/reveal.js/dist/reveal.js'], R => {
    R.slide(h, v, 99);  // every fragment shown
    MathJax.Hub.Queue(() => setTimeout(done, 800));
}))"""

# Every slide, with all its fragments shown: its height and its code or output boxes wider than the
# slide (a cut-off line), in reveal's canvas pixels (960 x 700, before scaling to the window).
SLIDE_SIZES = """() => new Promise(done => require(['vendor/reveal.js/dist/reveal.js'], R => {
    MathJax.Hub.Queue(() => {
        const sizes = [];
        for (const slide of R.getSlides()) {
            const {h, v} = R.getIndices(slide);
            R.slide(h, v, 99);
            const head = slide.querySelector('h1, h2, h3');
            sizes.push({where: `#/${h}/${v}`, height: slide.scrollHeight,
                        title: (head ? head.textContent : slide.textContent).trim().slice(0, 60),
                        cut: [...slide.querySelectorAll('pre')].filter(e => e.scrollWidth > e.clientWidth + 2)
                            .map(e => e.textContent.slice(0, 60))});
        }
        done({sizes, width: R.getConfig().width, height: R.getConfig().height});
    });
}))"""


def open_deck(browser, deck: Path):
    """A page with the deck loaded; network requests refused and listed with every error."""
    problems: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 800})

    def offline(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            problems.append(f"request to the network: {route.request.url}")
            route.abort()

    page.route("**/*", offline)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url} {req.failure}"))
    page.goto(deck.as_uri(), wait_until="load", timeout=120_000)
    page.wait_for_selector(".reveal.ready", timeout=120_000)
    return page, problems


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_deck_opens_offline_in_chromium_with_its_math_typeset(build, browser, shots, notebook):
    page, problems = open_deck(browser, deck_path(build, notebook))
    math = page.evaluate(MATHJAX_DONE)
    reveal = page.evaluate(REVEAL_STATE)
    raw_tex = page.evaluate(RAW_TEX)
    page.screenshot(path=str(shots / f"{notebook.stem}-title.png"))
    if notebook.stem == THEORY:
        for text, name in (("Theorem 4.3:", "theorem-4.3"), ("Theorem 4.3 from scratch", "from-scratch"),
                           ("bound_vs_k_figure(k=3", "static-figure"), ("Exercises", "exercises")):
            where = page.evaluate(SLIDE_OF_TEXT, text)
            assert where is not None, f"no slide shows {text!r}"
            page.evaluate(GO_TO, where)
            page.screenshot(path=str(shots / f"{notebook.stem}-{name}.png"))
    page.close()
    print(f"screenshots in {shots}")

    types = slide_types(notebook)
    assert problems == [], "\n".join(problems)
    assert reveal["ready"] and reveal["slides"] >= sum(t in ("slide", "subslide") for t in types), reveal
    # reveal's notes plugin (the speaker view, key s) finds the notes of every slide that has some
    assert reveal["notesShown"] == reveal["sectionsWithNotes"] >= min(1, types.count("notes")), reveal
    assert math["errors"] == [], math["errors"]
    assert math["typeset"] == math["sources"] == math["rendered"], math  # every equation rendered
    assert raw_tex == [], raw_tex
    if notebook.stem == THEORY:
        assert math["typeset"] > 100, math  # the theory deck is mostly equations


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_slide_fits_the_canvas(build, browser, notebook):
    """A lecturer presents the deck as it is: no slide taller than reveal's 960 x 700 canvas (the
    text would run off the screen), no line of code or output cut at the right edge."""
    page, problems = open_deck(browser, deck_path(build, notebook))
    measured = page.evaluate(SLIDE_SIZES)
    page.close()
    assert (measured["width"], measured["height"]) == (960, 700)
    too_tall = [f"{s['where']} {s['height']} px: {s['title']!r}" for s in measured["sizes"]
                if s["height"] > measured["height"]]
    cut = [f"{s['where']} {s['title']!r}: {line!r}" for s in measured["sizes"] for line in s["cut"]]
    assert too_tall == [], "slides taller than the canvas:\n" + "\n".join(too_tall)
    assert cut == [], "code or output cut at the slide's right edge:\n" + "\n".join(cut)
    assert problems == [], problems


# Every clip the decks embed (mbpo_lib.clip_html: <video> with an MP4 data URI, or an animated
# GIF/WebP <img>) decodes offline: the video has its first frame, the image its size.
CLIPS_LOADED = """async () => {
    const wait = (target, events) => new Promise(done => {
        for (const e of events) target.addEventListener(e, done, {once: true});
        setTimeout(done, 30000);
    });
    const clips = [];
    for (const v of document.querySelectorAll('video')) {
        if (v.readyState < 2) { const loaded = wait(v, ['loadeddata', 'error']); v.load(); await loaded; }
        clips.push({kind: 'video', ok: v.readyState >= 2 && v.videoWidth > 0,
                    error: v.error && v.error.message, src: (v.currentSrc || v.src).slice(0, 40)});
    }
    for (const img of document.querySelectorAll('img[src^="data:image/gif"], img[src^="data:image/webp"]')) {
        if (!img.complete) await wait(img, ['load', 'error']);
        clips.push({kind: 'img', ok: img.naturalWidth > 0, src: img.src.slice(0, 40)});
    }
    return clips;
}"""
WITH_CLIPS = ["05_mbpo_training_loop", "06_results_and_diagnostics"]


@pytest.mark.parametrize("stem", WITH_CLIPS)
def test_the_embedded_clips_play_offline(build, browser, stem):
    page, problems = open_deck(browser, deck_path(build, REPO / "notebooks" / f"{stem}.ipynb"))
    clips = page.evaluate(CLIPS_LOADED)
    page.close()
    assert clips, f"no clip in the {stem} deck"
    assert [clip for clip in clips if not clip["ok"]] == [], clips
    assert problems == [], problems


# JupyterLab, as a student sees a notebook they ran: the executed copies of 05 and 06 (signed with
# `jupyter trust`, as JupyterLab signs the outputs its own kernel made) opened in headless Chromium.
LAB_OPENED = """async () => {
    const app = window.jupyterapp;
    if (!app) return false;
    await app.restored;
    const panel = app.shell.currentWidget;
    if (!panel || !panel.context) return false;
    await panel.context.ready;
    return panel.content.widgets.length > 0;
}"""


def test_the_clips_play_inline_in_jupyterlab(build, browser, tmp_path, monkeypatch):
    import json

    from jupyter_servers import free_port, jupyter_server, wait_until

    require_chromium("jupyter-lab", "jupyter-trust")
    bin_dir = Path(sys.executable).parent
    for stem in WITH_CLIPS:
        shutil.copy(build / "executed" / f"{stem}.ipynb", tmp_path / f"{stem}.ipynb")
        subprocess.run([str(bin_dir / "jupyter-trust"), str(tmp_path / f"{stem}.ipynb")], check=True,
                       capture_output=True, env={**os.environ, "JUPYTER_DATA_DIR": str(tmp_path / "data")})
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "notebook-extension"
    settings = settings / "tracker.jupyterlab-settings"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"windowingMode": "none"}))   # every output in the page
    for name, value in (("JUPYTER_DATA_DIR", str(tmp_path / "data")),   # where the trust database is
                        ("JUPYTERLAB_SETTINGS_DIR", str(tmp_path / "lab-settings")),
                        ("JUPYTERLAB_WORKSPACES_DIR", str(tmp_path / "lab-workspaces"))):
        monkeypatch.setenv(name, value)
    port = free_port()
    argv = [str(bin_dir / "jupyter-lab"), "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port_retries=0", f"--ServerApp.root_dir={tmp_path}", "--IdentityProvider.token=",
            "--ServerApp.password=", "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            *(["--allow-root"] if os.geteuid() == 0 else [])]   # CI containers run as root
    results = {}
    with jupyter_server(argv, tmp_path, port) as lab:   # the module's Chromium (one Playwright per thread)
        for stem in WITH_CLIPS:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route(lambda url: not url.startswith(lab.url),   # nothing leaves the machine
                       lambda route: route.fulfill(status=200, body=""))
            page.goto(f"{lab.url}lab/tree/{stem}.ipynb", wait_until="domcontentloaded", timeout=60_000)
            wait_until(lambda page=page: page.evaluate(LAB_OPENED), 180,
                       lambda stem=stem: lab.failure(f"JupyterLab did not open {stem} within 180 s"))
            wait_until(lambda page=page: page.locator(".jp-OutputArea-output video").count() > 0, 60,
                       lambda stem=stem: lab.failure(f"no <video> in {stem}'s outputs in JupyterLab "
                                                     "(sanitised away, or not rendered)"))
            results[stem] = page.evaluate(CLIPS_LOADED)
            page.screenshot(path=str(tmp_path / f"lab_{stem}.png"))
            page.close()
    print(f"screenshots in {tmp_path}")
    for stem, clips in results.items():
        assert clips and [clip for clip in clips if not clip["ok"]] == [], (stem, clips)


# --- a lecture, not a notebook cut into pages -----------------------------------------------------

# The decks whose notebooks carry the slide markup (scripts/build_slides.py, split_for_slides). The
# others still show the notebook's prose; they join as their markup is written (issue 21's order).
LECTURE_DECKS = ("00_overview", "01_probabilistic_mlp", "02_ensemble_and_elites", "03_rollout_length_theory",
                 "04_sac", "05_mbpo_training_loop", "06_results_and_diagnostics", "07_your_own_task")

# Body text: the words of a slide's rendered markdown, headings, tables, equations and code
# excluded. A slide is read in about 15 seconds while the speaker talks: six bullets of six or
# seven words. A table is read as a grid, not as prose: it may hold up to MAX_TABLE_ROWS rows
# under its header (at the decks' 18 px text, about half the canvas).
MAX_WORDS = 40
MAX_TABLE_ROWS = 12
# A single figure spans 80 % of the 960-pixel canvas at least; its base font (the series' style,
# mbpo_lib.plotting.STYLE, as an axis label or legend) projects at 16 canvas pixels or more.
MIN_FIGURE_WIDTH = 0.8 * 960
MIN_FONT_PX = 16.0
# Words for a notebook reader, not for a lecture hall (code inputs and error messages are not
# searched: they quote code and the library as they are).
NOTEBOOK_ONLY = re.compile(r"FAST mode|MBPO_FAST|python -m |\b[\w-]+\.(?:csv|png|json|ipynb|py)\b"
                           r"|\b(?:figures|results|runs|notebooks|benchmarks)/|\bthreads?\b|\bCPU cores?\b")

# Per slide, all fragments shown: the words of body text, each figure's shown and natural width, and
# the visible text outside code inputs (for NOTEBOOK_ONLY). Speaker notes (aside) are not the slide.
SLIDE_CONTENT = """() => new Promise(done => require(['vendor/reveal.js/dist/reveal.js'], R => {
    MathJax.Hub.Queue(() => {
        const skip = 'h1, h2, h3, h4, h5, h6, table, script, style, aside, pre, '
                   + '.MathJax_CHTML, .MJX_Assistive_MathML, .MathJax_Preview, .mjx-chtml';
        const out = [];
        for (const slide of R.getSlides()) {
            const {h, v} = R.getIndices(slide);
            R.slide(h, v, 99);
            let words = 0, text = '';
            for (const md of slide.querySelectorAll('.jp-RenderedMarkdown')) {
                if (md.closest('aside')) continue;
                const walker = document.createTreeWalker(md, NodeFilter.SHOW_TEXT);
                for (let n = walker.nextNode(); n; n = walker.nextNode()) {
                    if (n.parentElement.closest(skip)) continue;
                    words += (n.textContent.match(/[A-Za-z0-9\u00C0-\u024F]\\S*/g) || []).length;
                }
            }
            const visible = document.createTreeWalker(slide, NodeFilter.SHOW_TEXT);
            for (let n = visible.nextNode(); n; n = visible.nextNode()) {
                // code inputs, and error messages (the library's own words, quoted as they are);
                // a markdown cell's rendered text sits in .jp-InputArea too, so only the editor goes
                const hidden = 'aside, script, style, .jp-InputArea-editor, .MJX_Assistive_MathML, '
                             + '[data-mime-type="application/vnd.jupyter.stderr"]';
                if (n.parentElement.closest(hidden)) continue;
                text += n.textContent + ' ';
            }
            const figures = [...slide.querySelectorAll('.jp-OutputArea-output img[src^="data:image/png"]')]
                .filter(img => !img.closest('aside'))
                .map(img => ({shown: Math.min(img.clientWidth,
                                              img.clientHeight * img.naturalWidth / img.naturalHeight),
                              natural: img.naturalWidth}));
            const tables = [...slide.querySelectorAll('.jp-RenderedMarkdown table')]
                .filter(t => !t.closest('aside')).map(t => t.querySelectorAll('tbody tr').length);
            const head = slide.querySelector('h1, h2, h3');
            out.push({where: `#/${h}/${v}`, title: (head ? head.textContent : '').trim().slice(0, 60),
                      words, figures, tables, text});
        }
        done(out);
    });
}))"""


def lecture_problems(slides: list[dict]) -> list[str]:
    """What breaks the lecture-hall limits, one line per slide and limit (empty: none)."""
    from mbpo_lib.plotting import STYLE

    font_at_natural_size = STYLE["font.size"] * STYLE["figure.dpi"] / 72   # pixels of the PNG
    problems = []
    for s in slides:
        where = f"{s['where']} {s['title']!r}"
        if s["words"] > MAX_WORDS:
            problems.append(f"{where}: {s['words']} words of body text (at most {MAX_WORDS})")
        problems += [f"{where}: a table of {rows} rows (at most {MAX_TABLE_ROWS})"
                     for rows in s["tables"] if rows > MAX_TABLE_ROWS]
        for figure in s["figures"]:
            font = font_at_natural_size * figure["shown"] / figure["natural"]
            if figure["shown"] < MIN_FIGURE_WIDTH:
                problems.append(f"{where}: a figure {figure['shown']:.0f} px wide "
                                f"(at least {MIN_FIGURE_WIDTH:.0f})")
            if font < MIN_FONT_PX:
                widest = figure["shown"] * font_at_natural_size / MIN_FONT_PX / STYLE["figure.dpi"]
                problems.append(f"{where}: a figure whose {STYLE['font.size']} pt text shows at "
                                f"{font:.1f} px (at least {MIN_FONT_PX:g}: draw it narrower than "
                                f"{widest:.1f} in)")
        for match in NOTEBOOK_ONLY.finditer(s["text"]):
            problems.append(f"{where}: notebook-only words {match.group(0)!r} in "
                            f"{s['text'][max(0, match.start() - 40):match.end() + 40]!r}")
    return problems


def deck_summary(slides: list[dict]) -> str:
    """Slides, median and largest words of body text, and the smallest figure width: the closing
    note's before-and-after numbers."""
    words = sorted(s["words"] for s in slides)
    widths = [f["shown"] for s in slides for f in s["figures"]]
    return (f"{len(slides)} slides, body words median {words[len(words) // 2]} max {words[-1]}, "
            f"smallest figure {min(widths):.0f} px" if widths else f"{len(slides)} slides, no figures")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_lecture_decks_have_short_slides_large_figures_and_no_notebook_words(build, browser, notebook):
    page, problems = open_deck(browser, deck_path(build, notebook))
    slides = page.evaluate(SLIDE_CONTENT)
    page.close()
    print(f"{notebook.stem}: {deck_summary(slides)}")
    assert problems == [], problems
    if notebook.stem not in LECTURE_DECKS:
        pytest.skip(f"{notebook.stem}: its slide markup is not written yet ({deck_summary(slides)})")
    found = lecture_problems(slides)
    assert found == [], f"{len(found)} problems:\n" + "\n".join(found)


def test_each_lecture_limit_catches_a_slide_that_breaks_it(build, browser, tmp_path):
    """A deck of three bad slides, exported as the real ones are: too many words, a figure too
    narrow (a tall one, limited by the height), a figure too wide for its fonts, and a file name."""
    import base64
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mbpo_lib.plotting import series_style

    def png(width: float, height: float) -> str:
        with series_style():
            fig, ax = plt.subplots(figsize=(width, height))
            ax.plot([0, 1], [0, 1], label="a line")
            ax.set(xlabel="x", ylabel="y")
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=fig.dpi, bbox_inches="tight")   # as the inline backend
            plt.close(fig)
        return base64.b64encode(buffer.getvalue()).decode()

    def figure_cell(width: float, height: float):
        return nbformat.v4.new_code_cell("", metadata={"slideshow": {"slide_type": "slide"}}, outputs=[
            nbformat.v4.new_output("display_data",
                                   data={"image/png": png(width, height), "text/plain": "fig"})])

    build_slides = _build_slides_module()
    nb = nbformat.v4.new_notebook()
    long_text = " ".join(["word"] * (MAX_WORDS + 5))
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"## Too many words\n\n{long_text}",
                                      metadata={"slideshow": {"slide_type": "slide"}}),
        nbformat.v4.new_markdown_cell("## Short\n<!-- slide\n- three short words\n-->\n" + long_text,
                                      metadata={"slideshow": {"slide_type": "slide"}}),
        figure_cell(4.0, 6.0),     # tall: the height limits it to about 370 px wide
        figure_cell(14.0, 4.0),    # 1400 px of PNG shown at about 900: 11 pt text at about 10 px
        figure_cell(7.0, 4.0),     # the series' size: wide enough, its text large enough
        nbformat.v4.new_markdown_cell("## Where\n\nSaved as 03_bound_vs_k.png.",
                                      metadata={"slideshow": {"slide_type": "slide"}}),
        nbformat.v4.new_markdown_cell("## A long table\n\n| a | b |\n|---|---|\n"
                                      + "| x | y |\n" * (MAX_TABLE_ROWS + 1),
                                      metadata={"slideshow": {"slide_type": "slide"}}),
    ]
    executed = tmp_path / "zz_limits.ipynb"
    nbformat.write(nb, executed)
    deck = build / "slides" / "zz_limits_test.slides.html"   # beside vendor/, which it loads
    try:
        build_slides.export_deck(executed, deck)
        page, problems = open_deck(browser, deck)
        slides = page.evaluate(SLIDE_CONTENT)
        page.close()
    finally:
        deck.unlink(missing_ok=True)
    assert problems == [], problems
    found = lecture_problems(slides)
    by_slide = {s["where"]: [line for line in found if line.startswith(s["where"] + " ")] for s in slides}
    lines = list(by_slide.values())
    assert len(lines) == 7, slides
    assert len(lines[0]) == 1 and f"{MAX_WORDS + 5} words" in lines[0][0]
    assert lines[1] == [] and slides[1]["words"] == 3          # the slide block, the prose in the notes
    assert len(lines[2]) == 1 and "px wide" in lines[2][0]
    assert len(lines[3]) == 1 and "pt text shows at" in lines[3][0]
    assert lines[4] == [] and slides[4]["figures"][0]["shown"] >= MIN_FIGURE_WIDTH
    assert len(lines[5]) == 1 and "'03_bound_vs_k.png'" in lines[5][0], found
    assert lines[6] == [f"{slides[6]['where']} 'A long table¶': a table of {MAX_TABLE_ROWS + 1} rows "
                        f"(at most {MAX_TABLE_ROWS})"] and slides[6]["words"] == 0
