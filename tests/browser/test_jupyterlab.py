"""Notebook 03 in JupyterLab, in headless Chromium: run every cell in FAST mode, then move one slider
of each widget and check that its readout and its plot change.

This is what a student does: open the notebook in JupyterLab (ipywidgets 8), "Run All", play with
the sliders. The server is ``jupyter lab`` on 127.0.0.1 over a temporary copy of the notebook, its
kernels on the IPC transport, every wait with a deadline that fails with the server's log
(``jupyter_servers.py``). JupyterLab's settings and workspaces live in the temporary folder, so the
test neither reads nor changes the user's; its notebook windowing is off, so that every cell's
output is in the page. Screenshots are saved next to the copy (the path is printed).

Also checked: every slider of both widgets shows a track of usable width at JupyterLab's default
widget width (a long description once left the ε_m slider with only its handle and value), and the
page logs no errors. Needs Debian's Chromium at /usr/bin/chromium; skips without it, unless
``MBPO_REQUIRE_BROWSER=1`` (CI), where that is a failure.
"""

import base64
import json
import shutil
import sys
from pathlib import Path

import pytest
from jupyter_servers import CHROMIUM, CHROMIUM_FLAGS, free_port, jupyter_server, require_chromium, wait_until

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = "03_rollout_length_theory.ipynb"
RUN_TIMEOUT = 600        # seconds for the FAST notebook to run in the kernel on a loaded CI machine
MIN_TRACK_WIDTH = 100    # pixels: a slider track narrower than this cannot be dragged with any precision

# JupyterLab's own app (exposed with --LabApp.expose_app_in_browser) answers these.
OPENED = """async () => {
    const app = window.jupyterapp;
    if (!app) return 'no app';
    await app.restored;
    const panel = app.shell.currentWidget;
    if (!panel || !panel.sessionContext) return 'no notebook';
    await panel.context.ready;
    await panel.sessionContext.ready;
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    return kernel ? kernel.status : 'no kernel';
}"""

RUN_ALL = "() => window.jupyterapp.commands.execute('notebook:run-all-cells')"

PROGRESS = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const cells = panel.content.widgets.filter(c => c.model.type === 'code');
    const errors = [];
    for (const [i, c] of cells.entries()) {
        for (const o of c.model.outputs.toJSON()) {
            if (o.output_type === 'error') errors.push(`code cell ${i}: ${o.ename}: ${o.evalue}`);
        }
    }
    return {done: cells.filter(c => c.model.executionCount !== null).length, cells: cells.length,
            status: panel.sessionContext.session.kernel.status, errors};
}"""

TRACKS = """() => [...document.querySelectorAll('.widget-interact .widget-slider')].map(s => {
    const label = s.querySelector('.widget-label');
    const track = s.querySelector('.slider-container, .ui-slider');
    return {label: label ? label.textContent : '?', width: track ? track.getBoundingClientRect().width : 0};
})"""


@pytest.fixture
def lab(tmp_path, monkeypatch):
    require_chromium("jupyter-lab")
    shutil.copy(REPO / "notebooks" / NOTEBOOK, tmp_path / NOTEBOOK)
    settings = tmp_path / "lab-settings"
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    for name, value in (("MBPO_FAST", "1"), ("OMP_NUM_THREADS", "1"),
                        ("MBPO_FIGURES_DIR", str(tmp_path / "figures")),
                        ("JUPYTERLAB_SETTINGS_DIR", str(settings)),
                        ("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime")),
                        ("JUPYTERLAB_WORKSPACES_DIR", str(tmp_path / "lab-workspaces"))):
        monkeypatch.setenv(name, value)   # the server and its kernel inherit these
    port = free_port()
    argv = [str(Path(sys.executable).parent / "jupyter-lab"), "--no-browser", f"--port={port}",
            "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0", f"--ServerApp.root_dir={tmp_path}",
            "--IdentityProvider.token=", "--ServerApp.password=", "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",   # no PyPI queries from the server either
            "--ServerApp.allow_root=True"]           # CI containers run as root
    with jupyter_server(argv, tmp_path, port) as server:
        yield server


def plot_image(widget) -> bytes:
    src = widget.locator(".jp-OutputArea-output img, .widget-output img").last.get_attribute("src")
    assert src and src.startswith("data:image/png;base64,")
    return base64.b64decode(src.split(",", 1)[1])


def move_first_slider(page, server, widget, value: str, before: str, after: str, shots: Path, name: str):
    """Type ``value`` into the widget's first slider's readout; the plot images before and after."""
    widget.scroll_into_view_if_needed()
    wait_until(lambda: widget.get_by_text(before).count() > 0, 60,
               lambda: server.failure(f"{name}: the readout {before!r} is not shown"))
    image_before = plot_image(widget)
    page.screenshot(path=str(shots / f"lab_{name}_before.png"))
    readout = widget.locator(".widget-slider .widget-readout").first
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(value)
    page.keyboard.press("Enter")
    wait_until(lambda: widget.get_by_text(after).count() > 0, 120,
               lambda: server.failure(f"{name}: the readout did not change to {after!r} within 120 s"))
    # the output area is cleared, then redrawn: wait for a new image before the screenshot
    wait_until(lambda: plot_image(widget) != image_before, 60,
               lambda: server.failure(f"{name}: the plot did not change within 60 s of the readout"))
    widget.scroll_into_view_if_needed()
    image = widget.locator(".jp-OutputArea-output img, .widget-output img").last
    image.evaluate("img => img.decode()")
    shown = image.evaluate("img => [img.complete, img.naturalWidth, img.getBoundingClientRect().height]")
    assert shown[0] and shown[1] > 0 and shown[2] > 100, f"{name}: the new plot is not laid out: {shown}"
    page.wait_for_timeout(1000)   # decoded and laid out: let it paint before the screenshot
    page.screenshot(path=str(shots / f"lab_{name}_after.png"))
    return image_before, plot_image(widget)


def test_notebook_03_runs_in_jupyterlab_and_both_widgets_respond(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    external: list[str] = []

    def offline(route):
        external.append(route.request.url)   # nothing leaves the machine: answer empty and list it
        route.fulfill(status=200, body="")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.route(lambda url: not url.startswith(lab.url), offline)
        page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
        page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
        page.goto(f"{lab.url}lab/tree/{NOTEBOOK}", wait_until="domcontentloaded", timeout=60_000)
        wait_until(lambda: page.evaluate(OPENED) == "idle", 180,
                   lambda: lab.failure("JupyterLab did not open the notebook with an idle kernel "
                                       "within 180 s"))
        page.evaluate(RUN_ALL)

        def finished() -> bool:
            state = page.evaluate(PROGRESS)
            return bool(state["errors"]) or (state["done"] == state["cells"] and state["status"] == "idle")

        wait_until(finished, RUN_TIMEOUT,
                   lambda: lab.failure(f"the notebook did not finish within {RUN_TIMEOUT} s: "
                                       f"{page.evaluate(PROGRESS)}"))
        state = page.evaluate(PROGRESS)
        page.screenshot(path=str(tmp_path / "lab_after_run_all.png"))
        assert state["errors"] == [], state["errors"]
        wait_until(lambda: page.locator(".widget-interact").count() == 2, 60,
                   lambda: lab.failure("the two widgets are not shown after Run All"))
        tracks = page.evaluate(TRACKS)
        bound, measured = page.locator(".widget-interact").nth(0), page.locator(".widget-interact").nth(1)
        moved = {
            "bound": move_first_slider(page, lab, bound, "40", "k = 3 | k* =", "k = 40 | k* =",
                                       tmp_path, "bound"),
            "measured": move_first_slider(page, lab, measured, "5", "random only: k = 10:",
                                          "random only: k = 5:", tmp_path, "measured"),
        }
        browser.close()
    print(f"screenshots in {tmp_path}")

    assert len(tracks) == 7, tracks   # bound: k, ε_m, slope s, ε_π, γ; measured: k, state dim
    narrow = [t for t in tracks if t["width"] < MIN_TRACK_WIDTH]
    assert narrow == [], f"slider tracks narrower than {MIN_TRACK_WIDTH} px: {narrow}"
    for name, (before, after) in moved.items():
        assert after != before, f"the {name} widget's plot did not change when its slider moved"
    assert errors == [], "\n".join(errors)
    # the title cell's Open-in-Colab badge is the one image from the internet (answered empty here)
    assert all(url.endswith("colab-badge.svg") for url in external), external
