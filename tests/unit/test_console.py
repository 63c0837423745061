"""The console's serving, settings and files (docs/console.md), without a browser.

The browser tests (tests/e2e/test_console.py) show the pages work; these check what a browser
cannot see at a glance: the headers of every kind of answer, the versioned asset URLs, the
configuration the page gets, that the files hold no inline script or style and build no HTML
from text, that the vendored MSAL.js is exactly the pinned npm package, and that the console is
part of the deployed package.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.app.console import (
    ASSETS_PREFIX,
    IMMUTABLE,
    Assets,
    content_security_policy,
    find_console_folder,
    next_due_times,
    page_config,
    serve_api,
    serve_file,
)
from core.kernel.errors import BadRequest, ConfigurationError, NotFound
from core.kernel.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "console"
BASE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0f0e0d0c-0b0a-4908-8706-050403020100"
AAD = {**BASE, "JUNCTION_AAD_TENANT_ID": TENANT, "JUNCTION_AAD_AUDIENCE": "api://junction,6f1f3c1e-0d2b-4c4e-9a51-3b7f2d9e8a10"}


@pytest.fixture(scope="module")
def assets() -> Assets:
    return Assets.load(CONSOLE)


def test_the_page_is_served_for_every_console_path_with_its_security_headers(assets: Assets) -> None:
    settings = load_settings(BASE)
    for path in ("", "scenarios", "scenarios/1d0e4a6e-0000-4000-8000-000000000000/runs", "no/such/page"):
        reply = serve_file(settings, path, assets)
        assert reply.status == 200
        assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
        assert reply.headers["Cache-Control"] == "no-cache"
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert reply.headers["Content-Security-Policy"] == content_security_policy(settings)
        assert f"{ASSETS_PREFIX}/{assets.version}/app.js".encode() in reply.body
        assert b"%JUNCTION" not in reply.body


def test_the_policy_allows_no_inline_code_and_no_other_origin() -> None:
    policy = content_security_policy(load_settings(BASE))
    directives = dict(d.split(" ", 1) for d in policy.split("; "))
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert "unsafe" not in policy


def test_with_azure_ad_sign_in_the_page_may_talk_to_the_authority_only() -> None:
    settings = load_settings({**AAD, "JUNCTION_CONSOLE_CLIENT_ID": CLIENT})
    directives = dict(d.split(" ", 1) for d in content_security_policy(settings).split("; "))
    assert directives["connect-src"] == "'self' https://login.microsoftonline.com"
    assert directives["script-src"] == "'self'"
    assert page_config(settings) == {
        "aad": {
            "clientId": CLIENT,
            "authority": f"https://login.microsoftonline.com/{TENANT}",
            "knownAuthority": "login.microsoftonline.com",
            "scopes": ["api://junction/.default"],
        }
    }
    # Azure AD alone (the CLI and services use it) does not offer the console's sign-in.
    assert page_config(load_settings(AAD)) == {"aad": None}


def test_the_configuration_reaches_the_page_as_an_escaped_attribute(assets: Assets) -> None:
    settings = load_settings({**AAD, "JUNCTION_CONSOLE_CLIENT_ID": CLIENT, "JUNCTION_AAD_AUTHORITY_HOST": 'https://login.example/"><script>'})
    body = serve_file(settings, "", assets).body.decode()
    meta = re.search(r'<meta name="junction-console" content="([^"]*)">', body)
    assert meta is not None and "<script>" not in meta[1]
    import html

    assert json.loads(html.unescape(meta[1]))["aad"]["clientId"] == CLIENT


def test_assets_are_versioned_by_their_content_and_cached_for_a_year(assets: Assets, tmp_path: Path) -> None:
    settings = load_settings(BASE)
    reply = serve_file(settings, f"assets/{assets.version}/app.js", assets)
    assert reply.status == 200 and reply.body == (CONSOLE / "app.js").read_bytes()
    assert reply.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert reply.headers["Cache-Control"] == IMMUTABLE
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert serve_file(settings, f"assets/{assets.version}/console.css", assets).headers["Content-Type"] == "text/css; charset=utf-8"
    for missing in (f"assets/{'0' * 16}/app.js", f"assets/{assets.version}/nope.js", f"assets/{assets.version}/../core/settings.py", "assets", f"assets/{assets.version}/index.html"):
        answer = serve_file(settings, missing, assets)
        assert answer.status == 404 and answer.headers["Cache-Control"] == "no-store", missing
    # Changing any file changes the version (so no browser keeps a stale copy of it).
    copy = tmp_path / "console"
    copy.mkdir()
    for path in CONSOLE.rglob("*"):
        if path.is_file():
            target = copy / path.relative_to(CONSOLE)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    assert Assets.load(copy).version == assets.version
    (copy / "pages" / "runs.js").write_text((CONSOLE / "pages" / "runs.js").read_text() + "\n// changed\n")
    assert Assets.load(copy).version != assets.version


def test_the_folder_is_found_from_wherever_core_lives(tmp_path: Path) -> None:
    assert find_console_folder() == CONSOLE  # from core/app/console.py
    deeper = ROOT / "core" / "app" / "pages" / "console.py"  # wherever the module may move
    assert find_console_folder(deeper) == CONSOLE
    with pytest.raises(FileNotFoundError):
        find_console_folder(tmp_path / "core" / "console.py")


def test_next_due_times_are_the_timers_own() -> None:
    now = datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC)
    assert next_due_times("0 */15 * * * *", now) == [
        "2026-01-01T10:15:00Z",
        "2026-01-01T10:30:00Z",
        "2026-01-01T10:45:00Z",
        "2026-01-01T11:00:00Z",
        "2026-01-01T11:15:00Z",
    ]
    assert next_due_times("0 0 0 29 2 *", now)[:2] == ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]
    with pytest.raises(BadRequest) as refused:
        next_due_times("0 */5 * * *", now)
    assert refused.value.code == "InvalidSchedule"
    with pytest.raises(BadRequest, match="never falls due"):
        next_due_times("0 0 0 31 2 *", now)
    for bad in (None, "", "0 " * 101):
        with pytest.raises(BadRequest):
            next_due_times(bad, now)


def test_the_console_api_computes_and_refuses_the_rest() -> None:
    answer = serve_api("api/schedule", {"expression": "0 0 6 * * 1"})
    assert answer["expression"] == "0 0 6 * * 1" and len(answer["next"]) == 5
    with pytest.raises(NotFound):
        serve_api("api/tokens", {})


def test_the_console_client_id_setting() -> None:
    settings = load_settings({**AAD, "JUNCTION_CONSOLE_CLIENT_ID": CLIENT.upper()})
    assert settings.console_client_id == CLIENT
    assert load_settings(BASE).console_client_id is None
    with pytest.raises(ConfigurationError, match="JUNCTION_CONSOLE_CLIENT_ID must be a GUID"):
        load_settings({**AAD, "JUNCTION_CONSOLE_CLIENT_ID": "spa"})
    with pytest.raises(ConfigurationError, match="JUNCTION_CONSOLE_CLIENT_ID needs JUNCTION_AAD_TENANT_ID"):
        load_settings({**BASE, "JUNCTION_CONSOLE_CLIENT_ID": CLIENT})


# -- the files ---------------------------------------------------------------------------------


def _own_files(suffix: str) -> list[Path]:
    return sorted(p for p in CONSOLE.rglob(f"*{suffix}") if "vendor" not in p.parts)


def test_the_page_has_no_inline_script_or_style() -> None:
    html = (CONSOLE / "index.html").read_text()
    for script in re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.S):
        assert script.strip() == ""
    assert "<style" not in html and " style=" not in html and re.search(r"\son[a-z]+=", html) is None
    assert re.findall(r"<script\b[^>]*>", html) == ['<script type="module" src="%JUNCTION_ASSETS%/app.js">']


@pytest.mark.parametrize("path", _own_files(".js"), ids=lambda p: str(p.relative_to(CONSOLE)))
def test_scripts_build_no_html_from_text_and_evaluate_nothing(path: Path) -> None:
    source = re.sub(r"^\s*//.*$", "", path.read_text(), flags=re.M)  # comments may name what is avoided
    for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", 'setAttribute("style"', "localStorage", "document.cookie"):
        assert forbidden not in source, f"{path.name} uses {forbidden}"


@pytest.mark.parametrize("path", _own_files(".js"), ids=lambda p: str(p.relative_to(CONSOLE)))
def test_every_module_import_names_a_file_of_the_console(path: Path) -> None:
    source = path.read_text()
    for spec in re.findall(r"""(?:from|import)\s*\(?\s*["']([^"']+)["']""", source):
        assert spec.startswith("./") or spec.startswith("../"), f"{path.name} imports {spec!r}: a bare name needs a bundler or a CDN"
        assert (path.parent / spec).resolve().is_file(), f"{path.name} imports missing {spec}"


def test_the_vendored_msal_is_the_pinned_npm_package() -> None:
    """console/vendor holds @azure/msal-browser's browser build exactly as npm ships the version
    package.json pins (`make console-vendor` copies it); a change of either fails here."""
    package = json.loads((ROOT / "package.json").read_text())
    version = package["devDependencies"]["@azure/msal-browser"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), "pin an exact version"
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/@azure/msal-browser"]["version"] == version
    vendored = (CONSOLE / "vendor" / "msal-browser.min.js").read_bytes()
    assert vendored.startswith(f"/*! @azure/msal-browser v{version} ".encode())
    installed = ROOT / "node_modules" / "@azure" / "msal-browser"
    assert json.loads((installed / "package.json").read_text())["version"] == version
    assert hashlib.sha256(vendored).digest() == hashlib.sha256((installed / "lib" / "msal-browser.min.js").read_bytes()).digest(), (
        "console/vendor/msal-browser.min.js differs from the pinned package: run make console-vendor"
    )
    assert (CONSOLE / "vendor" / "msal-browser.LICENSE.txt").read_bytes() == (installed / "LICENSE").read_bytes()


def test_nothing_is_fetched_from_another_origin() -> None:
    for path in [*_own_files(".js"), *_own_files(".css"), CONSOLE / "index.html"]:
        assert re.search(r"""(?:src|href|url\()\s*=?\s*["']?(?:https?:)?//""", path.read_text()) is None, path.name


def _funcignored(path: str, patterns: list[str]) -> bool:
    parts = path.split("/")
    for pattern in patterns:
        bare = pattern.rstrip("/")
        if any(fnmatch.fnmatch(part, bare) for part in parts) or fnmatch.fnmatch(path, bare):
            return True
    return False


def test_the_console_is_deployed_with_the_app() -> None:
    patterns = [line.strip() for line in (ROOT / ".funcignore").read_text().splitlines() if line.strip() and not line.startswith("#")]
    files = [p.relative_to(ROOT).as_posix() for p in CONSOLE.rglob("*") if p.is_file()]
    assert "console/index.html" in files and "console/vendor/msal-browser.min.js" in files
    assert [f for f in files if _funcignored(f, patterns)] == []
    assert _funcignored("tests/unit/test_console.py", patterns)  # the matcher does match
