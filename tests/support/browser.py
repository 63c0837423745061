"""A real headless Chromium for the console's tests, driven with Selenium.

Debian's ``chromium`` and ``chromium-driver`` (``make test`` installs them when it runs as root;
otherwise the tests fail naming the command). No browser is downloaded: Selenium is pointed at
``/usr/bin/chromium`` and ``/usr/bin/chromedriver``, so Selenium Manager never runs.

``Browser`` adds what the tests check on every page:

- ``problems()``: every console error the page logged and every Content-Security-Policy
  violation (recorded by a listener installed before any page script runs, and Chromium's own
  "Refused to ..." console errors). Failed loads count too, except the API calls a test provoked
  on purpose (``expect_api_error``): a console file that fails to load is a problem.
- ``shoot(name)``: screenshots at 1280x800 and at phone width, into the artifacts folder.
- ``axe()``: axe-core (npm, pinned in package.json) run inside the page; returns the violations.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL = "apt-get install -y chromium chromium-driver"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("JUNCTION_TEST_ARTIFACTS", ROOT / "build" / "test-artifacts")) / "console"
DESKTOP = (1280, 800)
PHONE = (390, 844)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
]

# Installed before any script of a page runs: CSP violations the page could not hide.
RECORDER = """
window.__junctionProblems = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__junctionProblems.push('CSP violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber);
});
window.addEventListener('error', (e) => { window.__junctionProblems.push('uncaught: ' + e.message + ' at ' + e.filename + ':' + e.lineno); });
window.addEventListener('unhandledrejection', (e) => { window.__junctionProblems.push('unhandled rejection: ' + (e.reason && e.reason.stack || e.reason)); });
"""

_FAILED_LOAD = re.compile(r"^(?P<url>\S+) - Failed to load resource: the server responded with a status of (?P<status>\d{3})")


def require_chromium() -> None:
    """No skip: without the browser the console is untested, so the run fails and says why."""
    import pytest

    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(f"the console's browser tests need {' and '.join(missing)}: run `{INSTALL}` (as root), or `make test`, which does", pytrace=False)


class Browser:
    """One Chromium session (tests share one per module: starting a browser costs a second)."""

    def __init__(self, base_url: str, *, extra_flags: tuple[str, ...] = ()) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.base_url = base_url
        self.profile = tempfile.mkdtemp(prefix="junction-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in [*FLAGS, *extra_flags, f"--user-data-dir={self.profile}", f"--window-size={DESKTOP[0]},{DESKTOP[1]}"]:
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_script_timeout(60)
        self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORDER})
        self.driver.execute_cdp_cmd(
            "Browser.grantPermissions",
            {"origin": base_url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
        )
        self.viewport(*DESKTOP)
        self.expected_api_errors: list[tuple[str, int]] = []
        self.seen: list[str] = []

    # -- navigation and finding things ---------------------------------------------------------

    def viewport(self, width: int, height: int) -> None:
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}
        )

    def open(self, path: str) -> None:
        self.collect()
        self.driver.get(self.base_url + path)

    def wait(self, condition: Callable[[], Any], timeout: float = 20.0, what: str = "a condition") -> Any:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                value = condition()
                if value:
                    return value
            except Exception as exc:  # noqa: BLE001 - stale elements and the like while a page renders
                last_error = exc
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout} s waiting for {what} on {self.driver.current_url}; last error: {last_error!r}; problems: {self.problems()}")

    def find(self, css: str, timeout: float = 20.0) -> Any:
        from selenium.webdriver.common.by import By

        def visible() -> Any:
            for element in self.driver.find_elements(By.CSS_SELECTOR, css):
                if element.is_displayed():
                    return element
            return None

        return self.wait(visible, timeout, f"a visible {css!r}")

    def find_all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text(self, css: str, timeout: float = 20.0) -> str:
        return str(self.find(css, timeout).text)

    def wait_text(self, css: str, needle: str, timeout: float = 20.0) -> str:
        from selenium.webdriver.common.by import By

        def found() -> str | None:
            for element in self.driver.find_elements(By.CSS_SELECTOR, css):
                if needle in element.text:
                    return str(element.text)
            return None

        return str(self.wait(found, timeout, f"{needle!r} in {css!r}"))

    def fill(self, css: str, value: str) -> Any:
        element = self.find(css)
        element.clear()
        if value:
            # send_keys types character by character; set long values at once, then type one
            # key so the page's input listeners run as they would for a person.
            if len(value) > 40:
                self.driver.execute_script("arguments[0].value = arguments[1];", element, value[:-1])
                element.send_keys(value[-1])
            else:
                element.send_keys(value)
        return element

    @contextlib.contextmanager
    def slow_network(self, latency_ms: int) -> Iterator[None]:
        """Every request of the page takes at least ``latency_ms`` more (Chromium's own network
        emulation, as DevTools' throttling): a short operation becomes a long one, so what the
        page shows during a long wait can be seen without slowing the app."""
        self.driver.execute_cdp_cmd("Network.enable", {})
        conditions = {"offline": False, "downloadThroughput": -1, "uploadThroughput": -1}
        self.driver.execute_cdp_cmd("Network.emulateNetworkConditions", {**conditions, "latency": latency_ms})
        try:
            yield
        finally:
            self.driver.execute_cdp_cmd("Network.emulateNetworkConditions", {**conditions, "latency": 0})

    def choose(self, css: str, value: str) -> None:
        """Pick an option of a select as a person would (its change listeners run)."""
        from selenium.webdriver.support.ui import Select

        element = self.find(css)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        Select(element).select_by_value(value)

    def click(self, css: str) -> None:
        element = self.find(css)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        element.click()

    def click_text(self, css: str, text: str) -> None:
        from selenium.webdriver.common.by import By

        def found() -> Any:
            for element in self.driver.find_elements(By.CSS_SELECTOR, css):
                if element.is_displayed() and element.text.strip() == text:
                    return element
            return None

        element = self.wait(found, 20, f"{css!r} saying {text!r}")
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        element.click()

    def script(self, source: str, *args: Any) -> Any:
        return self.driver.execute_script(source, *args)

    def path(self) -> str:
        return str(self.script("return location.pathname + location.search;"))

    def clipboard(self) -> str:
        return str(self.driver.execute_async_script("const done = arguments[0]; navigator.clipboard.readText().then(done, (e) => done('ERROR ' + e));"))

    # -- problems ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def expect_api_error(self, path_part: str, status: int) -> Iterator[None]:
        """A call to a URL containing ``path_part`` may fail with ``status`` in this block: the
        test provokes it (Chromium logs every failed load as a console error)."""
        self.expected_api_errors.append((path_part, status))
        try:
            yield
        finally:
            self.collect()
            self.expected_api_errors.remove((path_part, status))

    def collect(self) -> None:
        """Move what the browser logged since the last call into ``seen`` (each page's recorder
        is read before the page is left)."""
        try:
            recorded = self.driver.execute_script("return (window.__junctionProblems || []).splice(0);") or []
        except Exception:  # noqa: BLE001 - no page yet
            recorded = []
        self.seen.extend(str(p) for p in recorded)
        for entry in self.driver.get_log("browser"):
            if entry.get("level") != "SEVERE":
                continue
            message = str(entry.get("message", ""))
            failed = _FAILED_LOAD.match(message)
            if failed and self._expected(failed["url"], int(failed["status"])):
                continue
            self.seen.append(f"{entry.get('source')}: {message}")

    def _expected(self, url: str, status: int) -> bool:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        if parts.path.startswith("/console/"):
            return False  # the console's own files never fail
        return any(part in url and status == code for part, code in self.expected_api_errors)

    def problems(self) -> list[str]:
        self.collect()
        found, self.seen = self.seen, []
        return found

    # -- artifacts -----------------------------------------------------------------------------

    def shoot(self, name: str, *, scroll_top: bool = True) -> list[Path]:
        """Screenshots at 1280x800 and at phone width, from the top of the page unless the
        part to see is where the page scrolled to (an error at its step)."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        if scroll_top:
            self.script("window.scrollTo(0, 0);")
        saved = []
        for label, (width, height) in (("desktop", DESKTOP), ("phone", PHONE)):
            self.viewport(width, height)
            time.sleep(0.15)
            data = self.driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False})
            path = ARTIFACTS / f"{name}-{label}.png"
            path.write_bytes(base64.b64decode(data["data"]))
            saved.append(path)
        self.viewport(*DESKTOP)
        return saved

    def overflow_at_phone_width(self) -> int:
        """How many pixels the page is wider than a phone's screen (0: nothing to scroll sideways)."""
        self.viewport(*PHONE)
        time.sleep(0.15)
        try:
            return int(self.script("return document.documentElement.scrollWidth - window.innerWidth;"))
        finally:
            self.viewport(*DESKTOP)

    def axe(self) -> list[dict[str, Any]]:
        """axe-core's violations on the page as it is (WCAG 2.x A and AA rules and best practices)."""
        if not self.script("return Boolean(window.axe);"):
            self.script(AXE.read_text(encoding="utf-8"))
        result = self.driver.execute_async_script(
            "const done = arguments[0];"
            "axe.run(document, {resultTypes: ['violations']}).then((r) => done(JSON.stringify(r.violations)), (e) => done(JSON.stringify([{id: 'axe-error', impact: 'critical', help: String(e)}])));"
        )
        return list(json.loads(result))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)


def serious(violations: list[dict[str, Any]]) -> list[str]:
    return [
        f"{v.get('id')} ({v.get('impact')}): {v.get('help')} at {[n.get('target') for n in v.get('nodes', [])][:5]}"
        for v in violations
        if v.get("impact") in ("serious", "critical")
    ]
