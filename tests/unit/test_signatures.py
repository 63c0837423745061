"""Signed webhooks (core.identity.signatures): each scheme verified as its sender signs.

The GitHub and Slack cases use the exact test values of those senders' documentation
(docs.github.com "Validating webhook deliveries", api.slack.com "Verifying requests from Slack");
Stripe's are signed as its documentation describes ("Verify manually": ``t.body``, HMAC-SHA256,
hex, ``v1``). Hostile variants: header case, clock skew both ways, the tolerance's edges, several
``v1``, malformed and oversized headers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from core.apiops.bindings import normalise_binding
from core.identity.signatures import InvalidSignature, SignatureSecretMissing, normalise_signature, verify
from core.kernel.errors import BadRequest
from core.kernel.jsonschema import validate
from core.kernel.settings import Settings, StorageSettings
from core.scenarios import schemas

GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TIMESTAMP = 1531420618
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar"
    b"&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com"
    b"%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

STRIPE_SECRET = "whsec_test_secret"
ENV = {"JUNCTION_SECRET_HOOK": "", "JUNCTION_SECRET_GITHUB": GITHUB_SECRET, "JUNCTION_SECRET_SLACK": SLACK_SECRET, "JUNCTION_SECRET_STRIPE": STRIPE_SECRET}


def config(scheme: str, secret: str, **extra: Any) -> dict[str, Any]:
    return {"scheme": scheme, "secret": {"secret": secret}, **extra}


def stripe_header(body: bytes, t: int, secret: str = STRIPE_SECRET) -> str:
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def test_github_documentation_values_verify() -> None:
    found = verify(config("github", "JUNCTION_SECRET_GITHUB"), GITHUB_BODY, {"x-hub-signature-256": GITHUB_SIGNATURE}, now=1000.0, env=ENV)
    assert found.digest == GITHUB_SIGNATURE.removeprefix("sha256=")
    assert found.until == 1000.0 + 300  # no timestamp: remembered for the tolerance from now


def test_slack_documentation_values_verify_at_their_time_and_not_long_after() -> None:
    headers = {"x-slack-signature": SLACK_SIGNATURE, "x-slack-request-timestamp": str(SLACK_TIMESTAMP)}
    found = verify(config("slack", "JUNCTION_SECRET_SLACK"), SLACK_BODY, headers, now=SLACK_TIMESTAMP + 10, env=ENV)
    assert found.until == SLACK_TIMESTAMP + 300
    with pytest.raises(InvalidSignature, match="more than 300 s"):
        verify(config("slack", "JUNCTION_SECRET_SLACK"), SLACK_BODY, headers, now=SLACK_TIMESTAMP + 301, env=ENV)


def test_stripe_signature_with_several_v1_and_a_v0() -> None:
    body = b'{"id": "evt_1", "object": "event"}'
    good = stripe_header(body, 1_700_000_000)
    t, v1 = good.split(",")
    rolled = f"{t},v1={'0' * 64},{v1},v0={'1' * 64}"  # an old secret's v1 first, then the current one
    found = verify(config("stripe", "JUNCTION_SECRET_STRIPE"), body, {"stripe-signature": rolled}, now=1_700_000_100, env=ENV)
    assert found.until == 1_700_000_000 + 300
    only_wrong = f"{t},v1={'0' * 64}"
    with pytest.raises(InvalidSignature, match="does not match"):
        verify(config("stripe", "JUNCTION_SECRET_STRIPE"), body, {"stripe-signature": only_wrong}, now=1_700_000_100, env=ENV)


@pytest.mark.parametrize("offset", [-300, -299, 0, 299, 300])
def test_timestamps_at_the_tolerance_edges_are_accepted_both_ways(offset: int) -> None:
    body = b"{}"
    now = 1_700_000_000
    header = stripe_header(body, now + offset)  # a sender clock behind or ahead of ours
    verify(config("stripe", "JUNCTION_SECRET_STRIPE"), body, {"stripe-signature": header}, now=now, env=ENV)


@pytest.mark.parametrize("offset", [-301, 301, -10**9, 10**9])
def test_timestamps_beyond_the_tolerance_are_refused(offset: int) -> None:
    body = b"{}"
    now = 1_700_000_000
    header = stripe_header(body, now + offset)
    with pytest.raises(InvalidSignature):
        verify(config("stripe", "JUNCTION_SECRET_STRIPE"), body, {"stripe-signature": header}, now=now, env=ENV)


def test_a_smaller_tolerance_is_honoured() -> None:
    body = b"{}"
    header = stripe_header(body, 1000)
    cfg = config("stripe", "JUNCTION_SECRET_STRIPE", toleranceSeconds=5)
    verify(cfg, body, {"stripe-signature": header}, now=1005, env=ENV)
    with pytest.raises(InvalidSignature):
        verify(cfg, body, {"stripe-signature": header}, now=1006, env=ENV)


def test_generic_hmac_in_hex_prefixed_hex_and_base64_and_a_custom_header() -> None:
    secret = "s3cret-generic"
    env = {"JUNCTION_SECRET_GEN": secret}
    body = b'{"order": 7}'
    mac = hmac.new(secret.encode(), body, hashlib.sha256)
    cfg = config("hmac-sha256", "JUNCTION_SECRET_GEN", header="X-Shop-Hmac")
    for value in (mac.hexdigest(), mac.hexdigest().upper(), "sha256=" + mac.hexdigest(), base64.b64encode(mac.digest()).decode()):
        verify(cfg, body, {"x-shop-hmac": value}, now=0, env=env)
    with pytest.raises(InvalidSignature, match="no X-Shop-Hmac"):
        verify(cfg, body, {"x-signature-256": mac.hexdigest()}, now=0, env=env)


def test_the_body_is_the_raw_bytes_a_changed_byte_fails() -> None:
    cfg = config("github", "JUNCTION_SECRET_GITHUB")
    for body in (b"Hello, World! ", b"hello, World!", b"Hello,  World!", b""):
        with pytest.raises(InvalidSignature, match="does not match"):
            verify(cfg, body, {"x-hub-signature-256": GITHUB_SIGNATURE}, now=0, env=ENV)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",  # no sha256= (GitHub always sends it)
        "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1",
        "sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "sha256=" + "a" * 5000,
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17\x00",
    ],
)
def test_malformed_github_headers_are_invalid_signatures(value: str) -> None:
    with pytest.raises(InvalidSignature):
        verify(config("github", "JUNCTION_SECRET_GITHUB"), GITHUB_BODY, {"x-hub-signature-256": value}, now=0, env=ENV)


@pytest.mark.parametrize(
    "header",
    [
        "v1=" + "a" * 64,  # no t
        "t=1700000000",  # no v1
        "t=abc,v1=" + "a" * 64,
        "t=-5,v1=" + "a" * 64,
        "t=1700000000.5,v1=" + "a" * 64,
        "t=١٧٠٠٠٠٠٠٠٠,v1=" + "a" * 64,  # Arabic-Indic digits: isdigit() but not a Unix time
        "t=1700000000," + ",".join(["v1=" + "a" * 64] * 17),
    ],
)
def test_malformed_stripe_headers_are_invalid_signatures(header: str) -> None:
    with pytest.raises(InvalidSignature):
        verify(config("stripe", "JUNCTION_SECRET_STRIPE"), b"{}", {"stripe-signature": header}, now=1_700_000_000, env=ENV)


def test_slack_without_its_timestamp_header_is_refused() -> None:
    with pytest.raises(InvalidSignature, match="X-Slack-Request-Timestamp"):
        verify(config("slack", "JUNCTION_SECRET_SLACK"), SLACK_BODY, {"x-slack-signature": SLACK_SIGNATURE}, now=SLACK_TIMESTAMP, env=ENV)


def test_the_signature_of_another_timestamp_does_not_verify() -> None:
    headers = {"x-slack-signature": SLACK_SIGNATURE, "x-slack-request-timestamp": str(SLACK_TIMESTAMP + 1)}
    with pytest.raises(InvalidSignature, match="does not match"):
        verify(config("slack", "JUNCTION_SECRET_SLACK"), SLACK_BODY, headers, now=SLACK_TIMESTAMP, env=ENV)


def test_a_secret_that_is_not_set_is_the_operators_500_not_the_callers_401() -> None:
    with pytest.raises(SignatureSecretMissing) as caught:
        verify(config("github", "JUNCTION_SECRET_HOOK"), GITHUB_BODY, {"x-hub-signature-256": GITHUB_SIGNATURE}, now=0, env=ENV)
    assert GITHUB_SECRET not in caught.value.message


# -- saving: the schema and the normalised form -----------------------------------------------


def test_saving_fills_in_the_header_and_tolerance_and_checks_the_secret_is_set() -> None:
    stored = normalise_signature(config("stripe", "JUNCTION_SECRET_STRIPE"), "x.signature", env=ENV)
    assert stored == {"scheme": "stripe", "secret": {"secret": "JUNCTION_SECRET_STRIPE"}, "header": "Stripe-Signature", "toleranceSeconds": 300}
    with pytest.raises(BadRequest, match=r"^x\.signature\.secret: the app setting JUNCTION_SECRET_NOPE is not set"):
        normalise_signature(config("stripe", "JUNCTION_SECRET_NOPE"), "x.signature", env=ENV)


@pytest.mark.parametrize(
    ("signature", "field"),
    [
        ({"scheme": "md5", "secret": {"secret": "JUNCTION_SECRET_A"}}, "scenario.externalTriggers.signature.scheme"),
        ({"scheme": "github", "secret": "JUNCTION_SECRET_A"}, "scenario.externalTriggers.signature.secret"),
        ({"scheme": "github", "secret": {"secret": "PATH"}}, "scenario.externalTriggers.signature.secret.secret"),
        ({"scheme": "github", "secret": {"secret": "JUNCTION_SECRET_A"}, "toleranceSeconds": 0}, "scenario.externalTriggers.signature.toleranceSeconds"),
        ({"scheme": "github", "secret": {"secret": "JUNCTION_SECRET_A"}, "toleranceSeconds": 3601}, "scenario.externalTriggers.signature.toleranceSeconds"),
        ({"scheme": "github", "secret": {"secret": "JUNCTION_SECRET_A"}, "header": "X Bad"}, "scenario.externalTriggers.signature.header"),
        ({"scheme": "github", "secret": {"secret": "JUNCTION_SECRET_A"}, "extra": 1}, "scenario.externalTriggers.signature"),
        ({"secret": {"secret": "JUNCTION_SECRET_A"}}, "scenario.externalTriggers.signature"),
    ],
)
def test_a_bad_scenario_signature_is_a_400_naming_the_field(signature: dict[str, Any], field: str) -> None:
    document = {"name": "s", "externalTriggers": {"enabled": True, "signature": signature}, "process": {"steps": []}}
    with pytest.raises(BadRequest) as caught:
        validate(document, schemas.SCENARIO, "scenario")
    assert caught.value.message.startswith(f"{field}:"), caught.value.message


SETTINGS = Settings(storage=StorageSettings(connection_string="UseDevelopmentStorage=true"))
OPERATION = {"method": "POST", "path": "/hooks/github"}
SCENARIO_ID = "5f0c1c1e-3d0b-4c41-9a5e-0d6a3f4b2a10"


def test_a_binding_takes_respond_and_a_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUNCTION_SECRET_GITHUB", GITHUB_SECRET)
    binding = normalise_binding(
        {"scenarioId": SCENARIO_ID, "respond": "async", "signature": config("github", "JUNCTION_SECRET_GITHUB")}, OPERATION, SETTINGS
    )
    assert binding["respond"] == "async"
    assert binding["signature"]["header"] == "X-Hub-Signature-256"
    assert normalise_binding({"scenarioId": SCENARIO_ID}, OPERATION, SETTINGS)["respond"] == "sync"
    assert "signature" not in normalise_binding({"scenarioId": SCENARIO_ID}, OPERATION, SETTINGS)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"respond": "later"}, "binding.respond"),
        ({"signature": {"scheme": "stripe"}}, "binding.signature"),
        ({"signature": {"scheme": "stripe", "secret": {"secret": "JUNCTION_SECRET_UNSET_X"}}}, "binding.signature.secret"),
    ],
)
def test_a_bad_binding_is_a_400_naming_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRequest) as caught:
        normalise_binding({"scenarioId": SCENARIO_ID, **body}, OPERATION, SETTINGS)
    assert caught.value.message.startswith(f"{field}:"), caught.value.message
