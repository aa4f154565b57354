"""The explorers in a real browser: JupyterLab and Voila driven by headless Chromium.

Each test starts its own server on 127.0.0.1 (free port, token) and runs a notebook:

- the quickstart notebook: the SliceExplorer map holds several class colours, a click on it
  changes the preview image and the probability chart, a new direction redraws the map;
- a notebook with all three explorers (written by the test), at 1280×800 with JupyterLab's file
  browser open and in Voila: for every explorer the map and the preview lie inside the viewport
  side by side, and the first click on the origin marker selects it; an error greys the
  SliceExplorer's map; the share string of one explorer rebuilds a second one in the page.

The quickstart and the explorers notebook also run in Jupyter Notebook 7 (``jupyter notebook``).
Every test fails on an error in the browser console (offline requests to other hosts aside).
Servers are waited for until they answer (however loaded the machine), never on a short clock.

Screenshots go to ``test-output/``. Servers are stopped by their own process ids.
"""

from __future__ import annotations

import io
import itertools
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from jupyter_harness import (
    CHROMIUM_FLAGS,
    KERNEL_IDLE,
    OFFLINE_ERRORS,
    SERVER_START_S,
    console_script,
    free_port,
    jupyter_command,
    jupyter_env,
    jupyter_home,
    serve,
)

from boundary_widgets.render import rgb_table

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "1_quickstart.ipynb"
OUTPUT = REPO / "test-output"
CHROMIUM = shutil.which("chromium")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
VIEWPORT = {"width": 1280, "height": 800}  # a laptop; JupyterLab's file browser open takes ~340 px
NOTEBOOK_RUN_S = 300
WIDGET_UPDATE_S = 60

if CHROMIUM is None and not IN_CI:
    pytest.skip(
        "Debian `chromium` is not installed (apt-get install -y chromium); CI installs it", allow_module_level=True
    )
if not IN_CI:
    pytest.importorskip("playwright.sync_api", reason="the `browser` extra (playwright) is not installed")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A root dir holding a copy of the notebook, plus isolated Jupyter config, settings and runtime dirs."""
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    # Voila reads voila.json in its working folder: the repository's keeps Notebook 7's lab extension
    # out of dashboards (it fails to load in Voila 0.5, voila-dashboards/voila#1514).
    shutil.copy(REPO / "voila.json", root / "voila.json")
    _write_explorers_notebook(root / EXPLORERS_NOTEBOOK)
    for name in ("data", "browser"):
        (tmp_path / name).mkdir()
    jupyter_home(tmp_path)
    return tmp_path


def _write_explorers_notebook(path: Path) -> None:
    import nbformat

    cells = [
        "import torch\nimport boundary_widgets as bw\nclf, data = bw.zoo.load('digits-cnn', device='cpu')",
        "slice_explorer = bw.SliceExplorer(clf, dataset=data, resolution=64, extent=3.0)\nslice_explorer",
        "copy = bw.widgets.Explorer.from_state(clf, None, slice_explorer.share, dataset=data)\ncopy",
        "images, _ = data.split('test')\na, b = torch.nonzero(clf.predict(images) == 3).flatten()[:2].tolist()\n"
        "path_explorer = bw.PathExplorer(clf, images[a], images[b], resolution=48)\npath_explorer",
        "result = bw.analysis.band_margins(clf, images[:6])\n"
        "margin_explorer = bw.MarginExplorer(clf, images[:6], result=result, resolution=48)\nmargin_explorer",
        "robust, _ = bw.zoo.load('digits-cnn-robust', device='cpu')\n"
        "compare = bw.CompareExplorer(clf, robust, images[0], dataset=data, resolution=48, "
        "names=('standard', 'adversarially trained'))\ncompare",
        "moons_clf, moons = bw.zoo.load('moons-mlp', device='cpu')\n"
        "training = bw.TrainingExplorer(moons_clf, moons, resolution=48)\ntraining",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code) for code in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)


EXPLORERS_NOTEBOOK = "explorers.ipynb"


@pytest.fixture
def browser_page(workdir: Path):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "Debian `chromium` must be installed when CI is set"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(workdir / "browser"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport=VIEWPORT,
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(WIDGET_UPDATE_S * 1000)
            page.console_errors = []  # every test ends with _assert_no_console_errors(page)
            page.on("console", lambda message: _console_error(page, message))
            page.on("pageerror", lambda error: page.console_errors.append(f"uncaught: {error}"))
            yield page
        finally:
            context.close()


def _console_error(page, message) -> None:
    """Keep an error logged in the browser console, unless it is a request to another host failing offline."""
    if message.type != "error":
        return
    url = (message.location or {}).get("url", "")
    offline = any(reason in message.text for reason in OFFLINE_ERRORS) and not url.startswith("http://127.0.0.1")
    if not offline:
        page.console_errors.append(f"{message.text[:300]} ({url})")


def _assert_no_console_errors(page, front_end: str = "") -> None:
    errors = [error for error in page.console_errors if error not in FRONT_END_ERRORS.get(front_end, ())]
    assert not errors, f"{len(errors)} error(s) in the browser console, the first: {errors[:3]}"


def _png_pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def _class_colour_fractions(png: bytes) -> np.ndarray:
    """``(K,)`` fraction of the screenshot's pixels that show each class colour (within a small tolerance)."""
    pixels = _png_pixels(png).reshape(-1, 3)
    table = rgb_table(10).astype(np.int16)
    distance = np.abs(pixels[:, None, :] - table[None, :, :]).max(axis=2)  # (pixels, K)
    return (distance <= 12).mean(axis=0)


def _wait_until_changed(locator, before: bytes, what: str) -> bytes:
    """Screenshots of ``locator`` until it differs from ``before``; fails after WIDGET_UPDATE_S."""
    deadline = time.monotonic() + WIDGET_UPDATE_S
    while time.monotonic() < deadline:
        time.sleep(0.3)
        after = locator.screenshot(animations="disabled")
        if after != before:
            return after
    pytest.fail(f"{what} did not change within {WIDGET_UPDATE_S} s")


def _exercise_slice_explorer(page, prefix: str) -> None:
    """The checks shared by JupyterLab and Voila, on the last SliceExplorer of the page."""
    OUTPUT.mkdir(exist_ok=True)
    slice_map = page.locator(".bw-slice-map").last
    preview = page.locator(".bw-preview").last
    probabilities = page.locator(".bw-probabilities").last
    slice_map.wait_for(state="visible", timeout=NOTEBOOK_RUN_S * 1000)
    slice_map.scroll_into_view_if_needed()

    deadline = time.monotonic() + WIDGET_UPDATE_S
    while True:  # the map's PNG arrives after the figure itself is drawn
        map_png = slice_map.screenshot(animations="disabled")
        fractions = _class_colour_fractions(map_png)
        if (fractions > 0.01).sum() >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    page.screenshot(path=str(OUTPUT / f"{prefix}-page.png"), full_page=True)
    (OUTPUT / f"{prefix}-map.png").write_bytes(map_png)
    assert (fractions > 0.01).sum() >= 2, f"the map shows fewer than 2 class colours: {fractions.round(3)}"

    preview_before = preview.screenshot(animations="disabled")
    probabilities_before = probabilities.screenshot(animations="disabled")
    box = slice_map.bounding_box()
    assert box is not None
    # Off the centre (the image itself): a point a quarter of the way towards the top-right corner.
    page.mouse.click(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.3)
    _wait_until_changed(preview, preview_before, "the preview image after a click on the map")
    _wait_until_changed(probabilities, probabilities_before, "the probability chart after a click on the map")
    page.screenshot(path=str(OUTPUT / f"{prefix}-after-click.png"), full_page=True)

    map_before = slice_map.screenshot(animations="disabled")
    u_kind = page.locator(".bw-u-kind select").last
    in_use = {u_kind.input_value(), page.locator(".bw-v-kind select").last.input_value()}
    # A kind neither picker uses, so that u cannot coincide with v (two seed-0 random directions do).
    options = [option for option in u_kind.locator("option").all_text_contents() if option not in in_use]
    assert options, f"the direction dropdown offers no kind besides {sorted(in_use)}"
    u_kind.select_option("dct" if "dct" in options else options[0])
    # The regions themselves must be redrawn, not only the boundary lines and markers over them.
    before_fractions = _class_colour_fractions(map_before)
    deadline = time.monotonic() + WIDGET_UPDATE_S
    while np.abs(_class_colour_fractions(slice_map.screenshot(animations="disabled")) - before_fractions).sum() < 0.02:
        assert time.monotonic() < deadline, (
            f"the map's regions did not change within {WIDGET_UPDATE_S} s of a new direction"
        )
        time.sleep(0.3)
    page.screenshot(path=str(OUTPUT / f"{prefix}-after-direction.png"), full_page=True)


def _assert_no_error_outputs(page) -> None:
    errors = page.locator(
        '[data-mime-type="application/vnd.jupyter.error"], .jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]'
    )
    texts = [text[:500] for text in errors.all_inner_texts() if "Traceback" in text or "Error" in text]
    assert not texts, f"the notebook printed errors: {texts}"


# JavaScript on the page (JupyterLab exposes `window.jupyterapp` with expose_app_in_browser).
_ALL_CELLS_RAN = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session.kernel;
  const cells = panel.content.widgets.filter((cell) => cell.model.type === 'code');
  return kernel.status === 'idle' && cells.every((cell) => cell.model.executionCount !== null);
}"""


FRONT_ENDS = {  # front end -> (console script, its app's config prefix, the URL path of a notebook)
    "jupyterlab": ("jupyter-lab", "LabApp", "lab/tree"),
    "notebook7": ("jupyter-notebook", "JupyterNotebookApp", "notebooks"),
}
# Errors of the front end itself, each seen with nothing of ours in the page. Notebook 7.6.5's
# shortcuts plugin reads the settings schema of a plugin it has not loaded when the widget
# manager loads its settings: a notebook with one `ipywidgets.IntSlider()` logs it too.
FRONT_END_ERRORS = {"notebook7": ("uncaught: Cannot read properties of undefined (reading 'schema')",)}


@contextmanager
def _notebook_page(workdir: Path, page, notebook: str, front_end: str, *, file_browser: bool = False) -> Iterator[None]:
    """``notebook`` open in JupyterLab or Jupyter Notebook 7, every cell run (Run All), no error output."""
    script, app, tree = FRONT_ENDS[front_end]
    port, token = free_port(), secrets.token_hex(16)
    command = jupyter_command(script, port=port, token=token, root=workdir / "root", home=workdir, app=app)
    log = workdir / f"{front_end}.log"
    with serve(command, port=port, cwd=workdir / "root", env=jupyter_env(workdir), log=log):
        page.goto(f"http://127.0.0.1:{port}/{tree}/{notebook}?token={token}&reset")
        page.wait_for_function(KERNEL_IDLE, timeout=SERVER_START_S * 1000)
        if file_browser:
            page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:activate')")
            assert page.evaluate("() => !window.jupyterapp.shell.leftCollapsed"), "the file browser must be open"
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_function(_ALL_CELLS_RAN, timeout=NOTEBOOK_RUN_S * 1000, polling=500)
        _assert_no_error_outputs(page)
        yield


@contextmanager
def _voila_page(workdir: Path, page, notebook: str) -> Iterator[None]:
    port = free_port()
    command = [console_script("voila"), notebook, "--Voila.ip=127.0.0.1", f"--port={port}", "--no-browser"]
    with serve(command, port=port, cwd=workdir / "root", env=jupyter_env(workdir), log=workdir / "voila.log"):
        page.goto(f"http://127.0.0.1:{port}/", timeout=NOTEBOOK_RUN_S * 1000)
        yield


def _assert_plain_numbers(page) -> None:
    """Outputs print plain numbers, not NumPy scalars' reprs (``np.float64(0.49)``)."""
    text = page.locator(".jp-OutputArea-output").all_inner_texts()
    assert not [t for t in text if "np.float" in t or "np.int" in t], [t[:200] for t in text if "np." in t]


@pytest.mark.parametrize("front_end", list(FRONT_ENDS))
def test_quickstart_in_jupyterlab_and_notebook_7(workdir: Path, browser_page, front_end: str) -> None:
    with _notebook_page(workdir, browser_page, NOTEBOOK.name, front_end):
        _assert_plain_numbers(browser_page)
        _exercise_slice_explorer(browser_page, front_end)
    _assert_no_console_errors(browser_page, front_end)


def test_quickstart_in_voila(workdir: Path, browser_page) -> None:
    with _voila_page(workdir, browser_page, NOTEBOOK.name):
        _exercise_slice_explorer(browser_page, "voila")
        _assert_no_error_outputs(browser_page)
    _assert_no_console_errors(browser_page)


# --- every explorer, at 1280×800 ---------------------------------------------------------------
def _inside_viewport(page, locator, what: str) -> None:
    box = locator.bounding_box()
    assert box is not None, f"{what} is not displayed"
    width, height = page.viewport_size["width"], page.viewport_size["height"]
    assert box["x"] >= 0 and box["y"] >= 0, f"{what} starts outside the viewport: {box}"
    assert box["x"] + box["width"] <= width + 1 and box["y"] + box["height"] <= height + 1, (
        f"{what} ends outside the {width}×{height} viewport: {box}"
    )


def _origin_on_page(figure) -> tuple[float, float]:
    """The page position of (alpha, beta) = (0, 0) on a map: where its axes' "0" ticks point."""
    zeros = [
        box
        for label in figure.locator("g.tick text").all()
        if label.text_content().strip() in ("0", "0.0") and (box := label.bounding_box()) is not None
    ]
    assert len(zeros) >= 2, "the map's axes show no 0 tick"
    x_tick = max(zeros, key=lambda box: box["y"])  # below the plot
    y_tick = min(zeros, key=lambda box: box["x"])  # left of the plot
    return x_tick["x"] + x_tick["width"] / 2, y_tick["y"] + y_tick["height"] / 2


def _wait_for_colours(locator, what: str, minimum: int = 2) -> bytes:
    deadline = time.monotonic() + WIDGET_UPDATE_S
    while True:
        png = locator.screenshot(animations="disabled")
        if (_class_colour_fractions(png) > 0.01).sum() >= minimum:
            return png
        assert time.monotonic() < deadline, f"{what} shows fewer than {minimum} class colours"
        time.sleep(0.3)


def _wait_for_text(locator, text: str, what: str) -> None:
    deadline = time.monotonic() + WIDGET_UPDATE_S
    while text not in locator.inner_text():
        assert time.monotonic() < deadline, f"{what}: {text!r} not shown; got {locator.inner_text()[:300]!r}"
        time.sleep(0.2)


def _check_explorer(page, root, prefix: str, *, origin_caption: str, colours: int = 2) -> None:
    """Map and preview side by side in the viewport; the first click, on the origin marker, selects it."""
    figure = root.locator(".bw-slice-map").first
    preview = root.locator(".bw-preview").first
    root.scroll_into_view_if_needed()
    root.locator(".bw-status").first.scroll_into_view_if_needed()
    figure.scroll_into_view_if_needed()
    page.screenshot(path=str(OUTPUT / f"{prefix}-first.png"))
    _wait_for_colours(figure, f"{prefix}: the map", colours)
    page.screenshot(path=str(OUTPUT / f"{prefix}.png"))
    _inside_viewport(page, figure, f"{prefix}: the map")
    _inside_viewport(page, preview, f"{prefix}: the preview")
    _inside_viewport(page, root.locator(".bw-status").first, f"{prefix}: the status line")
    page.mouse.click(*_origin_on_page(figure))
    _wait_for_text(root.locator(".bw-caption").first, origin_caption, f"{prefix}: a click on the origin marker")
    page.screenshot(path=str(OUTPUT / f"{prefix}-origin-clicked.png"))


def _box(locator) -> dict:
    box = locator.bounding_box()
    assert box is not None, "not displayed"
    return box


def _scroll_to_top(locator) -> None:
    """Scroll so that the element's top is at the top of its scrolling area (the notebook or the page)."""
    locator.evaluate("(element) => element.scrollIntoView({block: 'start'})")
    time.sleep(0.3)


def _assert_text_not_cut(root, what: str) -> None:
    """No button, toggle or label of the widget shows its text cut to "…" (its text is wider than its box)."""
    cut = root.evaluate(
        """(root) => [...root.querySelectorAll('button, .widget-label, .widget-toggle-button, label')]
            .filter((el) => el.offsetWidth > 0 && el.scrollWidth > el.clientWidth + 1)
            .map((el) => `${el.textContent.trim()} (${el.clientWidth} px shows ${el.scrollWidth} px)`)"""
    )
    assert not cut, f"{what}: text cut short: {cut}"


def _assert_ticks_apart(figure, what: str) -> None:
    """The tick labels under the plot do not overlap (d3 puts ten ticks on a short axis)."""
    boxes = [box for label in figure.locator("g.tick text").all() if (box := label.bounding_box()) is not None]
    bottom = max(box["y"] for box in boxes)
    row = sorted((box for box in boxes if abs(box["y"] - bottom) < 2), key=lambda box: box["x"])
    assert len(row) >= 3, f"{what}: fewer than 3 ticks under the plot"
    gaps = [b["x"] - (a["x"] + a["width"]) for a, b in itertools.pairwise(row)]
    assert min(gaps) >= 2, f"{what}: tick labels overlap or touch (gaps {np.round(gaps, 1).tolist()} px)"


def _assert_regions_readable(figure, what: str) -> float:
    """The label map's plot area shows class colours on most pixels: the hatching and lines stay sparse."""
    image = figure.locator("image").first
    share = float(_class_colour_fractions(image.screenshot(animations="disabled")).sum())
    assert share >= 0.8, f"{what}: only {share:.0%} of the map shows a class colour"
    return share


def _grey_share(png: bytes) -> float:
    """Fraction of the screenshot's pixels that show a class colour (near 0 once the map is greyed)."""
    return float(_class_colour_fractions(png).sum())


def _exercise_explorers(page, prefix: str) -> None:
    OUTPUT.mkdir(exist_ok=True)
    slices = page.locator(".bw-slice-explorer")
    slices.nth(1).wait_for(state="visible", timeout=NOTEBOOK_RUN_S * 1000)
    original, copy = slices.nth(0), slices.nth(1)
    # The share string rebuilt a second explorer in the page: the same settings, before anyone clicks.
    share = original.locator(".bw-share input").first.input_value()
    assert share.startswith("bw1."), share
    assert copy.locator(".bw-share input").first.input_value() == share
    _wait_for_colours(copy.locator(".bw-slice-map").first, f"{prefix}: the second explorer's map")
    _check_explorer(page, original, f"{prefix}-slice", origin_caption="α = 0.000, β = 0.000")

    # An error greys the map and says why beside it.
    original.scroll_into_view_if_needed()
    figure = original.locator(".bw-slice-map").first
    coloured = _grey_share(figure.screenshot(animations="disabled"))
    original.locator(".bw-v-kind select").first.select_option("adversarial")  # u is adversarial too: parallel
    original.locator(".bw-map-error-text").first.wait_for(state="visible", timeout=WIDGET_UPDATE_S * 1000)
    deadline = time.monotonic() + WIDGET_UPDATE_S
    while _grey_share(figure.screenshot(animations="disabled")) > 0.2 * coloured:
        assert time.monotonic() < deadline, "the map was not greyed out after an error"
        time.sleep(0.3)
    assert "parallel" in original.locator(".bw-map-error-text").first.inner_text()
    page.screenshot(path=str(OUTPUT / f"{prefix}-slice-error.png"))
    original.locator(".bw-v-kind select").first.select_option("random")
    _wait_for_colours(figure, f"{prefix}: the map after the error was fixed")

    _assert_regions_readable(figure, f"{prefix}: the digits map, mostly outside the input box")
    _assert_text_not_cut(original, f"{prefix}: SliceExplorer")

    # A path inside one class: its plane may hold that class only.
    path = page.locator(".bw-path-explorer").first
    _check_explorer(page, path, f"{prefix}-path", origin_caption="α = 0.000, β = 0.000 on the plane", colours=1)
    _assert_ticks_apart(path.locator(".bw-path-profile").first, f"{prefix}: PathExplorer's profile")
    _assert_text_not_cut(path, f"{prefix}: PathExplorer")

    margins = page.locator(".bw-margin-explorer").first
    margins.scroll_into_view_if_needed()
    box = margins.locator(".bw-margins-chart").first.bounding_box()
    dots = margins.locator(".bw-margins-chart .dot")
    dots.first.wait_for(state="visible", timeout=WIDGET_UPDATE_S * 1000)
    dots.first.click(force=True)
    assert box is not None
    _check_explorer(page, margins, f"{prefix}-margins", origin_caption="α = 0.000, β = 0.000", colours=1)

    compare = page.locator(".bw-compare").first
    _check_compare_fits(page, compare, f"{prefix}-compare")
    _check_training_layout(page, page.locator(".bw-training-explorer").first, f"{prefix}-training")


def _check_compare_fits(page, root, prefix: str) -> None:
    """CompareExplorer in two rows within the output column: both maps, the difference and both previews in view."""
    _scroll_to_top(root)
    maps = root.locator(".bw-slice-map")
    _wait_for_colours(maps.nth(0), f"{prefix}: model a's map", 1)
    _wait_for_colours(maps.nth(1), f"{prefix}: model b's map", 1)
    page.screenshot(path=str(OUTPUT / f"{prefix}.png"))
    parts = {
        "model a's map": maps.nth(0),
        "model b's map": maps.nth(1),
        "the difference map": root.locator(".bw-difference-map").first,
        "model a's preview": root.locator(".bw-probabilities").nth(0),
        "model b's preview": root.locator(".bw-probabilities").nth(1),
    }
    for what, locator in parts.items():
        _inside_viewport(page, locator, f"{prefix}: {what}")
    a, b = _box(maps.nth(0)), _box(maps.nth(1))
    assert abs(a["y"] - b["y"]) < 1 and b["x"] > a["x"] + a["width"] - 1, f"{prefix}: the maps must sit side by side"
    column = root.evaluate("(root) => root.parentElement.getBoundingClientRect().toJSON()")
    explorer = _box(root)
    assert explorer["x"] + explorer["width"] <= column["x"] + column["width"] + 1, (
        f"{prefix}: {explorer['width']:.0f} px wide in a {column['width']:.0f}-px column"
    )
    page.mouse.click(a["x"] + 0.6 * a["width"], a["y"] + 0.45 * a["height"])
    deadline = time.monotonic() + WIDGET_UPDATE_S
    while any("click the map" in caption for caption in root.locator(".bw-caption").all_inner_texts()):
        assert time.monotonic() < deadline, f"{prefix}: a click did not preview both models"
        time.sleep(0.2)
    for what in ("model a's preview", "model b's preview"):
        _inside_viewport(page, parts[what], f"{prefix}: {what} after a click")
    _assert_text_not_cut(root, prefix)
    page.screenshot(path=str(OUTPUT / f"{prefix}-clicked.png"))


def _check_training_layout(page, root, prefix: str) -> None:
    """TrainingExplorer: the preview on the right of the controls and the map, in one row."""
    _scroll_to_top(root)
    figure = root.locator(".bw-slice-map").first
    _wait_for_colours(figure, f"{prefix}: the untrained map")
    controls = _box(root.locator(".bw-epoch").first)
    preview, map_box = _box(root.locator(".bw-preview").first), _box(figure)
    assert preview["x"] >= map_box["x"] + map_box["width"] - 1 >= controls["x"] + controls["width"] - 1, (
        f"{prefix}: the preview must sit right of the map, right of the controls: {preview}, {map_box}, {controls}"
    )
    assert preview["y"] < map_box["y"] + map_box["height"], f"{prefix}: the preview dropped below the map"
    _inside_viewport(page, figure, f"{prefix}: the map")
    _inside_viewport(page, root.locator(".bw-preview").first, f"{prefix}: the preview")
    _assert_text_not_cut(root, prefix)
    page.screenshot(path=str(OUTPUT / f"{prefix}.png"))


@pytest.mark.parametrize("front_end", list(FRONT_ENDS))
def test_every_explorer_in_jupyterlab_and_notebook_7_at_1280x800(workdir: Path, browser_page, front_end: str) -> None:
    """JupyterLab with its file browser open (the narrowest output column); Notebook 7 as it opens."""
    with _notebook_page(workdir, browser_page, EXPLORERS_NOTEBOOK, front_end, file_browser=front_end == "jupyterlab"):
        _exercise_explorers(browser_page, f"{front_end}-explorers")
    _assert_no_console_errors(browser_page, front_end)


def test_every_explorer_in_voila_at_1280x800(workdir: Path, browser_page) -> None:
    with _voila_page(workdir, browser_page, EXPLORERS_NOTEBOOK):
        _exercise_explorers(browser_page, "voila-explorers")
        _assert_no_error_outputs(browser_page)
    _assert_no_console_errors(browser_page)
