"""``make run`` as a new user meets it: the demo serves on Azurite that devhost starts itself,
and the curl lines it prints work when pasted into a shell.

The demo runs in a folder of its own (symlinks to the app) with ``UseDevelopmentStorage=true``,
so devhost starts Azurite on the well-known ports 10000-10002 when they are free, as on a fresh
machine. When something already listens there (a developer's own Azurite), devhost uses it and
this test still checks everything else; the table prefix keeps its data apart.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from devhost.azurite import DEFAULT_PORTS, free_port, is_listening
from tests.e2e.conftest import ROOT

LINKED = ("function_app.py", "host.json", "core", "triggers", "cli", "devhost", "console")


def _demo_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "demo"
    folder.mkdir()
    for name in LINKED:
        (folder / name).symlink_to(ROOT / name)
    settings = {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "FUNCTIONS_WORKER_RUNTIME": "python",
                "JUNCTION_TABLE_PREFIX": "demo" + uuid.uuid4().hex[:8]}  # fmt: skip
    (folder / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": settings}))
    return folder


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def _shell(line: str, cwd: Path) -> str:
    return subprocess.run(["bash", "-c", line], cwd=cwd, capture_output=True, text=True, timeout=30, check=True).stdout


def test_make_run_serves_the_demo_and_its_curl_lines_work(tmp_path: Path) -> None:
    folder = _demo_folder(tmp_path)
    port = free_port()
    azurite_was_running = any(is_listening(p) for p in DEFAULT_PORTS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUNCTION_", "AzureWebJobs"))}
    env.update({"JUNCTION_PORT": str(port), "PYTHONPATH": str(folder)})
    # bash stays the demo's parent, as make is: killing it must stop everything the demo started.
    parent = subprocess.Popen(
        ["bash", "-c", f"{shlex.quote(sys.executable)} -m cli.demo; true"],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(parent.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        _wait(lambda: any("junction cache get" in line for line in lines), 150, "the demo's instructions")
        output = "".join(lines)
        if not azurite_was_running:
            assert all(is_listening(p) for p in DEFAULT_PORTS), "devhost did not start Azurite"
        token = re.search(r"Admin token \(shown once\): (jct_\S+)", output)
        scenario = re.search(r"Demo scenario: ([0-9a-f-]{36})", output)
        assert token and scenario, output
        console_url = f"http://127.0.0.1:{port}/console/"
        assert console_url in [line.strip() for line in lines], output
        page = _shell(f"curl -si {console_url}", folder)
        assert page.startswith("HTTP/1.1 200") and "<title>Junction console</title>" in page, page[:500]
        curls = [line.strip() for line in lines if line.strip().startswith("curl ")]
        assert len(curls) == 3, output
        accept, read, runs = curls
        assert f"127.0.0.1:{port}/ExternalData/Accept/{scenario[1]}" in accept and token[1] in accept

        answer = _shell(accept, folder)
        assert answer.startswith("HTTP/1.1 200") and re.search(r"(?im)^x-run-id: \S+", answer), answer
        _wait(lambda: _shell(read, folder) == '{"orderId":42}', 60, "the demo process to cache the body")
        listed = json.loads(_shell(runs, folder))["value"]
        assert [run["status"] for run in listed] == ["succeeded"]
    finally:
        group = parent.pid  # bash leads the session: the demo and devhost are in its group
        os.kill(group, signal.SIGKILL)  # like make killed by a signal: nothing is passed on
        parent.wait(timeout=10)
    try:
        _wait(lambda: not _group_alive(group), 60, "the demo and devhost to stop once their parent is gone")
        assert not is_listening(port)
        if not azurite_was_running:
            assert not any(is_listening(p) for p in DEFAULT_PORTS), "the Azurite devhost started is still serving"
    finally:
        if _group_alive(group):
            os.killpg(group, signal.SIGKILL)  # the test failed above: leave nothing behind


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True
