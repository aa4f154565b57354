"""Time "Run all" in JupyterLab as a teacher sees it: the first map, the last cell, the kernel's peak memory.

``python scripts/first_map_times.py [--student] [NOTEBOOK ...]``

Starts JupyterLab (its own free port, token and config) in a temporary copy of ``notebooks/``, or
of the student notebooks (``--student``: built there by ``scripts/make_student_notebooks.py``),
and opens each notebook (default: every lesson, in lesson order) in Debian's ``chromium``,
headless, at 1280×800 with the file browser open. With the kernel idle, it picks "Run All Cells"
from the command palette and measures, from that click:

- ``widget map``: until the first explorer map (``.bw-slice-map``, a bqplot figure) shows class
  colours (two, or one on a PathExplorer's map; each on over 1 % of the figure's pixels); an
  explorer computes its map in a thread, so this may come after the last cell;
- ``figure map``: until the first output image (a matplotlib figure) shows two class colours;
- ``all cells``: until every code cell has run and the kernel is idle;
- ``peak MiB``: the largest resident memory of the kernel process and its children, sampled
  every 0.1 s from the page's opening to the last cell (``idle MiB``: before the click);
- ``errors``: cells that printed a traceback; ``console``: errors in the browser console.

"—" means the notebook shows no such map. Each kernel is shut down after its notebook, before
the next one opens. Timings depend on the machine's load (printed at the start and the end):
this is a measurement, not a test. Needs the ``browser`` extra (playwright), psutil and Debian
``chromium`` (never a browser download).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
from jupyter_harness import (
    CHROMIUM_FLAGS,
    KERNEL_IDLE,
    OFFLINE_ERRORS,
    SERVER_START_S,
    PeakSampler,
    free_port,
    jupyter_command,
    jupyter_env,
    jupyter_home,
    serve,
    tree_rss,
)

REPO = Path(__file__).resolve().parent.parent
TEACHER = REPO / "notebooks"
VIEWPORT = {"width": 1280, "height": 800}
POLL_S = 0.2
MAP_AFTER_CELLS_S = 120  # how long a map that is on the page is waited for once every cell has run
COLOUR_SHARE = 0.01  # a class colour counts when it covers over 1 % of the pixels
COLOUR_TOLERANCE = 12  # per RGB channel

# [kernel status, code cells, code cells with an execution count]
_PROGRESS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = panel.content.widgets.filter((cell) => cell.model.type === 'code');
  return [panel.sessionContext.session.kernel.status, cells.length,
          cells.filter((cell) => cell.model.executionCount !== null).length];
}"""
_IMAGES = "(start) => [...document.querySelectorAll('.jp-OutputArea-output img')].slice(start).map((img) => img.src)"


@dataclass(frozen=True)
class Timing:
    """One notebook's "Run all": seconds from the click, MiB, counts; ``None`` where it shows no such map."""

    notebook: str
    widget_map_s: float | None
    figure_map_s: float | None
    all_cells_s: float
    idle_mib: float
    peak_mib: float
    errors: int
    console_errors: int


def lesson_number(path: Path) -> int:
    """The number a lesson's name starts with (``10_certified`` -> 10), for lesson order."""
    match = re.match(r"(\d+)_", path.name)
    return int(match.group(1)) if match else sys.maxsize


def lessons(folder: Path, names: list[str]) -> list[Path]:
    """The notebooks of ``folder`` named in ``names`` (file names or paths), or every one in lesson order."""
    available = sorted(folder.glob("*.ipynb"), key=lambda path: (lesson_number(path), path.name))
    if not names:
        return available
    by_name = {path.name: path for path in available}
    missing = [name for name in names if Path(name).name not in by_name]
    if missing:
        raise ValueError(f"notebooks {missing} are not in {folder}; expected some of {sorted(by_name)}")
    return [by_name[Path(name).name] for name in names]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", help="notebook file names in notebooks/ (default: every lesson)")
    parser.add_argument("--student", action="store_true", help="the student versions, built into the temporary copy")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one notebook may run (600)")
    return parser.parse_args(argv)


# --- colours --------------------------------------------------------------------------------------
def class_colour_count(png: bytes) -> int:
    """How many class colours (``render.rgb_table``) each cover over 1 % of the PNG's pixels."""
    from PIL import Image

    from boundary_widgets.render import rgb_table

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16).reshape(-1, 3)
    table = rgb_table(10).astype(np.int16)
    distance = np.abs(pixels[:, None, :] - table[None, :, :]).max(axis=2)  # (pixels, 10)
    return int(((distance <= COLOUR_TOLERANCE).mean(axis=0) > COLOUR_SHARE).sum())


def _widget_map_drawn(page) -> bool:
    """Whether any explorer map on the page shows its class colours (two; one on a path's map).

    Each map is scrolled into view and shot as a clip of the page: an element screenshot would
    first wait for the layout to stand still, which it does not while cells keep adding outputs.
    """
    maps = page.locator(".bw-slice-map")
    for index in range(maps.count()):
        figure = maps.nth(index)
        minimum = 1 if "bw-path-map" in (figure.get_attribute("class") or "") else 2
        figure.evaluate("(element) => element.scrollIntoView({block: 'center'})")
        box = figure.bounding_box()
        if box is None or box["width"] < 1 or box["height"] < 1:
            continue
        if class_colour_count(page.screenshot(clip=box, animations="disabled")) >= minimum:
            return True
    return False


def _new_figure_map(page, seen: int) -> tuple[int, bool]:
    """(images now on the page, whether one of those after the first ``seen`` shows two class colours)."""
    sources = page.evaluate(_IMAGES, seen)
    found = any(
        class_colour_count(base64.b64decode(source.split(",", 1)[1])) >= 2
        for source in sources
        if source.startswith("data:image/png;base64,")
    )
    return seen + len(sources), found


# --- server and kernel ----------------------------------------------------------------------------
def _request(port: int, token: str, path: str, method: str = "GET") -> object:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method=method, headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    return json.loads(body) if body else None


@dataclass(frozen=True)
class Server:
    port: int
    token: str
    process: subprocess.Popen


@contextmanager
def jupyterlab(home: Path) -> Iterator[Server]:
    """JupyterLab serving ``home/root``, config and runtime dirs in ``home``; stopped by its own pid."""
    jupyter_home(home)
    port, token = free_port(), secrets.token_hex(16)
    command = jupyter_command("jupyter-lab", port=port, token=token, root=home / "root", home=home)
    with serve(command, port=port, cwd=home / "root", env=jupyter_env(home), log=home / "jupyterlab.log") as process:
        yield Server(port, token, process)


def _session(server: Server, notebook: str) -> dict:
    sessions = [s for s in _request(server.port, server.token, "/api/sessions") if s["path"] == notebook]
    if len(sessions) != 1:
        raise RuntimeError(f"{len(sessions)} kernel sessions for {notebook}")
    return sessions[0]


def _kernel_process(server: Server, kernel_id: str) -> psutil.Process:
    """The server's child process started with this kernel's connection file."""
    connection = f"kernel-{kernel_id}.json"
    for child in psutil.Process(server.process.pid).children(recursive=True):
        try:
            if any(argument.endswith(connection) for argument in child.cmdline()):
                return child
        except psutil.NoSuchProcess:
            continue
    raise RuntimeError(f"no process of kernel {kernel_id} under the server")


# --- one notebook ---------------------------------------------------------------------------------
def _run_all_from_palette(page) -> float:
    """Pick "Run All Cells" in the command palette (Ctrl+Shift+C), as a teacher would; the click's time."""
    page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})  # focus the notebook, not a cell editor
    page.keyboard.press("Control+Shift+C")
    page.keyboard.type("Run All Cells")
    item = page.locator(".lm-CommandPalette-item").filter(
        has=page.locator(".lm-CommandPalette-itemLabel", has_text=re.compile(r"^Run All Cells$"))
    )
    item.first.wait_for(state="visible")
    started = time.monotonic()
    item.first.click()
    return started


def time_notebook(context, server: Server, notebook: str, *, timeout: float) -> Timing:
    page = context.new_page()
    page.set_default_timeout(60_000)
    console: list[str] = []

    def on_console(message) -> None:
        url = (message.location or {}).get("url", "")
        offline = any(reason in message.text for reason in OFFLINE_ERRORS) and not url.startswith("http://127.0.0.1")
        if message.type == "error" and not offline:
            console.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: console.append(str(error)))
    session = sampler = kernel = None
    try:
        page.goto(f"http://127.0.0.1:{server.port}/lab/tree/{notebook}?token={server.token}&reset")
        page.wait_for_function(KERNEL_IDLE, timeout=SERVER_START_S * 1000)
        session = _session(server, notebook)
        kernel = _kernel_process(server, session["kernel"]["id"])
        sampler = PeakSampler(lambda: kernel.pid)
        page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:activate')")
        time.sleep(1.0)  # the kernel at rest, the page drawn
        idle = tree_rss(kernel.pid)
        started = _run_all_from_palette(page)
        widget_map = figure_map = None
        images_seen = 0
        while True:
            now = time.monotonic() - started
            status, cells, ran = page.evaluate(_PROGRESS)
            if widget_map is None and _widget_map_drawn(page):
                widget_map = now
            if figure_map is None:
                images_seen, found = _new_figure_map(page, images_seen)
                figure_map = now if found else None
            if status == "idle" and ran == cells:
                all_cells = now
                break
            if now > timeout:
                raise TimeoutError(f"{notebook}: {ran} of {cells} cells ran in {timeout:.0f} s")
            time.sleep(POLL_S)
        if figure_map is None and _new_figure_map(page, images_seen)[1]:
            figure_map = time.monotonic() - started
        # An explorer computes its map in a thread: the map may arrive after its cell, the last one, ran.
        drawn_by = time.monotonic() + MAP_AFTER_CELLS_S
        while widget_map is None and page.locator(".bw-slice-map").count() and time.monotonic() < drawn_by:
            if _widget_map_drawn(page):
                widget_map = time.monotonic() - started
            time.sleep(POLL_S)
        errors = page.locator('[data-mime-type="application/vnd.jupyter.error"]').count()
    finally:
        peak = sampler.stop() if sampler is not None else 0
        page.close()
        if session is not None:  # the kernel goes with its session, before the next notebook opens
            _request(server.port, server.token, f"/api/sessions/{session['id']}", method="DELETE")
        if sampler is not None:
            kernel.wait(timeout=60)
    return Timing(notebook, widget_map, figure_map, all_cells, idle / 2**20, peak / 2**20, errors, len(console))


# --- the table ------------------------------------------------------------------------------------
HEADER = (
    f"{'notebook':<32} {'widget map s':>12} {'figure map s':>12} {'all cells s':>11} "
    f"{'idle MiB':>8} {'peak MiB':>8} {'errors':>6} {'console':>7}"
)


def row(timing: Timing) -> str:
    def seconds(value: float | None) -> str:
        return "—" if value is None else f"{value:.1f}"

    return (
        f"{timing.notebook:<32} {seconds(timing.widget_map_s):>12} {seconds(timing.figure_map_s):>12} "
        f"{timing.all_cells_s:11.1f} {timing.idle_mib:8.0f} {timing.peak_mib:8.0f} {timing.errors:6d} "
        f"{timing.console_errors:7d}"
    )


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("Debian `chromium` is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="first-map-") as folder:
        home = Path(folder)
        root = home / "root"
        if args.student:
            command = [sys.executable, str(REPO / "scripts" / "make_student_notebooks.py"), "--output", str(root)]
            subprocess.run(command, check=True, capture_output=True)
        else:
            shutil.copytree(TEACHER, root, ignore=shutil.ignore_patterns("student", ".ipynb_checkpoints"))
        notebooks = lessons(root, args.notebooks)
        failed = False
        print(f"# {'student' if args.student else 'teacher'} notebooks; load average at start: {_load()}", flush=True)
        print(HEADER, flush=True)
        with jupyterlab(home) as server, sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                str(home / "browser"), executable_path=chromium, headless=True, args=CHROMIUM_FLAGS, viewport=VIEWPORT
            )
            try:
                for path in notebooks:
                    try:
                        print(row(time_notebook(context, server, path.name, timeout=args.timeout)), flush=True)
                    except Exception as error:  # one notebook's failure is its row; the others still run
                        print(f"{path.name:<32} failed: {type(error).__name__}: {str(error)[:300]}", flush=True)
                        failed = True
            finally:
                context.close()
        print(f"# load average at end: {_load()}", flush=True)
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
