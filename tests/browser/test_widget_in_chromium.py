"""The k-vs-error widget in a real browser: Voilà serves it, headless Chromium moves the slider.

Needs Debian's Chromium at /usr/bin/chromium (``.ci/run`` installs it; never a browser
download). Without it the test skips, unless ``MBPO_REQUIRE_BROWSER=1`` (set by ``.ci/run``),
where a missing browser is a failure: CI must really run this test.
"""

import base64
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def require_chromium() -> None:
    if CHROMIUM.exists() and shutil.which("voila", path=str(Path(sys.executable).parent)):
        return
    reason = f"needs {CHROMIUM} (Debian's chromium) and voila in this venv"
    if os.environ.get("MBPO_REQUIRE_BROWSER") == "1":
        pytest.fail(f"MBPO_REQUIRE_BROWSER=1 but the browser test cannot run: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def voila_url(tmp_path):
    require_chromium()
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%matplotlib inline\nimport mbpo_lib"),
        nbformat.v4.new_code_cell("w = mbpo_lib.k_vs_error_widget()\nw"),
    ])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "widget.ipynb")
    port = free_port()
    log = open(tmp_path / "voila.log", "w")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "voila"), "widget.ipynb", "--no-browser", f"--port={port}",
         "--Voila.ip=127.0.0.1", "--VoilaConfiguration.show_tracebacks=True",
         # jupytext's lab extension needs JupyterLab's document manager, which Voila does not have
         "--VoilaConfiguration.extension_denylist=['jupyterlab-jupytext']"],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log_text = (tmp_path / "voila.log").read_text()
                    raise RuntimeError(f"voila did not start: {log_text}") from None
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def plot_image(page) -> bytes:
    src = page.locator(".jupyter-widgets-output-area img, .widget-output img").last.get_attribute("src")
    assert src and src.startswith("data:image/png;base64,")
    return base64.b64decode(src.split(",", 1)[1])


def test_moving_the_k_slider_changes_readout_and_plot(voila_url, tmp_path):
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
        page.route(lambda url: not url.startswith(voila_url), offline)
        page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
        page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
        page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url} {req.failure}"))
        page.goto(voila_url, timeout=300_000)
        page.get_by_text("k = 3: gap").wait_for(timeout=300_000)  # a loaded CI machine is slow
        before = plot_image(page)
        page.screenshot(path=str(tmp_path / "widget_before.png"), full_page=True)

        # The k slider's readout is editable: type a new value, as a student may.
        readout = page.locator(".widget-slider .widget-readout").first
        readout.click()
        page.keyboard.press("Control+A")
        page.keyboard.type("10")
        page.keyboard.press("Enter")
        page.get_by_text("k = 10: gap").wait_for(timeout=120_000)
        page.wait_for_timeout(500)
        after = plot_image(page)
        page.screenshot(path=str(tmp_path / "widget_after.png"), full_page=True)
        browser.close()

    assert after != before, "the plot did not change when k moved"
    assert errors == [], "\n".join(errors)
    assert all("fontawesome" in url for url in external), external  # nothing else leaves the machine
    print(f"screenshots: {tmp_path / 'widget_before.png'}, {tmp_path / 'widget_after.png'}")
