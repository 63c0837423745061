"""The console shows a run that no worker has picked up yet as ``queued`` (docs/console.md), then,
once a worker runs it, as ``succeeded``, without the page being reloaded.

The console's devhost polls no queue (``--no-queues``): Accept records the run ``queued`` and sends
its message, and the run stays queued for exactly as long as the test looks. A second devhost on
the same storage, with its queue worker on, then plays the worker instance that picks it up.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.azurite import Azurite, free_port
from devhost.testing import DevhostProcess
from tests.e2e.conftest import ROOT, Junction, serve_junction
from tests.support.browser import Browser, require_chromium, serious


class Session:
    def __init__(self, app: Junction, browser: Browser, logs: Path) -> None:
        self.app, self.browser, self.logs = app, browser, logs


@pytest.fixture(scope="module")
def queued(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    require_chromium()
    logs = tmp_path_factory.mktemp("devhost-console-queued")
    with serve_junction(azurite, "consolequeued", logs, args=("--no-queues", "--no-timers")) as app:
        browser = Browser(app.url)
        try:
            yield Session(app, browser, logs)
        finally:
            browser.close()


def test_a_run_shows_as_queued_until_a_worker_runs_it_then_as_succeeded(queued: Session) -> None:
    browser, app = queued.browser, queued.app
    with app.admin() as admin:
        made = admin.post("/management/scenarios", json={"name": "Waits for a worker", "externalTriggers": {"enabled": True}, "process": {"steps": [
            {"type": "return", "value": {"jmespath": "{order: data[0].Body.orderId}"}}]}})  # fmt: skip
    assert made.status_code == 201, made.text
    sid = made.json()["id"]
    browser.open("/")
    browser.fill("input[name=token]", app.admin_token)
    browser.click("form button[type=submit]")
    browser.find("table.scenarios")

    # Try it: accepted, and queued while no worker takes it.
    browser.open(f"/console/scenarios/{sid}/try")
    browser.fill("textarea[name=body]", '{"orderId": 12}')
    browser.click("form button[type=submit]")
    browser.wait_text(".try-result .run-state .badge", "queued")
    browser.wait_text(".try-result .progress", "Waiting for a worker to pick the run up…")
    assert browser.find("form button[type=submit]").get_attribute("disabled") is not None
    run_id = browser.find(".try-result a[href*='/runs/']").text
    assert app.wait_for_run(sid, run_id, timeout=0)["status"] == "queued"

    # The runs list and the run page say so, and keep refreshing.
    browser.open(f"/console/scenarios/{sid}/runs")
    row = "table.cards tbody tr:first-child"
    browser.wait_text(row, run_id)
    assert browser.text(f"{row} td[data-label='Status']") == "queued"
    browser.wait_text("main p.count", "Some runs are still going")
    browser.click(f"{row} a[href$='/runs/{run_id}']")
    browser.wait_text(".run-details .facts .badge", "queued")
    assert browser.text(".run-details .steps-pending") == "Not started yet."
    browser.wait_text("main p.count", "The run is queued; this page refreshes every second.")
    assert serious(browser.axe()) == []
    browser.shoot("run-queued")
    browser.script("window.__notReloaded = true;")

    # A worker instance picks it up: the page shows it succeeded, by its own refresh.
    with DevhostProcess(ROOT, free_port(), env=app.env, args=["--no-timers"], log_path=queued.logs / "worker.log") as worker:
        browser.wait_text(".run-details .facts .badge", "succeeded", timeout=60)
    assert worker.returncode == 0, worker.log_tail()
    assert browser.script("return window.__notReloaded === true;")
    browser.wait(lambda: browser.find_all("main p.count")[0].get_attribute("textContent") == "", what="the refresh note to go")
    assert json.loads(browser.text(".run-details pre.json[aria-label='Run output']")) == {"order": 12}
    assert [s.text.split("\n")[0] for s in browser.find_all(".timeline li")] == ["return"]
    assert app.wait_for_run(sid, run_id, timeout=0)["status"] == "succeeded"
    problems = browser.problems()  # no console error and no CSP violation on the way
    assert problems == [], "the browser reported problems:\n" + "\n".join(problems)
