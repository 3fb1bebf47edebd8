"""The sandbox as a person uses it: `python -m sandbox` (the `aesh sandbox` command) in its
own process on a fresh folder, and Debian's Chromium driven by Playwright. No browser is
downloaded: the test set-up apt-installs `chromium` when allowed (CI=true or
AESH_TEST_INSTALL=1); under CI a missing browser fails instead of skipping."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.servers import apt_error, ensure_apt, free_port, skip_or_fail

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
START_TIMEOUT = 180.0  # a cold start generates and imports the demo department
READY = re.compile(r"Bac à sable prêt : (http://\S+)")


@dataclass
class RunningSandbox:
    url: str
    folder: Path
    process: subprocess.Popen[str]
    output: list[str]

    def log_tail(self, lines: int = 40) -> str:
        return "".join(self.output[-lines:])

    def accompagnement_id(self) -> str:
        """The first accompaniment of the demo department (for /pv)."""
        rows = (self.folder / "data" / "demo" / "accompagnements.csv").read_text("utf-8")
        header, first = rows.splitlines()[:2]
        sep = ";" if ";" in header else ","
        return first.split(sep)[header.split(sep).index("id")]


def _read_lines(stream: Any, sink: list[str], lines: queue.Queue[str], log: Path) -> None:
    with log.open("w", encoding="utf-8") as copy:
        for line in stream:
            sink.append(line)
            lines.put(line)
            copy.write(line)
            copy.flush()


def output_dir(config: pytest.Config) -> Path:
    folder = Path(config.rootpath) / "test-output" / "sandbox"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def sandbox(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[RunningSandbox]:
    folder = tmp_path_factory.mktemp("sandbox")
    # The sandbox must run on its embedded defaults, as after a fresh clone.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AESH_")}
    env["PYTHONUNBUFFERED"] = "1"
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", str(port), "--host", "127.0.0.1"],
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    lines: queue.Queue[str] = queue.Queue()
    # The sandbox's own log, kept beside the screenshots: the first thing to read when a
    # journey fails.
    log = output_dir(pytestconfig) / "sandbox.log"
    threading.Thread(
        target=_read_lines, args=(process.stdout, output, lines, log), daemon=True
    ).start()
    url = None
    try:
        while url is None:
            try:
                line = lines.get(timeout=START_TIMEOUT)
            except queue.Empty:
                pytest.fail("the sandbox did not start:\n" + "".join(output[-40:]))
            if (found := READY.search(line)) is not None:
                url = found.group(1)
            elif process.poll() is not None and lines.empty():
                pytest.fail("the sandbox stopped:\n" + "".join(output[-40:]))
        yield RunningSandbox(url, folder, process, output)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed (pip install -e '.[test]')")
    if not ensure_apt(["chromium"], CHROMIUM):
        skip_or_fail(apt_error() or f"{CHROMIUM} not found")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def screenshot_path(request: pytest.FixtureRequest) -> Path:
    return output_dir(request.config) / f"{request.node.name}.png"
