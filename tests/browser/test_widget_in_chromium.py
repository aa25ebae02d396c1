"""The k-vs-error widget in a real browser: Voilà serves it, headless Chromium moves the slider.

Needs Debian's Chromium at /usr/bin/chromium (``.ci/run`` installs it; never a browser
download). Without it the test skips, unless ``MBPO_REQUIRE_BROWSER=1`` (set by ``.ci/run``),
where a missing browser is a failure: CI must really run this test.

Voila's kernel runs on the IPC transport, and every wait fails with Voila's log in its message
(``jupyter_servers.py``): the test once hung for 300 s in ``page.goto`` with a kernel that had
started and never answered, the TCP port race that IPC removes.
"""

import base64
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_servers import CHROMIUM, CHROMIUM_FLAGS, free_port, jupyter_server, require_chromium, wait_until

RENDER_TIMEOUT = 240   # seconds for Voila to start the kernel and run the notebook on a loaded CI machine


@pytest.fixture
def voila(tmp_path):
    require_chromium("voila")
    notebook = nbformat.v4.new_notebook(cells=[
        # the kernel is on IPC (a TCP kernel here would be the port race again)
        nbformat.v4.new_code_cell("import json, ipykernel.connect\n"
                                  "info = json.load(open(ipykernel.connect.get_connection_file()))\n"
                                  "assert info['transport'] == 'ipc', info"),
        nbformat.v4.new_code_cell("%matplotlib inline\nimport mbpo_lib"),
        nbformat.v4.new_code_cell("w = mbpo_lib.k_vs_error_widget()\nw"),
    ])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "widget.ipynb")
    port = free_port()
    argv = [str(Path(sys.executable).parent / "voila"), "widget.ipynb", "--no-browser", f"--port={port}",
            "--Voila.ip=127.0.0.1", "--Voila.port_retries=0", "--VoilaConfiguration.show_tracebacks=True",
            # jupytext's lab extension needs JupyterLab's document manager, which Voila does not have
            "--VoilaConfiguration.extension_denylist=['jupyterlab-jupytext']"]
    with jupyter_server(argv, tmp_path, port) as server:
        yield server


def plot_image(page) -> bytes:
    src = page.locator(".jupyter-widgets-output-area img, .widget-output img").last.get_attribute("src")
    assert src and src.startswith("data:image/png;base64,")
    return base64.b64decode(src.split(",", 1)[1])


def test_moving_the_k_slider_changes_readout_and_plot(voila, tmp_path):
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
        # it; "commit" returns as soon as the answer starts, and the readout is waited for below,
        # with the server's log in the message if it never comes.
        page.goto(voila.url, wait_until="commit", timeout=60_000)
        wait_until(lambda: page.get_by_text("k = 3: gap").count() > 0, RENDER_TIMEOUT,
                   lambda: voila.failure(f"the widget's readout did not appear within {RENDER_TIMEOUT} s "
                                         "(did the kernel start and run the notebook?)"))
        before = plot_image(page)
        page.screenshot(path=str(tmp_path / "widget_before.png"), full_page=True)

        # The k slider's readout is editable: type a new value, as a student may.
        readout = page.locator(".widget-slider .widget-readout").first
        readout.click()
        page.keyboard.press("Control+A")
        page.keyboard.type("10")
        page.keyboard.press("Enter")
        wait_until(lambda: page.get_by_text("k = 10: gap").count() > 0, 120,
                   lambda: voila.failure("the readout did not change to k = 10 within 120 s"))
        page.wait_for_timeout(500)
        after = plot_image(page)
        page.screenshot(path=str(tmp_path / "widget_after.png"), full_page=True)
        browser.close()

    assert after != before, "the plot did not change when k moved"
    assert errors == [], "\n".join(errors)
    assert all("fontawesome" in url for url in external), external  # nothing else leaves the machine
    print(f"screenshots: {tmp_path / 'widget_before.png'}, {tmp_path / 'widget_after.png'}")
