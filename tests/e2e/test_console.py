"""The console (docs/console.md) in a real headless Chromium, against the app on devhost and Azurite.

One browser session and one devhost serve the whole module; the tests run in order as a person
would use the console (sign in, create a scenario, try it, read its run and cache, tokens, APIs),
each leaving what the next one reads. After every test the browser must have logged no console
error and no Content-Security-Policy violation (``Browser.problems``), and each page is
screenshotted at 1280x800 and phone width (build/test-artifacts/console/) and checked with axe-core.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devhost.azurite import Azurite
from tests.e2e.conftest import Junction, serve_junction
from tests.support.browser import Browser, require_chromium, serious
from tests.support.upstream import Upstream

SCENARIO_NAME = "Orders from the shop"
PETS = """openapi: 3.0.3
info: {title: Pets, version: '1'}
servers: [{url: /shop}]
paths:
  /pet/{id}:
    get:
      operationId: getPetById
      summary: One pet
      parameters: [{name: id, in: path, required: true, schema: {type: integer}}]
      responses: {'200': {description: ok}}
  /pet/getStatus:
    get:
      operationId: getStatus
      responses: {'200': {description: ok}}
"""
# Another document with an operation that could take the same requests as /shop/pet/{id}:
# binding it while that one is bound is refused (409 naming both).
CLASHING = """openapi: 3.0.3
info: {title: Clash, version: '1'}
servers: [{url: /shop}]
paths:
  /pet/{petId}:
    get:
      operationId: findPet
      parameters: [{name: petId, in: path, required: true, schema: {type: integer}}]
      responses: {'200': {description: ok}}
"""


class Session:
    """What the tests of this module share: the app, the browser, and what earlier tests made."""

    def __init__(self, app: Junction, browser: Browser, upstream: Upstream) -> None:
        self.app = app
        self.browser = browser
        self.upstream = upstream  # http steps and sources call it; its /gate holds a run while a test looks
        self.scenario_id = ""
        self.pet_id = ""  # the scenario the API tests bind operations to
        self.held_id = ""  # a scenario whose runs wait for the gate
        self.pages: dict[str, str] = {}  # screenshot name -> path, for the accessibility test


@pytest.fixture(scope="module")
def console(azurite: Azurite, upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    require_chromium()
    env = {"JUNCTION_OUTBOUND_ALLOWED_HOSTS": upstream.host, "JUNCTION_SECRET_CONSOLE_HOOK": "console-hook-secret"}
    # The test plays App Service's front end for one call (X-Forwarded-Proto: https, an
    # HTTPS-only binding); the browser never sends such headers.
    front_end = ("--trust-forwarded-client-cert",)
    with serve_junction(azurite, "console", tmp_path_factory.mktemp("devhost-console"), extra_env=env, args=front_end) as app:
        browser = Browser(app.url)
        try:
            yield Session(app, browser, upstream)
        finally:
            browser.close()
            upstream.release()  # no run may be left waiting when devhost drains


@pytest.fixture(autouse=True)
def no_browser_problems(console: Session) -> Iterator[None]:
    """Every test ends with a browser that logged no console error and no CSP violation."""
    console.browser.problems()  # whatever an earlier failure left behind is that test's
    yield
    problems = console.browser.problems()
    assert problems == [], "the browser reported problems:\n" + "\n".join(problems)


def visit(console: Session, path: str, ready: str, name: str | None = None) -> None:
    """Open a page, wait until ``ready`` shows, and remember it for the screenshots and axe."""
    console.browser.open(path)
    console.browser.find(ready)
    if name:
        console.pages[name] = path
        console.browser.shoot(name)


def sign_in(console: Session) -> None:
    browser = console.browser
    browser.open("/")
    browser.fill("input[name=token]", console.app.admin_token)
    browser.click("form button[type=submit]")
    browser.find("table.scenarios")


# ------------------------------------------------------------------------------------------------
# Serving
# ------------------------------------------------------------------------------------------------


def test_the_root_redirects_to_the_console_which_is_served_with_its_security_headers(console: Session) -> None:
    with httpx.Client(base_url=console.app.url) as http:
        root = http.get("/")
        assert root.status_code == 302 and root.headers["location"] == "/console/"
        page = http.get("/console/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        for directive in ("default-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "script-src 'self'", "style-src 'self'"):
            assert directive in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp  # no other origin
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["cache-control"] == "no-cache"
        assets = re.findall(r'(?:src|href)="(/console/assets/[0-9a-f]{16}/[^"]+)"', page.text)
        assert any(a.endswith("/app.js") for a in assets) and any(a.endswith("/console.css") for a in assets)
        for asset in assets:
            answer = http.get(asset)
            assert answer.status_code == 200, asset
            assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert answer.headers["x-content-type-options"] == "nosniff"
        assert http.get(assets[0].replace(assets[0].split("/")[3], "0" * 16)).status_code == 404  # another version
        deep = http.get("/console/scenarios/00000000-0000-0000-0000-000000000000/runs")
        assert deep.status_code == 200 and deep.text == page.text  # every page has its own URL


# ------------------------------------------------------------------------------------------------
# Signing in with a personal access token
# ------------------------------------------------------------------------------------------------


def test_a_wrong_token_is_refused_with_the_apis_code_and_message(console: Session) -> None:
    browser = console.browser
    browser.open("/console/scenarios")
    assert browser.wait(lambda: browser.path().startswith("/console/signin?next="), what="the sign-in page")
    browser.find("input[name=token]")
    console.pages["sign-in"] = "/console/signin"
    browser.shoot("sign-in")
    with browser.expect_api_error("/management/scenarios", 401):
        browser.fill("input[name=token]", "jct_" + "0" * 32 + "x" * 43)
        browser.click("form button[type=submit]")
        message = browser.text(".error")
    assert "InvalidToken (HTTP 401): the personal access token is not valid or was revoked" in message
    assert browser.script("return sessionStorage.length;") == 0


def test_sign_in_keeps_the_token_in_session_storage_only_and_sign_out_clears_it(console: Session) -> None:
    browser = console.browser
    sign_in(console)
    token = console.app.admin_token
    assert browser.script("return sessionStorage.getItem('junction.token');") == token
    assert browser.script("return localStorage.length;") == 0
    assert browser.script("return document.cookie;") == ""
    assert token not in browser.driver.current_url
    browser.click("#sign-out")
    browser.find("input[name=token]")
    assert browser.script("return sessionStorage.length;") == 0
    # After signing in, the page asked for is shown; a "next" outside the console is ignored.
    browser.open("/console/tokens")
    assert browser.wait(lambda: browser.path() == "/console/signin?next=%2Fconsole%2Ftokens", what="the sign-in page")
    browser.fill("input[name=token]", token)
    browser.click("form button[type=submit]")
    assert browser.wait(lambda: browser.path() == "/console/tokens", what="the tokens page")
    browser.click("#sign-out")
    browser.open("/console/signin?next=//evil.example/x")
    browser.fill("input[name=token]", token)
    browser.click("form button[type=submit]")
    assert browser.wait(lambda: browser.path() == "/console/scenarios", what="the scenarios page")
    browser.click("#sign-out")
    browser.find("input[name=token]")
    sign_in(console)
    visit(console, "/console/scenarios", "table.scenarios", "scenarios-empty")


# ------------------------------------------------------------------------------------------------
# Scenarios
# ------------------------------------------------------------------------------------------------


def test_create_a_scenario_with_external_triggers_and_copy_its_url(console: Session) -> None:
    browser = console.browser
    browser.open("/console/scenarios")
    browser.click("a[href='/console/scenarios/new']")
    browser.find("textarea[name=process]")
    browser.fill("input[name=name]", SCENARIO_NAME)
    browser.click("input[name=enabled]")
    browser.fill("input[name=schedule]", "0 0 6 * * 1")
    due = browser.wait(lambda: browser.find_all(".due-list li"), what="the next due times")
    assert len(due) == 5 and all("06:00:00 UTC" in li.text for li in due)
    browser.shoot("scenario-new")
    browser.click("form.editor-form button[type=submit]")
    copy_field = browser.find(".trigger-urls")
    scenario_id = browser.path().rsplit("/", 1)[1]
    console.scenario_id = scenario_id
    assert "Scenario created." in browser.text(".notice.ok")
    get_url = browser.find(".trigger-urls input.copy-value").get_attribute("value")
    assert get_url == f"{console.app.url}/ExternalData/Accept/{scenario_id}"
    assert f"/ExternalData/GetCacheData/{scenario_id}?keyJson=" in copy_field.text or browser.find_all(".trigger-urls .copy-value")[2].get_attribute("value").endswith("keyJson=")
    curl = browser.find_all(".trigger-urls .copy-value")[1].get_attribute("value")
    assert curl.startswith("curl -i -X POST -H \"Authorization: Bearer $JUNCTION_TOKEN\"") and get_url in curl
    browser.click(".trigger-urls button.copy")
    browser.wait_text(".trigger-urls .copied", "Copied")
    assert browser.clipboard() == get_url
    console.pages["scenario-edit"] = f"/console/scenarios/{scenario_id}"
    browser.shoot("scenario-edit")

    with console.app.admin() as admin:
        stored = admin.get(f"/management/scenarios/{scenario_id}").json()
    assert stored["name"] == SCENARIO_NAME and stored["externalTriggers"] == {"enabled": True, "allowAnonymous": False}
    assert stored["schedule"] == "0 0 6 * * 1"

    visit(console, "/console/scenarios", f"tr[data-scenario='{scenario_id}']")
    row = browser.find(f"tr[data-scenario='{scenario_id}']")
    assert SCENARIO_NAME in row.text and "yes" in row.text and "0 0 6 * * 1" in row.text
    browser.wait_text(f"tr[data-scenario='{scenario_id}'] td[data-label='Last run']", "never run")
    browser.fill("input[name=q]", "no such scenario")
    browser.wait_text(".count", "0 of")
    assert browser.path().endswith("?q=no+such+scenario")


def test_send_a_test_request_and_watch_the_run_succeed(console: Session) -> None:
    browser = console.browser
    sid = console.scenario_id
    browser.open(f"/console/scenarios/{sid}")
    browser.click_text("nav.tabs a", "Try it")
    browser.find("textarea[name=body]")
    browser.fill("textarea[name=body]", '{"orderId": 7, "items": ["tea"]}')
    browser.click("form button[type=submit]")
    browser.wait_text(".run-details .badge", "succeeded", timeout=60)
    run_link = browser.find(".try-result a[href*='/runs/']")
    run_id = run_link.text
    output = json.loads(browser.text(".run-details pre.json"))
    assert output == {"stored": {"orderId": 7, "items": ["tea"]}}
    console.pages["try"] = f"/console/scenarios/{sid}/try"
    browser.shoot("try-succeeded")

    run = console.app.wait_for_run(sid, run_id)
    assert run["status"] == "succeeded" and run["trigger"]["contentType"] == "application/json"

    run_link.click()
    browser.wait_text(".run-details", "Steps")
    steps = browser.find_all(".timeline li")
    assert [s.text.split("\n")[:2] for s in steps] == [["received", "transform · steps[0]"], ["cache", "steps[1]"], ["return", "steps[2]"]]
    assert all("succeeded" in s.text for s in steps)
    assert "accept · POST · application/json" in browser.text(".run-details .facts")
    console.pages["run"] = f"/console/scenarios/{sid}/runs/{run_id}"
    browser.shoot("run")

    browser.click("a[href$='/runs']")
    row = browser.find("table.cards tbody tr")
    assert run_id in row.text and "succeeded" in row.text
    console.pages["runs"] = f"/console/scenarios/{sid}/runs"
    browser.shoot("runs")


def _echo_scenario(console: Session) -> str:
    """A scenario whose output is its input as the process sees it (data[0].Body)."""
    with console.app.admin() as admin:
        made = admin.post("/management/scenarios", json={"name": "Echo", "externalTriggers": {"enabled": True},
                                                         "process": {"steps": [{"type": "return", "value": "#data[0].Body"}]}})  # fmt: skip
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _try(console: Session, scenario_id: str, kind: str, body: str) -> tuple[str, Any]:
    """Send ``body`` as ``kind`` from the Try it page; the run's id and its output as shown."""
    browser = console.browser
    browser.open(f"/console/scenarios/{scenario_id}/try")
    browser.choose("select[name=bodyType]", kind)
    browser.fill("textarea[name=body]", body)
    browser.click("form button[type=submit]")
    browser.find(".run-details .badge, .try-result .error", timeout=60)
    assert not browser.find_all(".try-result .error"), browser.text(".try-result")
    browser.wait_text(".run-details .badge", "succeeded")
    run_id = browser.find(".try-result a[href*='/runs/']").text
    return run_id, json.loads(browser.text(".run-details pre.json[aria-label='Run output']"))


def test_try_it_with_an_xml_body_gives_the_process_an_object(console: Session) -> None:
    browser = console.browser
    echo = _echo_scenario(console)
    browser.open(f"/console/scenarios/{echo}/try")
    browser.choose("select[name=bodyType]", "xml")
    assert browser.find("textarea[name=body]").get_attribute("value").startswith("<order>")  # the example follows the type
    xml = '<order id="7"><item>tea</item><item>cake</item><customer>Zoë</customer></order>'
    run_id, shown = _try(console, echo, "xml", xml)
    expected = {"order": {"@id": "7", "item": ["tea", "cake"], "customer": "Zoë"}}
    assert shown == expected
    run = console.app.wait_for_run(echo, run_id)
    assert run["output"] == expected and run["trigger"]["contentType"] == "application/xml"
    assert "accept · POST · application/xml" in browser.text(".run-details .facts")
    browser.shoot("try-xml")


def test_try_it_with_a_form_body_gives_the_process_its_fields(console: Session) -> None:
    """A form typed as a person would (a space, an accented letter, a field twice) reaches the
    process as its fields: the console encodes the form as a browser submits one."""
    browser = console.browser
    echo = _echo_scenario(console)
    browser.open(f"/console/scenarios/{echo}/try")
    browser.choose("select[name=bodyType]", "form")
    assert browser.find("textarea[name=body]").get_attribute("value") == "orderId=42&customer=Contoso"
    run_id, shown = _try(console, echo, "form", "orderId=42&item=tea&item=cake&customer=Zoë Café&note=50%25+off")
    expected = {"orderId": "42", "item": ["tea", "cake"], "customer": "Zoë Café", "note": "50% off"}
    assert shown == expected
    run = console.app.wait_for_run(echo, run_id)
    assert run["output"] == expected and run["trigger"]["contentType"] == "application/x-www-form-urlencoded"


def _held_scenario(console: Session) -> str:
    """A scenario that answers early (intermediateReturn), then waits at an http step for the gate."""
    with console.app.admin() as admin:
        made = admin.post("/management/scenarios", json={"name": "Waits for the ERP", "externalTriggers": {"enabled": True}, "process": {"steps": [
            {"type": "transform", "id": "order", "expression": "data[0].Body"},
            {"type": "intermediateReturn", "value": {"jmespath": "{accepted: steps.order.orderId}"}},
            {"type": "http", "id": "erp", "method": "GET", "url": f"{console.upstream.url}/gate", "timeout": 120, "retries": 0},
            {"type": "return", "value": {"jmespath": "{order: steps.order.orderId, erp: steps.erp.body.released}"}},
        ]}})  # fmt: skip
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _mark_page(console: Session) -> None:
    """Mark the page's window: a refresh that keeps the mark happened in the page, not by reloading it."""
    console.browser.script("window.__notReloaded = true;")


def _not_reloaded(console: Session) -> bool:
    return bool(console.browser.script("return window.__notReloaded === true;"))


def test_try_it_shows_its_progress_until_the_run_ends_then_the_intermediate_value(console: Session) -> None:
    browser, upstream = console.browser, console.upstream
    held = _held_scenario(console)
    console.held_id = held
    browser.open(f"/console/scenarios/{held}/try")
    browser.fill("textarea[name=body]", '{"orderId": 9}')
    upstream.hold()
    browser.click("form button[type=submit]")
    assert browser.wait(upstream.arrived.is_set, 60, "the run to reach its http step")
    line = browser.find(".try-result .progress")
    browser.wait_text(".try-result .progress", "The run is running…")
    assert line.find_element("css selector", "progress").get_attribute("aria-label") == "The run is running…"
    browser.wait_text(".try-result .run-state .badge", "running")
    assert browser.find("form button[type=submit]").get_attribute("disabled") is not None  # no second send meanwhile
    browser.shoot("try-running")
    upstream.release()
    browser.wait_text(".run-details .badge", "succeeded", timeout=60)
    assert browser.find_all(".try-result .progress") == [] and browser.find_all(".try-result .run-state") == []
    assert browser.find("form button[type=submit]").get_attribute("disabled") is None
    assert json.loads(browser.text(".run-details pre.json[aria-label='Run output']")) == {"order": 9, "erp": True}
    assert json.loads(browser.text(".run-details pre.json[aria-label='Intermediate value']")) == {"accepted": 9}
    assert "Intermediate value" in browser.text(".run-details")


def test_the_run_page_refreshes_while_the_run_is_running_until_it_ends(console: Session) -> None:
    browser, upstream = console.browser, console.upstream
    held = console.held_id
    upstream.hold()
    with console.app.admin() as admin:
        run_id = admin.post(f"/ExternalData/Accept/{held}", json={"orderId": 10}).headers["x-run-id"]
    browser.open(f"/console/scenarios/{held}/runs/{run_id}")
    browser.find(".run-details")
    _mark_page(console)
    assert browser.wait(upstream.arrived.is_set, 60, "the run to reach its http step")
    browser.wait_text(".run-details .facts .badge", "running")  # shown by a refresh if the page opened on "queued"
    assert "this page refreshes every second" in browser.text("main p.count")
    assert browser.text(".run-details .steps-pending") == "Running: its steps are shown when it ends."
    browser.shoot("run-running")
    upstream.release()
    browser.wait_text(".run-details .facts .badge", "succeeded", timeout=60)
    assert _not_reloaded(console)
    browser.wait(lambda: browser.find_all("main p.count")[0].get_attribute("textContent") == "", what="the refresh note to go")
    assert json.loads(browser.text(".run-details pre.json[aria-label='Intermediate value']")) == {"accepted": 10}
    assert json.loads(browser.text(".run-details pre.json[aria-label='Run output']")) == {"order": 10, "erp": True}
    assert [s.text.split("\n")[0] for s in browser.find_all(".timeline li")] == ["order", "intermediateReturn", "erp", "return"]
    console.pages["run-intermediate"] = f"/console/scenarios/{held}/runs/{run_id}"


def test_the_runs_list_refreshes_while_a_run_is_running_until_it_ends(console: Session) -> None:
    browser, upstream = console.browser, console.upstream
    held = console.held_id
    upstream.hold()
    with console.app.admin() as admin:
        run_id = admin.post(f"/ExternalData/Accept/{held}", json={"orderId": 11}).headers["x-run-id"]
    browser.open(f"/console/scenarios/{held}/runs")
    row = "table.cards tbody tr:first-child"
    browser.wait_text(row, run_id)
    _mark_page(console)
    assert browser.wait(upstream.arrived.is_set, 60, "the run to reach its http step")
    browser.wait_text(f"{row} td[data-label='Status']", "running")
    browser.wait_text("main p.count", "Some runs are still going")
    upstream.release()
    browser.wait_text(f"{row} td[data-label='Status']", "succeeded", timeout=60)
    assert run_id in browser.text(row) and _not_reloaded(console)
    browser.wait(lambda: browser.find_all("main p.count")[0].get_attribute("textContent") == "", what="the refresh note to go")
    statuses = [r.find_element("css selector", "td[data-label='Status']").text for r in browser.find_all("table.cards tbody tr")]
    assert statuses == ["succeeded"] * 3


def test_runs_are_listed_newest_first_a_page_at_a_time(console: Session) -> None:
    browser = console.browser
    with console.app.admin() as admin:
        busy = admin.post("/management/scenarios", json={"name": "Busy", "externalTriggers": {"enabled": True},
                                                         "process": {"steps": [{"type": "return", "value": "#data[0].Body"}]}}).json()  # fmt: skip
        started = [admin.post(f"/ExternalData/Accept/{busy['id']}", json={"n": n}).headers["x-run-id"] for n in range(21)]
    rows = "table.cards tbody tr"
    browser.open(f"/console/scenarios/{busy['id']}/runs")
    browser.wait(lambda: len(browser.find_all(rows)) == 20, what="a page of 20 runs")
    assert [row.find_element("css selector", "th").text for row in browser.find_all(rows)] == started[:0:-1]  # newest first
    browser.click_text("a.button", "Older runs")
    browser.wait(lambda: "skiptoken=" in browser.path() and len(browser.find_all(rows)) == 1, what="the older page")
    assert browser.find_all(rows)[0].find_element("css selector", "th").text == started[0]
    browser.click_text("a.button", "Newest runs")
    browser.wait(lambda: len(browser.find_all(rows)) == 20, what="the first page again")


def test_a_failing_run_shows_its_step_and_error(console: Session) -> None:
    browser = console.browser
    with console.app.admin() as admin:
        failing = admin.post("/management/scenarios", json={
            "name": "Refuses orders", "externalTriggers": {"enabled": True},
            "process": {"steps": [{"type": "transform", "id": "order", "expression": "data[0].Body"},
                                  {"type": "throw", "message": "no orders today"}]},
        }).json()  # fmt: skip
    browser.open(f"/console/scenarios/{failing['id']}/try")
    browser.click("form button[type=submit]")
    browser.wait_text(".run-details .badge", "failed", timeout=60)
    assert "no orders today" in browser.text(".run-details .run-error")
    failed_step = browser.find_all(".timeline li")[-1]
    assert "failed" in failed_step.text and "no orders today" in failed_step.text


def test_read_the_cached_value_then_delete_it(console: Session) -> None:
    browser = console.browser
    sid = console.scenario_id
    browser.open(f"/console/scenarios/{sid}")
    browser.click_text("nav.tabs a", "Cache")
    browser.fill("input[name=key]", '"last"')
    browser.click("form button[type=submit]")
    value = json.loads(browser.text("pre.json"))
    assert value == {"orderId": 7, "items": ["tea"]}
    assert browser.path() == f"/console/scenarios/{sid}/cache?key=%22last%22"  # bookmarkable
    console.pages["cache"] = browser.path()
    browser.shoot("cache")
    browser.click_text("button.danger", "Delete")
    browser.click_text("button.danger", "Yes, delete")
    browser.wait_text(".notice.ok", 'Deleted the entry under "last"')
    with console.app.admin() as admin:
        assert admin.get(f"/ExternalData/GetCacheData/{sid}", params={"keyJson": '"last"'}).status_code == 404
    with browser.expect_api_error("/ExternalData/GetCacheData/", 404):
        browser.click("form button[type=submit]")
        assert "CacheEntryNotFound (HTTP 404)" in browser.text(".error")


def test_a_validation_error_is_shown_at_the_step_it_names(console: Session) -> None:
    browser = console.browser
    sid = console.scenario_id
    browser.open(f"/console/scenarios/{sid}")
    process = {"steps": [
        {"type": "transform", "id": "order", "expression": "data[0].Body"},
        {"type": "decision", "if": "steps.order.total > `10`",
         "then": [{"type": "cache", "key": "big", "value": "#steps.nothing"}]},
    ]}  # fmt: skip
    browser.fill("textarea[name=process]", json.dumps(process, indent=2))
    browser.wait_text(".outline", "decision")
    with browser.expect_api_error(f"/management/scenarios/{sid}", 400):
        browser.click("form.editor-form button[type=submit]")
        step = browser.find(".outline li.has-error")
    assert step.get_attribute("data-step") == '["steps",1,"then",0]'
    assert "'#steps.nothing' names no earlier step" in step.text
    assert "At step steps[1].then[0] (line" in browser.text(".editor-status .error")
    selected = browser.script("const t = document.querySelector('textarea[name=process]'); return t.value.slice(t.selectionStart, t.selectionEnd);")
    assert json.loads(selected) == process["steps"][1]["then"][0]  # the editor selects the step
    assert browser.find("textarea[name=process]").get_attribute("aria-invalid") == "true"
    browser.shoot("scenario-validation-error", scroll_top=False)
    assert browser.find_all(".outline li.has-error"), "the error left its step"
    with console.app.admin() as admin:
        assert admin.get(f"/management/scenarios/{sid}").json()["process"]["steps"][0]["id"] == "received"  # nothing saved


def test_an_etag_conflict_says_the_scenario_changed_and_offers_to_reload(console: Session) -> None:
    browser = console.browser
    sid = console.scenario_id
    browser.open(f"/console/scenarios/{sid}")
    browser.find("textarea[name=process]")
    with console.app.admin() as admin:
        changed = admin.patch(f"/management/scenarios/{sid}", json={"description": "changed by a colleague"},
                              headers={"Content-Type": "application/merge-patch+json"})  # fmt: skip
        assert changed.status_code == 200, changed.text
    browser.fill("input[name=name]", "My edit")
    with browser.expect_api_error(f"/management/scenarios/{sid}", 412):
        browser.click("form.editor-form button[type=submit]")
        conflict = browser.find(".conflict-error")
    assert "(HTTP 412)" in conflict.text and "changed meanwhile" in conflict.text
    browser.shoot("scenario-conflict", scroll_top=False)
    browser.click_text(".conflict-error button", "Reload the scenario")
    browser.wait_text(".notice.ok", "Reloaded")
    assert browser.find("textarea[name=description]").get_attribute("value") == "changed by a colleague"
    assert browser.find("input[name=name]").get_attribute("value") == SCENARIO_NAME
    browser.fill("input[name=name]", f"{SCENARIO_NAME} (edited)")
    browser.click("form.editor-form button[type=submit]")
    browser.wait_text(".notice.ok", "Saved at")
    with console.app.admin() as admin:
        assert admin.get(f"/management/scenarios/{sid}").json()["name"] == f"{SCENARIO_NAME} (edited)"


def test_a_slow_save_shows_that_it_is_working_until_it_is_done(console: Session) -> None:
    """On a slow network (every request 1.5 s late) saving takes long: the button says it is busy
    and a progress line appears, and both go when the save is done."""
    browser = console.browser
    sid = console.scenario_id
    browser.open(f"/console/scenarios/{sid}")
    browser.fill("textarea[name=description]", "saved on a slow network")
    save = "form.editor-form button[type=submit]"
    with browser.slow_network(1500):
        browser.click(save)
        line = browser.find(".sticky-actions .progress")
        assert "Working…" in line.text and line.get_attribute("role") == "status"
        assert browser.find(save).get_attribute("aria-busy") == "true" and browser.find(save).get_attribute("disabled") is not None
        browser.shoot("scenario-saving", scroll_top=False)
        browser.wait_text(".notice.ok", "Saved at")
    assert browser.find_all(".sticky-actions .progress") == []
    assert browser.find(save).get_attribute("aria-busy") is None and browser.find(save).get_attribute("disabled") is None
    with console.app.admin() as admin:
        assert admin.get(f"/management/scenarios/{sid}").json()["description"] == "saved on a slow network"


def test_anonymous_triggers_and_a_source_are_saved_and_the_urls_go_when_triggers_are_off(console: Session) -> None:
    browser, upstream = console.browser, console.upstream
    browser.open("/console/scenarios/new")
    browser.fill("input[name=name]", "Polls the shop")
    assert browser.find("input[name=allowAnonymous]").get_attribute("disabled") is not None  # only with triggers enabled
    browser.click("input[name=enabled]")
    browser.click("input[name=allowAnonymous]")
    browser.choose("select[name=sourceMethod]", "POST")
    browser.fill("input[name=sourceUrl]", f"{upstream.url}/echo-request")
    browser.fill("textarea[name=sourceHeaders]", '{"X-Shop": "north"}')
    browser.click("form.editor-form button[type=submit]")
    browser.find(".trigger-urls")
    sid = browser.path().rsplit("/", 1)[1]
    assert "Anyone with these URLs can call them." in browser.text(".trigger-urls")
    curl = browser.find_all(".trigger-urls .copy-value")[1].get_attribute("value")
    assert "Authorization" not in curl  # an anonymous caller sends no token
    with console.app.admin() as admin:
        stored = admin.get(f"/management/scenarios/{sid}").json()
    assert stored["externalTriggers"] == {"enabled": True, "allowAnonymous": True}
    assert stored["source"] == {"type": "http", "method": "POST", "url": f"{upstream.url}/echo-request", "headers": {"X-Shop": "north"}}

    # What the form saved works: a caller with no token starts a run, which polls the source.
    answer = httpx.get(f"{console.app.url}/ExternalData/Accept/{sid}")
    assert answer.status_code == 200, answer.text
    run = console.app.wait_for_run(sid, answer.headers["x-run-id"])
    assert run["status"] == "succeeded" and run["output"]["stored"]["method"] == "POST" and run["output"]["stored"]["headers"]["x-shop"] == "north"

    # The page shows what is stored; the list says anonymous and the last run.
    browser.open(f"/console/scenarios/{sid}")
    browser.find(".trigger-urls")
    assert browser.find("input[name=allowAnonymous]").is_selected() and browser.find("input[name=enabled]").is_selected()
    assert browser.find("select[name=sourceMethod]").get_attribute("value") == "POST"
    assert json.loads(browser.find("textarea[name=sourceHeaders]").get_attribute("value")) == {"X-Shop": "north"}
    browser.open("/console/scenarios")
    row = f"tr[data-scenario='{sid}']"
    browser.wait_text(f"{row} td[data-label='Last run']", "succeeded")
    assert [c.text for c in browser.find_all(f"{row} td")[:2]] == ["yes", "yes"]
    assert browser.find(f"{row} td[data-label='Last run'] a").get_attribute("href").endswith(f"/runs/{run['id']}")

    # Try it offers to call as an anonymous caller; with no body the run polls the source.
    browser.open(f"/console/scenarios/{sid}/try")
    browser.click("input[name=anonymous]")
    browser.choose("select[name=bodyType]", "none")
    assert not browser.find_all("textarea[name=body]")[0].is_displayed()
    browser.click("form button[type=submit]")
    browser.wait_text(".run-details .badge", "succeeded", timeout=60)
    tried = console.app.wait_for_run(sid, browser.find(".try-result a[href*='/runs/']").text)
    assert tried["trigger"]["method"] == "GET" and tried["trigger"]["caller"]["kind"] == "anonymous", tried["trigger"]
    assert tried["output"]["stored"]["headers"]["x-shop"] == "north"

    # Triggers off: the anonymous box is cleared with it, the URLs go, and callers are refused.
    browser.open(f"/console/scenarios/{sid}")
    browser.click("input[name=enabled]")
    assert not browser.find("input[name=allowAnonymous]").is_selected()
    browser.click("form.editor-form button[type=submit]")
    browser.wait_text(".notice.ok", "Saved at")
    browser.wait_text("fieldset", "Enable external triggers and save to get the trigger URLs.")
    assert browser.find_all(".trigger-urls") == []
    with console.app.admin() as admin:
        stored = admin.get(f"/management/scenarios/{sid}").json()
    assert stored["externalTriggers"] == {"enabled": False, "allowAnonymous": False} and stored["source"]["method"] == "POST"
    assert httpx.get(f"{console.app.url}/ExternalData/Accept/{sid}").status_code in (401, 403)


def test_the_scenarios_list_shows_each_scenarios_last_run(console: Session) -> None:
    browser = console.browser
    with console.app.admin() as admin:
        listing = admin.get("/management/scenarios?top=1000").json()["value"]
        last = {s["name"]: (s["id"], admin.get(f"/management/scenarios/{s['id']}/runs?top=1").json()["value"]) for s in listing}
    browser.open("/console/scenarios")
    for name, status in ((f"{SCENARIO_NAME} (edited)", "succeeded"), ("Refuses orders", "failed")):
        sid, (run,) = last[name]
        cell = f"tr[data-scenario='{sid}'] td[data-label='Last run']"
        browser.wait_text(cell, status)
        assert browser.find(f"{cell} a").get_attribute("href") == f"{console.app.url}/console/scenarios/{sid}/runs/{run['id']}"
    browser.click(f"tr[data-scenario='{last['Refuses orders'][0]}'] td[data-label='Last run'] a")
    browser.wait_text(".run-details .run-error", "no orders today")


def test_saving_in_the_console_keeps_what_its_form_does_not_show(console: Session) -> None:
    """An address allow-list and a rate limit set through the API survive an edit in the console."""
    browser = console.browser
    signature = {"scheme": "github", "secret": {"secret": "JUNCTION_SECRET_CONSOLE_HOOK"}}
    triggers = {"enabled": True, "allowAnonymous": False, "ipAllowList": ["127.0.0.1", "::1"], "rateLimit": {"requestsPerMinute": 600, "burst": 50}, "signature": signature}
    with console.app.admin() as admin:
        made = admin.post("/management/scenarios", json={"name": "Guarded", "externalTriggers": triggers, "process": {"steps": []}})
    assert made.status_code == 201, made.text
    sid = made.json()["id"]
    browser.open(f"/console/scenarios/{sid}")
    kept = browser.text(".kept-settings")
    assert "callers only from 127.0.0.1" in kept and "at most 600 requests a minute (bursts of 50)" in kept
    assert "requests signed (github, X-Hub-Signature-256)" in kept
    browser.fill("input[name=name]", "Guarded (renamed)")
    browser.click("form.editor-form button[type=submit]")
    browser.wait_text(".notice.ok", "Saved at")
    with console.app.admin() as admin:
        stored = admin.get(f"/management/scenarios/{sid}").json()
    assert stored["name"] == "Guarded (renamed)"
    assert stored["externalTriggers"]["ipAllowList"] == made.json()["externalTriggers"]["ipAllowList"]
    assert stored["externalTriggers"]["rateLimit"] == made.json()["externalTriggers"]["rateLimit"]
    assert stored["externalTriggers"]["signature"] == made.json()["externalTriggers"]["signature"]


def test_the_bind_form_keeps_a_signature_and_respond_async(console: Session) -> None:
    """A binding's signature and ``respond`` are set through the API; saving the form keeps them."""
    browser = console.browser
    document = "openapi: 3.0.3\ninfo: {title: Hooked, version: '1'}\npaths:\n  /hooked:\n    post:\n      operationId: hooked\n      responses: {'202': {description: ok}}\n"
    target = console.app.create_scenario(name="Hooked")
    binding = {"scenarioId": target["id"], "respond": "async", "signature": {"scheme": "stripe", "secret": {"secret": "JUNCTION_SECRET_CONSOLE_HOOK"}}}
    with console.app.admin() as admin:
        assert admin.put("/management/apis/hooked", content=document, headers={"Content-Type": "application/yaml"}).status_code in (200, 201)
        made = admin.put("/management/apis/hooked/operations/hooked", json=binding)
    assert made.status_code == 200, made.text
    browser.open("/console/apis/hooked/operations/hooked")
    kept = browser.text(".kept-settings")
    assert "requests signed (stripe, Stripe-Signature)" in kept and "respond async" in kept
    browser.click("form button[type=submit]")
    browser.wait_text(".notice.ok", "Bound hooked")
    stored = _binding(console, "hooked", "hooked")
    assert stored["respond"] == "async" and stored["signature"] == made.json()["binding"]["signature"]
    with console.app.admin() as admin:  # the APIs page's tests count the APIs: leave none behind
        assert admin.delete("/management/apis/hooked").status_code == 204
        assert admin.delete(f"/management/scenarios/{target['id']}").status_code == 204


# ------------------------------------------------------------------------------------------------
# Tokens
# ------------------------------------------------------------------------------------------------


def test_create_a_token_shown_once_then_revoke_it(console: Session) -> None:
    browser = console.browser
    sid = console.scenario_id
    browser.open("/console/scenarios")
    browser.click_text("#nav a", "Tokens")
    browser.fill("input[name=name]", "shop checkout")
    browser.script("const s = document.querySelector('select[name=scenarioIds]'); for (const o of s.options) o.selected = o.value === arguments[0];", sid)
    browser.fill("input[name=expiresInDays]", "30")
    browser.click("form button[type=submit]")
    token = browser.find(".new-token input.copy-value").get_attribute("value")
    assert token.startswith("jct_")
    browser.click(".new-token button.copy")
    browser.wait_text(".new-token .copied", "Copied")
    assert browser.clipboard() == token
    console.pages["tokens"] = "/console/tokens"
    browser.shoot("tokens")
    row = browser.wait(lambda: [r for r in browser.find_all("tr[data-token]") if "shop checkout" in r.text], what="the new token's row")[0]
    assert "trigger" in row.text and SCENARIO_NAME in row.text
    with console.app.client(token) as caller:
        assert caller.post(f"/ExternalData/Accept/{sid}", json={"from": "checkout"}).status_code == 200

    browser.open("/console/tokens")
    browser.find("tr[data-token]")
    token_id = token[4:36]
    browser.click(f"tr[data-token='{token_id}'] button.danger")
    browser.click(f"tr[data-token='{token_id}'] button.danger")  # "Yes, revoke"
    browser.wait_text(".notice.ok", "Revoked “shop checkout”")
    browser.wait(lambda: not browser.find_all(f"tr[data-token='{token_id}']"), what="the row to go")
    with console.app.client(token) as caller:
        assert caller.post(f"/ExternalData/Accept/{sid}", json={}).status_code == 401
    assert token not in browser.script("return document.body.innerText;")  # shown once


# ------------------------------------------------------------------------------------------------
# APIs, API keys and users
# ------------------------------------------------------------------------------------------------


def test_import_a_document_bind_an_operation_and_call_it(console: Session, tmp_path: Path) -> None:
    browser = console.browser
    sid = console.scenario_id
    with console.app.admin() as admin:
        pet = admin.post("/management/scenarios", json={"name": "Pet lookup", "process": {"steps": [
            {"type": "return", "value": {"jmespath": "{id: trigger.data.path.id}"}}]}}).json()  # fmt: skip
    browser.open("/console/scenarios")
    browser.click_text("#nav a", "APIs")
    document = tmp_path / "pets.yaml"
    document.write_text(PETS)
    browser.find("input[type=file]").send_keys(str(document))  # upload; the name comes from the file
    browser.wait(lambda: browser.find("input[name=apiName]").get_attribute("value") == "pets", what="the name from the file")
    assert browser.find("textarea[name=document]").get_attribute("value") == PETS
    browser.click("form button[type=submit]")
    browser.wait_text(".notice.ok", "Imported “pets”: 2 operation(s).")
    rows = browser.find_all("tr[data-operation]")
    assert [r.find_element("css selector", "td[data-label='Method and path']").text for r in rows] == ["GET /shop/pet/{id}", "GET /shop/pet/getStatus"]
    console.pages["api"] = "/console/apis/pets"
    browser.click("tr[data-operation='getPetById'] a.button")
    browser.find("select[name=scenarioId]")
    assert browser.find(".copy-value").get_attribute("value") == f"{console.app.url}/shop/pet/{{id}}"
    browser.script("const s = document.querySelector('select[name=scenarioId]'); s.value = arguments[0];", pet["id"])
    browser.fill("input[name=origins]", "https://shop.example")
    console.pages["bind"] = browser.path()
    browser.shoot("api-bind")
    browser.click("form button[type=submit]")
    browser.wait_text(".notice.ok", "Bound getPetById")
    assert "Pet lookup" in browser.text("tr[data-operation='getPetById'] td[data-label='Binding']")
    browser.shoot("api")
    answer = httpx.get(f"{console.app.url}/shop/pet/42", headers={"Origin": "https://shop.example"})
    assert answer.status_code == 200 and answer.json() == {"id": 42}
    assert answer.headers["access-control-allow-origin"] == "https://shop.example"

    # Another API's operation that could take the same requests: binding it is refused (409),
    # and the console shows the conflict as the API reports it.
    browser.open("/console/apis")
    browser.fill("input[name=apiName]", "clash")
    browser.fill("textarea[name=document]", CLASHING)
    browser.click("form button[type=submit]")
    browser.wait_text(".notice.ok", "Imported “clash”")
    browser.click("tr[data-operation='findPet'] a.button")
    browser.find("select[name=scenarioId]")
    browser.script("const s = document.querySelector('select[name=scenarioId]'); s.value = arguments[0];", pet["id"])
    with browser.expect_api_error("/management/apis/clash/operations/findPet", 409):
        browser.click("form button[type=submit]")
        error = browser.text(".error")
    assert "(HTTP 409)" in error and "pets/getPetById" in error and "clash/findPet" in error
    browser.shoot("api-bind-conflict")
    console.pages["apis"] = "/console/apis"
    browser.open("/console/apis")
    assert [r.text.split("\n")[0] for r in browser.wait(lambda: browser.find_all("table.cards tbody tr th"), what="the APIs")] == ["clash", "pets"]
    browser.shoot("apis")  # docs/console-apis.png is a copy of apis-desktop.png

    browser.open("/console/apis/pets")
    browser.click("tr[data-operation='getPetById'] button.danger")
    browser.click("tr[data-operation='getPetById'] button.danger")
    browser.wait_text(".notice.ok", "Unbound getPetById")
    assert httpx.get(f"{console.app.url}/shop/pet/42").status_code == 404
    assert sid  # the shop scenario is untouched by the API pages
    console.pet_id = pet["id"]


def _binding(console: Session, api: str, operation: str) -> dict[str, Any]:
    with console.app.admin() as admin:
        view = admin.get(f"/management/apis/{api}/operations/{operation}")
    assert view.status_code == 200, view.text
    return dict(view.json()["binding"])


def test_bind_with_an_api_key_then_basic_over_https_only(console: Session) -> None:
    browser = console.browser
    bind = "/console/apis/pets/operations/getPetById"
    browser.open(bind)
    browser.choose("select[name=scenarioId]", console.pet_id)
    assert not browser.find_all("input[name=scopes]")[0].is_displayed()  # oauth2's fields only with oauth2
    browser.choose("select[name=authType]", "apiKey")
    browser.click("form button[type=submit]")
    browser.wait_text(".notice.ok", "Bound getPetById")
    assert browser.text("tr[data-operation='getPetById'] td[data-label='Binding']").endswith("· apiKey")
    binding = _binding(console, "pets", "getPetById")
    assert binding["scenarioId"] == console.pet_id and binding["authentication"] == {"type": "apiKey"}
    assert binding["allowedProtocols"] == ["http", "https"] and binding["cors"] is None
    with console.app.admin() as admin:
        made = admin.post("/management/apikeys", json={"name": "vet", "ruleset": [{"path": "/shop/pet/*", "methods": ["GET"]}]}).json()
        key = made["key"]
        assert admin.post("/management/users", json={"username": "vet", "password": "correct horse"}).status_code == 201
        # Settings the form does not show, set through the API: an edit in the console keeps them.
        guarded = admin.put("/management/apis/pets/operations/getPetById", json={**binding, "ipAllowList": ["127.0.0.1", "::1"], "rateLimit": {"requestsPerMinute": 600}})
        assert guarded.status_code == 200, guarded.text
    with httpx.Client(base_url=console.app.url) as caller:
        assert caller.get("/shop/pet/42").status_code == 401
        answer = caller.get("/shop/pet/42", headers={"X-Api-Key": key})
        assert answer.status_code == 200 and answer.json() == {"id": 42}

    # Basic, over HTTPS only; the form opens on what is stored.
    browser.open(bind)
    assert browser.text(".kept-settings") == "Set through the API and kept when you save: callers only from 127.0.0.1/32, ::1/128; at most 600 requests a minute (bursts of 600)."
    assert browser.find("select[name=authType]").get_attribute("value") == "apiKey"
    assert browser.find("input[name=http]").is_selected() and browser.find("input[name=https]").is_selected()
    browser.choose("select[name=authType]", "basic")
    browser.click("input[name=http]")
    browser.click("form button[type=submit]")
    browser.wait_text(".notice.ok", "Bound getPetById")
    binding = _binding(console, "pets", "getPetById")
    assert binding["authentication"] == {"type": "basic"} and binding["allowedProtocols"] == ["https"]
    assert binding["ipAllowList"] == guarded.json()["binding"]["ipAllowList"] and binding["rateLimit"]["requestsPerMinute"] == 600
    https = {"X-Forwarded-Proto": "https"}  # as App Service's front end says a call came over HTTPS
    with httpx.Client(base_url=console.app.url) as caller:
        assert caller.get("/shop/pet/42", auth=("vet", "correct horse")).status_code == 403  # plain HTTP
        unauthenticated = caller.get("/shop/pet/42", headers=https)
        assert unauthenticated.status_code == 401, unauthenticated.text
        assert caller.get("/shop/pet/42", headers={**https, "X-Api-Key": key}).status_code == 401
        answer = caller.get("/shop/pet/42", headers=https, auth=("vet", "correct horse"))
        assert answer.status_code == 200 and answer.json() == {"id": 42}

    # Neither protocol: the API refuses the binding, and the one stored stays.
    browser.open(bind)
    assert not browser.find("input[name=http]").is_selected()
    browser.click("input[name=https]")
    with browser.expect_api_error("/management/apis/pets/operations/getPetById", 400):
        browser.click("form button[type=submit]")
        error = browser.text(".error")
    assert "(HTTP 400)" in error and "allowedProtocols" in error
    assert _binding(console, "pets", "getPetById")["allowedProtocols"] == ["https"]
    with console.app.admin() as admin:
        assert admin.delete("/management/apis/pets/operations/getPetById").status_code in (200, 204)
        assert admin.delete("/management/users/vet").status_code in (200, 204)
        assert admin.delete(f"/management/apikeys/{made['id']}").status_code in (200, 204)


def test_api_keys_and_basic_users_are_created_listed_and_deleted(console: Session) -> None:
    browser = console.browser
    browser.open("/console/apis")
    browser.click_text("nav.tabs a", "API keys")
    browser.fill("input[name=name]", "partner")
    browser.fill("textarea[name=ruleset]", "/shop/pet/*:GET\n/shop/**")
    browser.click("form button[type=submit]")
    key = browser.find(".new-token input.copy-value").get_attribute("value")
    assert key
    row = browser.wait(lambda: [r for r in browser.find_all("tbody tr") if "partner" in r.text], what="the key's row")[0]
    assert "/shop/pet/*:GET" in row.text and "/shop/**:*" in row.text
    console.pages["api-keys"] = "/console/api-keys"
    browser.shoot("api-keys")
    with console.app.admin() as admin:
        assert [k["name"] for k in admin.get("/management/apikeys").json()["value"]] == ["partner"]
    browser.click("tbody tr button.danger")
    browser.click("tbody tr button.danger")
    browser.wait_text(".notice.ok", "Deleted “partner”")
    with console.app.admin() as admin:
        assert admin.get("/management/apikeys").json()["value"] == []

    browser.click_text("nav.tabs a", "Basic users")
    browser.fill("input[name=username]", "alice")
    browser.fill("input[name=password]", "correct horse battery")
    browser.click("form button[type=submit]")
    browser.wait_text(".notice.ok", "User “alice” created.")
    browser.wait_text("tbody tr", "alice")
    console.pages["users"] = "/console/users"
    browser.shoot("users")
    browser.click("tbody tr button.danger")
    browser.click("tbody tr button.danger")
    browser.wait_text(".notice.ok", "Deleted “alice”")
    with console.app.admin() as admin:
        assert admin.get("/management/users").json()["value"] == []


# ------------------------------------------------------------------------------------------------
# Every page: accessibility, phone width, keyboard
# ------------------------------------------------------------------------------------------------


def test_every_page_passes_axe_and_fits_a_phone_screen(console: Session) -> None:
    browser = console.browser
    console.pages["scenarios"] = "/console/scenarios"
    console.pages["scenario-new"] = "/console/scenarios/new"
    failures = []
    for name, path in sorted(console.pages.items()):
        browser.open(path)
        browser.find("main h1")
        browser.wait(lambda: not browser.find_all("main .loading"), what="the page to load")
        if name == "scenarios":
            browser.wait(lambda: "…" not in browser.text("table.scenarios tbody"), what="last runs")
            browser.shoot("scenarios")
        found = serious(browser.axe())
        if found:
            failures.append(f"{name} ({path}): {found}")
        overflow = browser.overflow_at_phone_width()
        if overflow > 0:
            failures.append(f"{name} ({path}) is {overflow} px wider than a phone screen")
    assert len(console.pages) >= 12
    assert failures == [], "\n".join(failures)


def test_the_console_is_keyboard_usable_with_a_visible_focus(console: Session) -> None:
    from selenium.webdriver.common.keys import Keys

    browser = console.browser
    browser.open("/console/scenarios")
    browser.find("table.scenarios")
    body = browser.find("body")
    body.send_keys(Keys.TAB)
    first = browser.script("return document.activeElement;")
    assert first.text == "Skip to content"
    assert browser.script("return getComputedStyle(document.activeElement).outlineStyle;") != "none"
    visited = []
    for _ in range(12):
        browser.script("return document.activeElement;").send_keys(Keys.TAB)
        element = browser.script("return document.activeElement;")
        visited.append(element.text)
        assert browser.script("return getComputedStyle(document.activeElement).outlineStyle;") == "solid", element.text
        if element.text == "New scenario":
            break
    assert "Tokens" in visited and "New scenario" in visited
    browser.script("return document.activeElement;").send_keys(Keys.ENTER)
    browser.find("textarea[name=process]")
    assert browser.path() == "/console/scenarios/new"
    assert browser.script("return document.activeElement.tagName;") in ("H1", "INPUT")


def test_the_problem_check_catches_csp_violations_and_console_errors(console: Session) -> None:
    """The check every test ends with can fail: inline script and style are refused by the CSP
    and reported, and so is a console error."""
    browser = console.browser
    browser.open("/console/scenarios")
    browser.find("table.scenarios")
    browser.script("const s = document.createElement('script'); s.textContent = 'window.inlineRan = true'; document.body.append(s);")
    browser.script("const s = document.createElement('style'); s.textContent = 'body{color:red}'; document.head.append(s);")
    browser.script("console.error('a console error');")
    problems: list[str] = []

    def reported() -> bool:
        problems.extend(browser.problems())
        return len(problems) >= 3

    browser.wait(reported, what="the three problems to be reported")
    assert browser.script("return Boolean(window.inlineRan);") is False
    assert any("script-src" in p for p in problems) and any("style-src" in p for p in problems)
    assert any("a console error" in p for p in problems)
