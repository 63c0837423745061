"""Property-based fuzzing of Junction's own OpenAPI document with schemathesis, once per
authentication scheme, against devhost on Azurite (issue 7).

The document describes every route, including the operations of a bound example API. Each run
asserts, for every generated request: no 5xx (``not_a_server_error``); statuses, content types,
headers and bodies as documented (the ``*_conformance`` checks); invalid input refused
(``negative_data_rejection``); and no 2xx when the credentials are left out (``ignored_auth``).

Two checks are off, for reasons the schema language cannot carry:
- ``positive_data_acceptance`` would require every schema-valid request to succeed, but some
  valid-looking values are refused by rules a JSON Schema cannot state: server-issued
  ``skiptoken``s, the outbound host allow-list, step references and JMESPath that must compile,
  OpenAPI documents that must themselves be valid.
- ``unsupported_method`` sends TRACE, which the Functions host cannot route to any function (it
  answers 404 itself); every other undeclared method on Junction's paths is a 405 with ``Allow``.

``make test`` runs a bounded number of examples (``JUNCTION_FUZZ_EXAMPLES``, default 6 per
operation); ``make fuzz`` runs many more.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.identity.tokens import create_token
from devhost.azurite import Azurite
from tests.e2e.conftest import aad_env, serve_junction
from tests.support.idp import AUDIENCE, LocalIdentityProvider
from tests.support.pki import Authority, header_value

EXAMPLES = int(os.environ.get("JUNCTION_FUZZ_EXAMPLES", "6"))
GUID = "1a990d32-1299-4c6e-9ac7-aa1800cde08d"
ST = str(Path(sys.executable).parent / "st")
CHECKS = "all"
EXCLUDED = "positive_data_acceptance,unsupported_method"
EXAMPLE_API = {
    "openapi": "3.0.3",
    "info": {"title": "fuzzed", "version": "1"},
    "servers": [{"url": "/fuzz"}],
    "paths": {
        "/orders/{id}": {
            "get": {
                "operationId": "getOrder",
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "format": "int32"}},
                    {"name": "expand", "in": "query", "schema": {"type": "array", "items": {"type": "string", "enum": ["lines", "customer"]}}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}},
                ],
                "responses": {"200": {"description": "ok"}},
            }
        },
        "/orders": {
            "post": {
                "operationId": "addOrder",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {
                        "type": "object", "required": ["sku", "qty"], "additionalProperties": False,
                        "properties": {"sku": {"type": "string", "minLength": 1, "maxLength": 20}, "qty": {"type": "integer", "minimum": 1, "maximum": 1000}},
                    }}},
                },
                "responses": {"200": {"description": "ok"}},
            }
        },
        "/status": {"get": {"operationId": "status", "responses": {"200": {"description": "ok"}}}},
        "/partners/{code}": {
            "get": {
                "operationId": "getPartner",
                "parameters": [{"name": "code", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 12}}],
                "responses": {"200": {"description": "ok"}},
            }
        },
        "/reports/{year}-{month}-{name}.json": {
            "get": {
                "operationId": "getReport",
                "parameters": [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in ("year", "month", "name")],
                "responses": {"200": {"description": "ok"}},
            }
        },
        "/claims": {
            "get": {
                "operationId": "getClaims",
                "parameters": [{"name": "since", "in": "query", "schema": {"type": "string", "format": "date"}}],
                "responses": {"200": {"description": "ok"}},
            }
        },
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIdentityProvider]:
    with LocalIdentityProvider(tmp_path_factory.mktemp("idp-fuzz")) as provider:
        yield provider


@pytest.fixture(scope="module")
def fuzzed(azurite: Azurite, idp: LocalIdentityProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    # Client certificates arrive as App Service forwards them (X-ARR-ClientCert over HTTPS), on
    # a deployment that turned them on.
    extra = aad_env(idp, JUNCTION_AAD_ADMIN_ROLE="Junction.Admin", JUNCTION_CLIENT_CERT_ENABLED="true", JUNCTION_SECRET_FUZZ_HOOK="fuzz-hook-secret")
    log_dir = tmp_path_factory.mktemp("devhost-fuzz")
    args = ["--no-timers", "--trust-forwarded-client-cert"]
    partners = Authority("Fuzz Partners CA")
    with serve_junction(azurite, "e2efuzz", log_dir, extra_env=extra, args=args) as junction:
        admin = junction.admin_token
        trigger = create_token(junction.storage, name="fuzz trigger", scopes=["trigger"]).token
        scenario = junction.create_scenario(process={"steps": [{"type": "return", "value": {"jmespath": "trigger.data.path"}}]})
        with junction.admin() as client:
            assert client.put("/management/apis/fuzzed", json=EXAMPLE_API).status_code in (200, 201)
            auth: dict[str, dict[str, Any]] = {
                "getOrder": {"type": "apiKey"}, "addOrder": {"type": "basic"}, "status": {"type": "none"},
                "getPartner": {"type": "certificate", "trustedIssuers": [partners.pem]},
                "getClaims": {"type": "oauth2", "scopes": ["orders.read"]}, "getReport": {"type": "none"},
            }  # fmt: skip
            for operation, authentication in auth.items():
                binding = {"scenarioId": scenario["id"], "authentication": authentication}
                response = client.put(f"/management/apis/fuzzed/operations/{operation}", json=binding)
                assert response.status_code == 200, response.text
            key = client.post("/management/apikeys", json={"name": "fuzz", "ruleset": [{"path": "/fuzz/**"}]}).json()["key"]
            assert client.post("/management/users", json={"username": "fuzzer", "password": "fuzz password"}).status_code == 201
        aad = idp.mint(idp.app_claims(AUDIENCE, roles=["Junction.Admin"]))
        reader = idp.mint(idp.user_claims(AUDIENCE, scp="orders.read"))
        certificate = header_value(partners.issue("Fuzz Partner"))
        yield {"url": junction.url, "admin": admin, "trigger": trigger, "apikey": key, "aad": aad, "reader": reader, "certificate": certificate,
               "connection": junction.env["AzureWebJobsStorage"], "prefix": junction.env["JUNCTION_TABLE_PREFIX"]}  # fmt: skip


def _fuzz(fuzzed: dict[str, str], tmp_path: Path, *headers: str, include: list[str] | None = None) -> None:
    # One worker: with two, hypothesis parses lambda sources on two threads at once, and
    # CPython 3.11.7's ast.parse is not safe for that ("AST constructor recursion depth mismatch").
    # A URL over 4,096 bytes (a long skiptoken, say) is refused with 414 by the Functions host,
    # before Junction sees it; schemathesis does not count 414 as a rejection unless told.
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "[checks.negative_data_rejection]\n"
        'expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "414", "415", "422", "428", "429"]\n'
    )
    command = [
        ST, "--config-file", str(config), "run", f"{fuzzed['url']}/management/openapi.json",
        "--checks", CHECKS, "--exclude-checks", EXCLUDED,
        "--max-examples", str(EXAMPLES), "--seed", "7", "--workers", "1",
        "--request-timeout", "30", "--generation-database", "none", "--no-color",
        "--phases", "examples,coverage,fuzzing",
    ]  # fmt: skip
    for header in headers:
        command += ["-H", header]
    if include:  # one regex: schemathesis keeps only the last of repeated --include-path-regex
        command += ["--include-path-regex", "|".join(f"(?:{pattern})" for pattern in include)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, f"{result.stdout[-20000:]}\n{result.stderr[-3000:]}"
    generated = re.search(r"(\d+) generated", result.stdout)
    assert generated and int(generated.group(1)) > 0, result.stdout[-3000:]
    scheme = [header.split()[1] if header.startswith("Authorization") else header.split(":")[0] for header in headers]
    print(f"schemathesis with {scheme or 'no credentials'}, paths {include or 'all'}: {generated.group(0)}")  # docs/reliability.md


def test_fuzz_without_credentials(fuzzed: dict[str, str], tmp_path: Path) -> None:
    _fuzz(fuzzed, tmp_path)


def test_fuzz_with_an_admin_personal_access_token(fuzzed: dict[str, str], tmp_path: Path) -> None:
    _fuzz(fuzzed, tmp_path, f"Authorization: Bearer {fuzzed['admin']}")


def test_fuzz_with_a_trigger_token(fuzzed: dict[str, str], tmp_path: Path) -> None:
    _fuzz(fuzzed, tmp_path, f"Authorization: Bearer {fuzzed['trigger']}", include=["^/ExternalData/"])


def test_fuzz_with_an_azure_ad_token(fuzzed: dict[str, str], tmp_path: Path) -> None:
    _fuzz(fuzzed, tmp_path, f"Authorization: Bearer {fuzzed['aad']}", include=["^/management/scenarios", "^/ExternalData/"])


def test_fuzz_the_bound_api_with_its_own_credentials(fuzzed: dict[str, str], tmp_path: Path) -> None:
    basic = base64.b64encode(b"fuzzer:fuzz password").decode()
    _fuzz(fuzzed, tmp_path, f"X-Api-Key: {fuzzed['apikey']}", include=["^/fuzz/orders/"])
    _fuzz(fuzzed, tmp_path, f"Authorization: Basic {basic}", include=["^/fuzz/orders$", "^/fuzz/status"])


def test_fuzz_the_bound_api_with_a_client_certificate_and_an_oauth2_token(fuzzed: dict[str, str], tmp_path: Path) -> None:
    _fuzz(fuzzed, tmp_path, "X-Forwarded-Proto: https", f"X-ARR-ClientCert: {fuzzed['certificate']}", include=["^/fuzz/partners/"])
    _fuzz(fuzzed, tmp_path, f"Authorization: Bearer {fuzzed['reader']}", include=["^/fuzz/claims"])


def test_the_fuzzed_document_describes_the_bound_api(fuzzed: dict[str, str]) -> None:
    import httpx

    document = httpx.get(f"{fuzzed['url']}/management/openapi.json", timeout=30).json()
    assert document["paths"]["/fuzz/orders/{id}"]["get"]["security"] == [{"apiKey": []}]
    assert document["paths"]["/fuzz/orders"]["post"]["security"] == [{"basic": []}]
    assert document["paths"]["/fuzz/partners/{code}"]["get"]["security"] == [{"clientCertificate": []}]
    assert document["paths"]["/fuzz/claims"]["get"]["security"] == [{"bearer": []}]
    assert json.dumps(document).count("ExternalData") >= 2


# -- Classes of hostile input found from outside (issue 13), generated rather than listed --------

HOSTILE_ATOMS = ["\\ud800", "\\udfff", "\\udc00\\ud800", "\\ud83d", "\\u0000", "\\u000b", "\\u001b", "\\u007f", "\\u0085", "\\u2028", "\\r\\n", "\\t"]
"""JSON escapes: lone surrogates and control characters."""


def _fresh_admin(fuzzed: dict[str, str]) -> str:
    """An admin token of its own: the schemathesis runs before may have revoked the shared one."""
    from core.kernel.settings import load_settings
    from core.store.storage import Storage

    storage = Storage.from_settings(load_settings({"AzureWebJobsStorage": fuzzed["connection"], "JUNCTION_TABLE_PREFIX": fuzzed["prefix"]}))
    return create_token(storage, name="hostile fuzz", scopes=["admin"]).token


def _hostile_text() -> Any:
    from hypothesis import strategies as st

    return st.lists(st.one_of(st.sampled_from(HOSTILE_ATOMS), st.text(alphabet="ab-.{}", max_size=3)), min_size=1, max_size=6).map("".join)


def _string_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, str):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _string_paths(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _string_paths(v, (*path, i))]
    return []


def _json_with(value: Any, target: tuple[Any, ...], escaped: str, path: tuple[Any, ...] = ()) -> str:
    """``value`` as JSON text, with the string at ``target`` replaced by raw JSON escapes."""
    if path == target:
        return f'"{escaped}"'
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_json_with(v, target, escaped, (*path, k))}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_json_with(v, target, escaped, (*path, i)) for i, v in enumerate(value)) + "]"
    return json.dumps(value)


def test_fuzz_lone_surrogates_and_control_characters_in_every_body_and_key(fuzzed: dict[str, str]) -> None:
    """Every string of valid management and API bodies, and every key, replaced by generated
    mixtures of lone surrogates and control characters: never a 5xx, never a traceback."""
    import httpx
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    bodies = [
        ("POST", "/management/scenarios", {"name": "n", "description": "d", "process": {"steps": [{"type": "return", "value": "v"}]}}),
        ("POST", "/management/tokens", {"name": "n", "scopes": ["trigger"]}),
        ("POST", "/management/apikeys", {"name": "n", "ruleset": [{"path": "/fuzz/x"}]}),
        ("POST", "/management/users", {"username": "fuzzy", "password": "fuzz password"}),
        ("POST", "/fuzz/orders", {"sku": "s", "qty": 1}),
        ("PUT", "/management/apis/fuzzhostile", {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}}),
    ]
    admin = {"Authorization": f"Bearer {_fresh_admin(fuzzed)}", "Content-Type": "application/json"}
    basic = {"Authorization": "Basic " + base64.b64encode(b"fuzzer:fuzz password").decode(), "Content-Type": "application/json"}
    with httpx.Client(base_url=fuzzed["url"], timeout=30) as client:

        @settings(max_examples=EXAMPLES * 10, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
        @given(st.sampled_from(bodies), st.data(), _hostile_text())
        def check(case: tuple[str, str, dict[str, Any]], data: Any, escaped: str) -> None:
            method, path, body = case
            target = data.draw(st.sampled_from(_string_paths(body)))
            text = _json_with(body, target, escaped)
            response = client.request(method, path, content=text.encode(), headers=basic if path.startswith("/fuzz") else admin)
            assert response.status_code < 500, (method, path, text, response.text[:300])
            assert "Traceback" not in response.text
            key = client.get("/management/scenarios", headers=admin)  # every listing still reads
            assert key.status_code == 200
            cache = client.get(f"/ExternalData/GetCacheData/{GUID}", params={"keyJson": f'"{escaped}"'}, headers=admin)
            assert cache.status_code in (400, 404), cache.text

        check()
        for listing in ("/management/tokens", "/management/apikeys", "/management/users", "/management/apis"):
            assert client.get(listing, headers=admin).status_code == 200


def test_fuzz_long_template_segments(fuzzed: dict[str, str]) -> None:
    """Generated segments of separators and digits, up to past the 1,024-character limit, against
    bound templates: a 404, 400 or the operation's own answer, never a 5xx (a backtracking regex
    took 17 s of CPU for one 2,500-character segment)."""
    import httpx
    from hypothesis import given, settings
    from hypothesis import strategies as st

    with httpx.Client(base_url=fuzzed["url"], timeout=30) as client:

        @settings(max_examples=EXAMPLES * 5, deadline=None, database=None, derandomize=True)
        @given(st.sampled_from("-.9x"), st.integers(min_value=1, max_value=1100), st.sampled_from(["", ".json", "-", "%2F"]))
        def check(char: str, length: int, tail: str) -> None:
            for prefix in ("/fuzz/reports/", "/fuzz/orders/", "/fuzz/partners/", "/fuzz/"):
                response = client.get(prefix + char * length + tail, headers={"X-Api-Key": fuzzed["apikey"]})
                assert response.status_code in (200, 400, 401, 403, 404, 405), (prefix, length, response.text[:200])

        check()


def test_fuzz_recursive_refs_in_imported_documents(fuzzed: dict[str, str]) -> None:
    """Generated documents whose schemas refer to each other (self-references, cycles, references
    that multiply), used as parameter and body schemas and bound: every import answers 2xx or 400,
    and the public document stays bounded (it was 8 MB for one 30-property schema)."""
    import httpx
    from hypothesis import given, settings
    from hypothesis import strategies as st

    admin = {"Authorization": f"Bearer {_fresh_admin(fuzzed)}"}
    names = [f"S{i}" for i in range(6)]
    schema = st.fixed_dictionaries({
        "type": st.just("object"),
        "properties": st.dictionaries(st.sampled_from([f"p{i}" for i in range(14)]), st.sampled_from(names).map(lambda n: {"$ref": f"#/components/schemas/{n}"}), max_size=14),
    })  # fmt: skip
    with httpx.Client(base_url=fuzzed["url"], timeout=60) as client:
        scenario = client.post("/management/scenarios", headers=admin, json={"name": "refs", "process": {"steps": [{"type": "return", "value": "ok"}]}}).json()

        @settings(max_examples=EXAMPLES * 2, deadline=None, database=None, derandomize=True)
        @given(st.fixed_dictionaries({n: schema for n in names}), st.sampled_from(names), st.sampled_from(names))
        def check(schemas: dict[str, Any], param: str, body: str) -> None:
            document = {"openapi": "3.0.3", "info": {"title": "refs", "version": "1"}, "servers": [{"url": "/fuzzrefs"}],
                        "paths": {"/r": {"post": {"operationId": "r", "responses": {"200": {"description": "ok"}},
                                  "parameters": [{"name": "q", "in": "query", "schema": {"$ref": f"#/components/schemas/{param}"}}],
                                  "requestBody": {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}}}}}},
                        "components": {"schemas": schemas}}  # fmt: skip
            imported = client.put("/management/apis/fuzzrefs", headers=admin, json=document)
            assert imported.status_code in (200, 201, 400), imported.text[:300]
            if imported.status_code == 400:
                assert "expands to more than" in imported.text
                return
            bound = client.put("/management/apis/fuzzrefs/operations/r", headers=admin, json={"scenarioId": scenario["id"]})
            assert bound.status_code == 200, bound.text[:300]
            published = client.get("/management/openapi.json")
            assert published.status_code == 200 and len(published.content) < 1_200_000 + 100_000
            assert client.post("/fuzzrefs/r", json={}).status_code in (200, 400)

        check()
        client.delete("/management/apis/fuzzrefs", headers=admin)


def test_fuzz_signature_headers_bodies_and_status_tokens(fuzzed: dict[str, str]) -> None:
    """Generated signature headers (near-valid Stripe and GitHub forms, timestamps far and near,
    many v1s, arbitrary text) and bodies against signed scenarios, and generated status-URL tokens:
    always 401 (nothing generated carries the right HMAC) or 404/400, never a 5xx or a run."""
    import time

    import httpx
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    admin = {"Authorization": f"Bearer {_fresh_admin(fuzzed)}"}
    now = int(time.time())
    hexes = st.text("0123456789abcdefABCDEF", min_size=62, max_size=66)
    stripe = st.builds(lambda t, v: ",".join([f"t={t}", *(f"v1={h}" for h in v)]), st.integers(now - 10**6, now + 10**6), st.lists(hexes, max_size=20))
    github = st.builds(lambda h: f"sha256={h}", hexes)
    anything = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300).map(str.strip)  # h11 sends no edge spaces
    with httpx.Client(base_url=fuzzed["url"], timeout=30) as client:
        ids = {}
        for scheme in ("stripe", "github"):
            signature = {"scheme": scheme, "secret": {"secret": "JUNCTION_SECRET_FUZZ_HOOK"}}
            document = {"name": f"fuzz {scheme}", "externalTriggers": {"enabled": True, "allowAnonymous": True, "signature": signature},
                        "process": {"steps": []}}  # fmt: skip
            created = client.post("/management/scenarios", json=document, headers=admin)
            assert created.status_code == 201, created.text
            ids[scheme] = created.json()["id"]
        names = {"stripe": "Stripe-Signature", "github": "X-Hub-Signature-256"}

        @settings(max_examples=EXAMPLES * 10, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
        @given(st.sampled_from(["stripe", "github"]), st.one_of(stripe, github, anything), st.binary(max_size=300))
        def check(scheme: str, header: str, body: bytes) -> None:
            response = client.post(f"/ExternalData/Accept/{ids[scheme]}", content=body, headers={names[scheme]: header, "Content-Type": "application/json"})
            assert response.status_code == 401, (scheme, header, body, response.text[:300])
            assert response.json()["error"]["code"] == "InvalidSignature"

        @settings(max_examples=EXAMPLES * 10, deadline=None, database=None, derandomize=True)
        @given(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=", min_size=1, max_size=1100))
        def check_token(token: str) -> None:
            response = client.get(f"/ExternalData/RunStatus/{token}")
            assert response.status_code in (400, 404), (token, response.text[:300])
            assert "Traceback" not in response.text

        check()
        check_token()
        for scenario_id in ids.values():
            runs = client.get(f"/management/scenarios/{scenario_id}/runs", headers=admin).json()["value"]
            assert runs == []


def _expected_address(header: str) -> Any:
    """The oracle: the last X-Forwarded-For entry, read independently of Junction's parser."""
    import ipaddress

    entries = [e.strip() for e in header.split(",") if e.strip()]
    if not entries:
        return None
    text = entries[-1]
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not re.fullmatch(r":[0-9]+", rest)):
            return None
        text = host
    elif text.count(":") == 1:
        text, _, port = text.partition(":")
        if not port.isdigit():
            return None
    if "%" in text:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def test_fuzz_forwarded_for_and_allow_list_entries(fuzzed: dict[str, str]) -> None:
    """Generated X-Forwarded-For values (ports, brackets, IPv4-mapped, zone ids, garbage, several
    entries, any header-name case) against an allow-listed scenario, as the front end would pass
    them: 200 exactly when the last entry is inside the list, otherwise 403 IpNotAllowed; and
    generated allow-list entries (prefix lengths 0 to past the maximum, host bits, spaces) saved as
    a scenario: 201 with the canonical range exactly when ``ipaddress`` reads the entry as a
    strict network, otherwise a 400 naming it. Never a 5xx."""
    import ipaddress

    import httpx
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    admin = {"Authorization": f"Bearer {_fresh_admin(fuzzed)}"}
    networks = [ipaddress.ip_network("203.0.113.0/24"), ipaddress.ip_network("2001:db8::/32")]
    octet = st.integers(min_value=0, max_value=300).map(str)
    v4 = st.one_of(st.tuples(octet, octet, octet, octet).map(".".join), st.sampled_from(["203.0.113.1", "203.0.113.255", "203.0.114.0"]))
    v6 = st.one_of(st.ip_addresses(v=6).map(str), st.sampled_from(["2001:db8::1", "2001:DB8::ffff", "2001:db9::", "::ffff:203.0.113.9", "::203.0.113.9"]))
    entry = st.one_of(
        v4, v4.map(lambda a: f"{a}:443"), v4.map(lambda a: f"{a}:x"), v6, v6.map(lambda a: f"[{a}]:8080"), v6.map(lambda a: f"[{a}"),
        v6.map(lambda a: f"{a}%eth0"), st.text(alphabet="0123456789abcdef.:[]% ", max_size=20),
    )  # fmt: skip
    header = st.lists(entry, min_size=1, max_size=4).map(", ".join).map(str.strip)  # as a header value: no outer spaces
    name = st.sampled_from(["X-Forwarded-For", "x-forwarded-for", "X-FORWARDED-FOR", "x-Forwarded-FOR"])
    prefix = st.integers(min_value=-1, max_value=130)
    cidr = st.one_of(
        st.tuples(v4, prefix).map(lambda t: f"{t[0]}/{t[1]}"), st.tuples(v6, prefix).map(lambda t: f"{t[0]}/{t[1]}"),
        v4, v6, v4.map(lambda a: f" {a}"), st.text(alphabet="0123456789abcdef.:/ ", max_size=24),
    )  # fmt: skip
    with httpx.Client(base_url=fuzzed["url"], timeout=30) as client:
        created = client.post(
            "/management/scenarios",
            headers=admin,
            json={"name": "ipfuzz", "externalTriggers": {"enabled": True, "allowAnonymous": True, "ipAllowList": [str(n) for n in networks]},
                  "process": {"steps": [{"type": "return", "value": "ok"}]}},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        url = f"/ExternalData/GetCacheData/{created.json()['id']}"

        @settings(max_examples=EXAMPLES * 20, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
        @given(header, name)
        def check_address(value: str, header_name: str) -> None:
            response = client.get(url, params={"keyJson": '"k"'}, headers={header_name: value})
            address = _expected_address(value)
            inside = address is not None and any(address in n for n in networks if n.version == address.version)
            if inside:
                assert response.status_code == 404, (value, response.text)  # allowed: no such cache entry
            else:
                assert response.status_code == 403 and response.json()["error"]["code"] == "IpNotAllowed", (value, response.text)

        @settings(max_examples=EXAMPLES * 20, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
        @given(cidr)
        def check_entry(value: str) -> None:
            body = {"name": "ipfuzz", "externalTriggers": {"ipAllowList": [value]}, "process": {"steps": [{"type": "return", "value": "ok"}]}}
            response = client.post("/management/scenarios", headers=admin, json=body)
            try:
                expected = ipaddress.ip_network(value, strict=True) if value == value.strip() and "%" not in value else None
            except ValueError:
                expected = None
            if expected is None or len(value) < 2 or len(value) > 64:
                assert response.status_code == 400, (value, response.text)
                assert response.json()["error"]["message"].startswith("scenario.externalTriggers.ipAllowList"), response.text
                return
            assert response.status_code == 201, (value, response.text)
            stored = response.json()["externalTriggers"]["ipAllowList"]
            mapped = getattr(expected.network_address, "ipv4_mapped", None)
            if mapped is not None and expected.prefixlen >= 96:
                expected = ipaddress.ip_network(f"{mapped}/{expected.prefixlen - 96}")
            assert stored == [str(expected)], value
            client.delete(f"/management/scenarios/{response.json()['id']}", headers=admin)

        check_address()
        check_entry()
