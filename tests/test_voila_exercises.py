"""In a real Voila dashboard (headless Chromium) the exercises are hidden and the lesson's widgets are not.

A dashboard shows no code, so it cannot ask a student to write any: the cells tagged
``exercise`` (prompt, solution, check) carry Voila's ``celltag_exercise`` class, which a style
rule in the notebook's first exercise prompt hides.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "1_quickstart.ipynb"
CHROMIUM = shutil.which("chromium")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

if CHROMIUM is None and not IN_CI:
    pytest.skip("Debian `chromium` is not installed (apt-get install -y chromium)", allow_module_level=True)
if not IN_CI:
    pytest.importorskip("playwright.sync_api", reason="the `browser` extra (playwright) is not installed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_voila_hides_the_exercises_and_shows_the_explorer(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    for name in ("config", "data", "runtime"):
        (tmp_path / name).mkdir()
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    port = _free_port()
    voila = Path(sys.executable).parent / "voila"
    command = [str(voila), NOTEBOOK.name, "--Voila.ip=127.0.0.1", f"--port={port}", "--no-browser"]
    log = (tmp_path / "voila.log").open("w")
    server = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "voila.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "voila did not listen in 60 s"
                time.sleep(0.2)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(f"http://127.0.0.1:{port}/", timeout=180_000)
                page.locator(".bw-slice-map").first.wait_for(state="visible", timeout=180_000)
                exercises = page.locator(".celltag_exercise")
                assert exercises.count() >= 6, "every exercise cell carries the class Voila's template gives its tag"
                assert all(not exercises.nth(i).is_visible() for i in range(exercises.count()))
                assert not page.get_by_text("Exercise 1").is_visible()
                assert not page.get_by_text("correct:").first.is_visible(), "a check's output must be hidden too"
                assert page.get_by_text("A 2-D model").first.is_visible(), "the lesson's text stays"
            finally:
                browser.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()
