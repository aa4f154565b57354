"""What the browser tests and the lesson-measuring scripts share: a Jupyter server started on its own
port and config, Debian chromium's flags, and a process tree's resident memory.

Imported by ``tests/test_browser.py``, ``scripts/first_map_times.py`` and ``scripts/run_lessons.py``
(from ``scripts/``, which Python puts on the path of a script run from there).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Silences JupyterLab's "check for updates / fetch news" pop-up, which covers part of the page.
LAB_OVERRIDES = {"@jupyterlab/apputils-extension:notification": {"checkForUpdates": False, "fetchNews": "false"}}
# A server is waited for while its process lives: this limit only stops a hung start (a loaded
# 2-core machine has taken over a minute to start JupyterLab).
SERVER_START_S = 600
# Console errors that are not the page's: this machine is offline, so requests to other hosts fail.
OFFLINE_ERRORS = ("net::ERR_NAME_NOT_RESOLVED", "net::ERR_INTERNET_DISCONNECTED", "net::ERR_CONNECTION_REFUSED")
# JavaScript: whether the notebook in front has a kernel and it is idle (JupyterLab and Notebook 7
# expose `window.jupyterapp` with expose_app_in_browser).
KERNEL_IDLE = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = panel && panel.sessionContext && panel.sessionContext.session && panel.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle';
}"""
# Folders of a server's own config, runtime and settings, so that it reads nothing of the user's.
JUPYTER_DIRS = ("config", "runtime", "settings", "app_settings", "workspaces")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def console_script(name: str) -> str:
    """The console script installed beside this interpreter, so the server uses the same environment."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"`{name}` is not installed in {sys.prefix}")
    return found


def jupyter_home(home: Path) -> None:
    """Create ``home``'s config, runtime and settings folders, with JupyterLab's pop-ups off."""
    for name in JUPYTER_DIRS:
        (home / name).mkdir(exist_ok=True)
    (home / "app_settings" / "overrides.json").write_text(json.dumps(LAB_OVERRIDES))


def jupyter_env(home: Path) -> dict[str, str]:
    """This process's environment with Jupyter's folders in ``home`` and this checkout's package importable."""
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        PYTHONUNBUFFERED="1",
        # The kernel imports this checkout's package even where it is not pip-installed.
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    return env


def jupyter_command(script: str, *, port: int, token: str, root: Path, home: Path, app: str = "LabApp") -> list[str]:
    """``jupyter-lab`` or ``jupyter-notebook`` (``app``: ``LabApp`` or ``JupyterNotebookApp``) on ``port``."""
    return [
        console_script(script),
        "--allow-root",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--{app}.app_settings_dir={home / 'app_settings'}",
        f"--{app}.expose_app_in_browser=True",
    ]


def answers(port: int, path: str = "/api") -> bool:
    """Whether the server on ``port`` answers ``GET path`` with a status below 500."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status < 500
    except urllib.error.HTTPError as error:
        return error.code < 500
    except OSError:
        return False


@contextmanager
def serve(
    command: list[str], *, port: int, cwd: Path, env: dict[str, str], log: Path, ready: str = "/api"
) -> Iterator[subprocess.Popen]:
    """Run ``command`` until it answers ``GET ready``; stop that very process afterwards.

    Readiness is polled while the process lives, so a slow start on a loaded machine only waits.
    """
    with log.open("w") as log_file:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + SERVER_START_S
            while not answers(port, ready):
                if process.poll() is not None:
                    raise RuntimeError(f"{command[0]} exited early:\n{log.read_text()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{command[0]} hung: no answer in {SERVER_START_S} s")
                time.sleep(0.2)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def tree_rss(pid: int) -> int:
    """Resident bytes of process ``pid`` and all its descendants (0 once it is gone). Needs psutil."""
    import psutil

    try:
        process = psutil.Process(pid)
        members = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


class PeakSampler:
    """The largest :func:`tree_rss` of the process that ``pid()`` names (``None``: not started yet),
    sampled every 0.1 s in a thread until :meth:`stop`."""

    def __init__(self, pid: object) -> None:
        self._pid, self.peak = pid, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.is_set():
            pid = self._pid()
            if pid is not None:
                self.peak = max(self.peak, tree_rss(pid))
            time.sleep(0.1)

    def stop(self) -> int:
        """Stop sampling; the peak in bytes."""
        self._done.set()
        self._thread.join()
        return self.peak
