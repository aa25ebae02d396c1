"""Both widgets of notebook 03 in a real browser: Voilà serves them, headless Chromium moves a slider
of each and checks that its readout and its plot change.

Needs Debian's Chromium at /usr/bin/chromium (``.ci/run`` installs it; never a browser
download). Without it the test skips, unless ``MBPO_REQUIRE_BROWSER=1`` (set by ``.ci/run``),
where a missing browser is a failure: CI must really run this test.

Voila's kernel runs on the IPC transport, and every wait fails with Voila's log in its message
(``jupyter_servers.py``): the test once hung for 300 s in ``page.goto`` with a kernel that had
started and never answered, the TCP port race that IPC removes.

The measured widget is fed by a small stand-in model (a constant drift, see the notebook cell
below) instead of a fitted ensemble, so the test stays quick: what is tested is the widget.
"""

import base64
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_servers import CHROMIUM, CHROMIUM_FLAGS, free_port, jupyter_server, require_chromium, wait_until

RENDER_TIMEOUT = 240   # seconds for Voila to start the kernel and run the notebook on a loaded CI machine

# A KStepRollouts from a stand-in model: s' = s + a + bias, so its k-step error is k * |bias|.
MEASURED_CELL = """import torch
from mbpo_lib.theory import k_step_rollouts

class Drift:
    device = torch.device("cpu")
    def __init__(self, bias):
        self.bias = torch.tensor(bias)
    def step(self, obs, act, generator=None, deterministic=False):
        noise = 0 if deterministic else 0.05 * torch.randn(obs.shape, generator=generator)
        return obs + act + self.bias + noise, torch.zeros(obs.shape[0]), {}

g = torch.Generator().manual_seed(0)
act = 0.1 * torch.randn(20, 30, 2, generator=g)
obs = torch.cat([torch.zeros(20, 1, 2), torch.cumsum(act, dim=1)], dim=1)
measured = {"random only": k_step_rollouts(Drift([0.03, 0.04]), obs, act),
            "random + policy": k_step_rollouts(Drift([0.006, 0.008]), obs, act)}
"""


def widget_notebook(path: Path) -> None:
    notebook = nbformat.v4.new_notebook(cells=[
        # the kernel is on IPC (a TCP kernel here would be the port race again)
        nbformat.v4.new_code_cell("import json, ipykernel.connect\n"
                                  "info = json.load(open(ipykernel.connect.get_connection_file()))\n"
                                  "assert info['transport'] == 'ipc', info"),
        nbformat.v4.new_code_cell("%matplotlib inline\nimport mbpo_lib"),
        nbformat.v4.new_code_cell("bound = mbpo_lib.bound_widget()\nbound"),
        nbformat.v4.new_code_cell(MEASURED_CELL),
        nbformat.v4.new_code_cell("errors = mbpo_lib.k_vs_error_widget(measured, labels=['x', 'y'])\nerrors"),
    ])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)


@pytest.fixture
def voila(tmp_path):
    require_chromium("voila")
    widget_notebook(tmp_path / "widget.ipynb")
    port = free_port()
    argv = [str(Path(sys.executable).parent / "voila"), "widget.ipynb", "--no-browser", f"--port={port}",
            "--Voila.ip=127.0.0.1", "--Voila.port_retries=0", "--VoilaConfiguration.show_tracebacks=True",
            # jupytext's lab extension needs JupyterLab's document manager, which Voila does not have
            "--VoilaConfiguration.extension_denylist=['jupyterlab-jupytext']"]
    with jupyter_server(argv, tmp_path, port) as server:
        yield server


def plot_image(widget) -> bytes:
    """The PNG a widget's output area shows now (``widget``: the interactive's container)."""
    src = widget.locator(".jupyter-widgets-output-area img, .widget-output img").last.get_attribute("src")
    assert src and src.startswith("data:image/png;base64,")
    return base64.b64decode(src.split(",", 1)[1])


def type_into_first_slider(page, widget, value: str) -> None:
    """Type a value into the editable readout of the widget's first slider, as a student may."""
    readout = widget.locator(".widget-slider .widget-readout").first
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(value)
    page.keyboard.press("Enter")


def move_and_check(page, server, widget, value: str, before_text: str, after_text: str, shots: Path,
                   name: str) -> tuple[bytes, bytes]:
    """Move the widget's first slider to ``value``; wait for ``after_text``; the plots before and after."""
    wait_until(lambda: widget.get_by_text(before_text).count() > 0, 60,
               lambda: server.failure(f"{name}: the readout {before_text!r} is not shown"))
    before = plot_image(widget)
    page.screenshot(path=str(shots / f"{name}_before.png"), full_page=True)
    type_into_first_slider(page, widget, value)
    wait_until(lambda: widget.get_by_text(after_text).count() > 0, 120,
               lambda: server.failure(f"{name}: the readout did not change to {after_text!r} within 120 s"))
    page.wait_for_timeout(500)
    after = plot_image(widget)
    page.screenshot(path=str(shots / f"{name}_after.png"), full_page=True)
    return before, after


def test_moving_a_slider_of_each_widget_changes_its_readout_and_plot(voila, tmp_path):
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    external: list[str] = []

    def offline(route):
        # Voila's page template links Font Awesome from a CDN; this machine (and a lecture hall
        # without network) cannot reach it. Answer such requests empty and list them.
        external.append(route.request.url)
        route.fulfill(status=200, content_type="text/css", body="")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.route(lambda url: not url.startswith(voila.url), offline)
        page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
        page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
        page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url} {req.failure}"))
        # Voila answers with the page at once and streams each cell's output as the kernel runs
        # it; "commit" returns as soon as the answer starts, and the readouts are waited for below,
        # with the server's log in the message if they never come.
        page.goto(voila.url, wait_until="commit", timeout=60_000)
        wait_until(lambda: page.locator(".widget-interact").count() == 2
                   and page.get_by_text("random only: k = 10").count() > 0, RENDER_TIMEOUT,
                   lambda: voila.failure(f"both widgets' readouts did not appear within {RENDER_TIMEOUT} s "
                                         "(did the kernel start and run the notebook?)"))
        bound, measured = page.locator(".widget-interact").nth(0), page.locator(".widget-interact").nth(1)
        results = {
            "bound": move_and_check(page, voila, bound, "40", "k = 3 | k* = 11", "k = 40 | k* = 11",
                                    tmp_path, "bound"),
            "measured": move_and_check(page, voila, measured, "25", "random only: k = 10",
                                       "random only: k = 25", tmp_path, "measured"),
        }
        browser.close()

    for name, (before, after) in results.items():
        assert after != before, f"the {name} widget's plot did not change when its slider moved"
    assert errors == [], "\n".join(errors)
    assert all("fontawesome" in url for url in external), external  # nothing else leaves the machine
    print(f"screenshots in {tmp_path}")
