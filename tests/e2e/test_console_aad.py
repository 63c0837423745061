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

import httpx
import pytest

from devhost.azurite import Azurite
from tests.e2e.conftest import Junction, aad_env, serve_junction
from tests.support.browser import Browser, require_chromium, serious
from tests.support.idp import AUDIENCE, DeviceUser, LocalIdentityProvider

ADMIN_ROLE = "Junction.Admin"
VET = """openapi: 3.0.3
info: {title: Vet, version: '1'}
servers: [{url: /vet}]
components:
  securitySchemes:
    aad: {type: oauth2, flows: {implicit: {authorizationUrl: 'https://login.example/authorize', scopes: {Pets.Read: read pets}}}}
paths:
  /visits:
    get:
      operationId: listVisits
      security: [{aad: [Pets.Read]}]
      responses: {'200': {description: ok}}
"""


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


def test_bind_an_operation_with_oauth2_scopes_and_call_it_with_azure_ad_tokens(signed: Session) -> None:
    browser, idp, app = signed.browser, signed.idp, signed.app
    with app.admin() as admin:
        scenario = admin.post("/management/scenarios", json={"name": "Visits", "process": {"steps": [
            {"type": "return", "value": {"jmespath": "{user: trigger.data.username}"}}]}}).json()  # fmt: skip
        imported = admin.put("/management/apis/vet", content=VET, headers={"Content-Type": "application/yaml"})
        assert imported.status_code in (200, 201), imported.text

    def call(scp: str) -> httpx.Response:
        token = idp.mint(idp.user_claims(AUDIENCE, scp=scp))
        return httpx.get(f"{app.url}/vet/visits", headers={"Authorization": f"Bearer {token}"})

    def stored() -> dict[str, object]:
        with app.admin() as admin:
            return dict(admin.get("/management/apis/vet/operations/listVisits").json()["binding"]["authentication"])

    browser.open("/console/apis/vet")
    assert browser.text("tr[data-operation='listVisits'] td[data-label='Scopes']") == "Pets.Read"  # from the document
    browser.click("tr[data-operation='listVisits'] a.button")
    browser.choose("select[name=scenarioId]", scenario["id"])
    assert not browser.find_all("input[name=scopes]")[0].is_displayed()
    browser.choose("select[name=authType]", "oauth2")
    browser.fill("input[name=scopes]", "Visits.Read Pets.Write")
    browser.click("input[name=anyTenantUser]")
    browser.click("form button[type=submit]")
    browser.wait_text(".notice.ok", "Bound listVisits")
    assert browser.text("tr[data-operation='listVisits'] td[data-label='Binding']").endswith("· oauth2")
    assert stored() == {"type": "oauth2", "scopes": ["Visits.Read", "Pets.Write"], "anyTenantUser": True}
    allowed = call("Visits.Read")
    assert allowed.status_code == 200 and allowed.json() == {"user": "Grace Hopper"}
    refused = call("Pets.Read")
    assert refused.status_code == 403 and 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    assert 'scope="Visits.Read Pets.Write"' in refused.headers["WWW-Authenticate"]

    # The form opens on what is stored; emptied scopes mean the document's again.
    browser.click("tr[data-operation='listVisits'] a.button")
    assert browser.find("input[name=scopes]").get_attribute("value") == "Visits.Read Pets.Write"
    assert browser.find("input[name=anyTenantUser]").is_selected()
    browser.fill("input[name=scopes]", "")
    browser.click("input[name=anyTenantUser]")
    browser.click("form button[type=submit]")
    browser.wait_text(".notice.ok", "Bound listVisits")
    assert stored() == {"type": "oauth2", "scopes": ["Pets.Read"]}
    assert call("Pets.Read").status_code == 200 and call("Visits.Read").status_code == 403
    browser.shoot("api-oauth2")


# Holds every MSAL token request of the page until the test opens the gate (the wrapped method is
# MSAL's own, so the console's code runs unchanged), and notes when the cache has been cleared.
HOLD_TOKEN_REQUESTS = """
const proto = window.msal.PublicClientApplication.prototype;
const acquire = proto.acquireTokenSilent, clear = proto.clearCache;
Object.assign(window, {asked: 0, settled: 0, clearCalls: 0, cleared: false});
window.tokenGate = new Promise((resolve) => { window.openTokenGate = resolve; });
proto.acquireTokenSilent = async function (...args) {
  window.asked += 1;
  try { await window.tokenGate; return await acquire.apply(this, args); } finally { window.settled += 1; }
};
proto.clearCache = async function (...args) {
  window.clearCalls += 1;
  const result = await clear.apply(this, args);
  window.cleared = true;
  return result;
};
"""


def test_a_sign_out_while_the_page_waits_for_its_token_leaves_the_tab_signed_out(signed: Session) -> None:
    """The page's fetches ask MSAL for a token first; a sign-out meanwhile must not let that request
    go on against the cleared cache: it found no token there and sent the person back to the
    provider, to come back signed in (or wrote new tokens into the signed-out tab)."""
    browser, idp = signed.browser, signed.idp
    browser.open("/console/scenarios")
    browser.wait(lambda: "…" not in browser.text("table.scenarios tbody"), what="the last runs")
    signed_in_at = len(idp.authorize_requests)
    browser.script(HOLD_TOKEN_REQUESTS)
    browser.click_text("#nav a", "Scenarios")  # the page loads again in place, and waits for its token
    browser.wait(lambda: browser.script("return window.asked;") >= 1, what="the page to ask for its token")
    browser.click("#sign-out")
    # The token request goes on as late as sign-out lets it: once the cache is cleared, or at
    # once if sign-out waits for it before clearing the cache.
    started = "return sessionStorage.getItem('junction.signin') === null && (window.cleared || window.clearCalls === 0);"
    browser.wait(lambda: browser.script(started), what="sign-out to start")
    browser.script("window.openTokenGate();")
    browser.find("#aad-sign-in")
    browser.wait(lambda: browser.script("return window.settled === window.asked;"), what="the token request to settle")
    # Without waiting for it, the request went on against the cleared cache and tried the
    # provider in a hidden frame (which the CSP refused): it must not go anywhere.
    assert browser.problems() == []
    assert browser.path() == "/console/signin" and browser.find_all("#sign-out") == []
    assert browser.script("return document.getElementById('who').textContent;") == ""
    assert _storage(browser, "sessionStorage") == {}
    assert len(idp.authorize_requests) == signed_in_at  # nobody was sent to sign in again
    browser.click("#aad-sign-in")  # signed in again, as the next test expects
    browser.find("table.scenarios", timeout=30)


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
