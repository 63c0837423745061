"""The console's "Sign in with Microsoft" (docs/console.md), in headless Chromium, against the local
HTTPS identity provider the Azure AD tests use (tests/support/idp.py).

MSAL.js (vendored in console/vendor) runs the authorization code flow with PKCE in a full-page
redirect: the console goes to the provider's authorization endpoint, comes back to /console/
with a code, and MSAL redeems it (with the PKCE verifier, from the browser: the token endpoint
answers the console's origin with CORS, as Azure AD does for single-page applications). The
token it gets is what the console then sends to the management API, which decides what the
person may do. Chromium trusts the provider's certificate by its key only
(``--ignore-certificate-errors-spki-list``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devhost.azurite import Azurite
from tests.e2e.conftest import Junction, aad_env, serve_junction
from tests.support.browser import Browser, require_chromium, serious
from tests.support.idp import DeviceUser, LocalIdentityProvider

ADMIN_ROLE = "Junction.Admin"


class Session:
    def __init__(self, app: Junction, idp: LocalIdentityProvider, browser: Browser, client_id: str) -> None:
        self.app, self.idp, self.browser, self.client_id = app, idp, browser, client_id


@pytest.fixture(scope="module")
def signed(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    require_chromium()
    client_id = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b"
    with LocalIdentityProvider(tmp_path_factory.mktemp("idp-console")) as idp:
        env = aad_env(idp, JUNCTION_CONSOLE_CLIENT_ID=client_id, JUNCTION_AAD_ADMIN_ROLE=ADMIN_ROLE)
        with serve_junction(azurite, "consoleaad", tmp_path_factory.mktemp("devhost-console-aad"), extra_env=env) as app:
            idp.register_spa(f"{app.url}/console/", client_id)
            browser = Browser(app.url, extra_flags=(f"--ignore-certificate-errors-spki-list={idp.server_spki_sha256}",))
            try:
                yield Session(app, idp, browser, client_id)
            finally:
                browser.close()


@pytest.fixture(autouse=True)
def no_browser_problems(signed: Session) -> Iterator[None]:
    signed.browser.problems()
    yield
    problems = signed.browser.problems()
    assert problems == [], "the browser reported problems:\n" + "\n".join(problems)


def _storage(browser: Browser, kind: str) -> dict[str, str]:
    return dict(browser.script(f"const s = {kind}; const o = {{}}; for (let i = 0; i < s.length; i++) o[s.key(i)] = s.getItem(s.key(i)); return o;"))


def test_an_administrator_signs_in_with_microsoft_using_pkce(signed: Session) -> None:
    browser, idp = signed.browser, signed.idp
    idp.browser_user = DeviceUser(name="Ada Lovelace", username="ada@contoso.example", claims={"roles": [ADMIN_ROLE]})
    with signed.app.admin() as admin:
        admin.post("/management/scenarios", json={"name": "Visible to Ada", "process": {"steps": []}})
    browser.open("/console/scenarios")
    button = browser.find("#aad-sign-in")
    assert button.text == "Sign in with Microsoft"
    assert serious(browser.axe()) == []
    browser.shoot("sign-in-with-microsoft")
    button.click()
    browser.wait_text("table.scenarios", "Visible to Ada", timeout=30)
    assert browser.path() == "/console/scenarios"  # back where the person was going
    assert "Signed in with ada@contoso.example" in browser.text("#who")

    (request,) = idp.authorize_requests
    assert request["client_id"] == signed.client_id and request["response_type"] == "code"
    assert request["code_challenge_method"] == "S256" and request["redirect_uri"] == f"{signed.app.url}/console/"
    assert "api://junction/.default" in request["scope"].split()
    assert idp.pkce_checks == 1  # the code was redeemed with the matching verifier

    # The token lives in this tab's sessionStorage (MSAL's cache), nowhere else.
    session = _storage(browser, "sessionStorage")
    assert any("accesstoken" in key.lower() for key in session), list(session)
    assert _storage(browser, "localStorage") == {}
    assert browser.script("return document.cookie;") == ""
    assert "#code=" not in browser.driver.current_url and "code=" not in browser.path()


def test_the_microsoft_token_is_what_the_management_api_sees(signed: Session) -> None:
    browser = signed.browser
    browser.open("/console/scenarios/new")
    browser.fill("input[name=name]", "Made by Ada")
    browser.click("form.editor-form button[type=submit]")
    browser.find(".notice.ok")
    with signed.app.admin() as admin:
        names = [s["name"] for s in admin.get("/management/scenarios").json()["value"]]
    assert "Made by Ada" in names  # created with the Azure AD token: there is no other credential in the tab
    assert browser.script("return [sessionStorage.getItem('junction.token'), sessionStorage.getItem('junction.signin')];") == [None, "aad"]


def test_sign_out_forgets_the_session_and_a_non_administrator_is_refused_by_the_api(signed: Session) -> None:
    browser, idp = signed.browser, signed.idp
    browser.open("/console/scenarios")
    browser.find("table.scenarios")
    browser.click("#sign-out")
    browser.find("#aad-sign-in")
    assert _storage(browser, "sessionStorage") == {}

    idp.browser_user = DeviceUser(name="Grace Hopper", username="grace@contoso.example", claims={"roles": []})
    with browser.expect_api_error("/management/", 403):
        browser.click("#aad-sign-in")
        error = browser.text(".error", timeout=30)
    assert "(HTTP 403)" in error  # signed in, but the management API decides: not an administrator
    assert "Signed in with grace@contoso.example" in browser.text("#who")
