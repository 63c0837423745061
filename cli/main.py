"""``junction``: a command-line client for Junction's URLs, plus the bootstrap of the first token.

Everything but ``token create`` and ``serve`` talks HTTP to a running Junction (``--url`` or
``JUNCTION_URL``), authenticated by ``--token``/``JUNCTION_TOKEN`` or an Azure AD token from msal
(``--aad``). ``token create`` writes straight into storage: it is how the first administrator gets
a token, before any token exists to call the management API with.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from cli.http import ApiError, HttpClient

DEFAULT_URL = "http://127.0.0.1:7071"


def load_local_settings(root: Path | None = None) -> None:
    """Values from local.settings.json, as ``func start`` and devhost see them (env wins).

    When the environment already says where storage is (``AzureWebJobsStorage`` or any
    ``AzureWebJobsStorage__*`` setting, as when bootstrapping a token in Azure), the file is not
    read at all: mixing its local connection string with identity settings would pick the wrong
    account.
    """
    path = (root or Path.cwd()) / "local.settings.json"
    if not path.exists() or any(name.startswith("AzureWebJobsStorage") for name in os.environ):
        return
    values = json.loads(path.read_text()).get("Values", {})
    for name, value in values.items():
        os.environ.setdefault(name, str(value))


def _read_json_file(path: str) -> Any:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    return json.loads(text)


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _default_scopes() -> list[str]:
    """Junction's own app registration, ``<audience>/.default``: JUNCTION_AAD_SCOPE, else the first
    JUNCTION_AAD_AUDIENCE. Never the caller's client ID: that would ask for a token to itself."""
    if os.environ.get("JUNCTION_AAD_SCOPE"):
        return os.environ["JUNCTION_AAD_SCOPE"].split()
    audience = next((a.strip() for a in os.environ.get("JUNCTION_AAD_AUDIENCE", "").split(",") if a.strip()), None)
    if audience is None:
        raise SystemExit(
            "--aad needs --aad-scope (e.g. api://junction/.default), or JUNCTION_AAD_SCOPE or JUNCTION_AAD_AUDIENCE set"
        )
    return [f"{audience.rstrip('/')}/.default"]


def _bearer(args: argparse.Namespace) -> str | None:
    if args.aad:
        from cli.aad_login import acquire_token

        tenant = args.tenant_id or os.environ.get("JUNCTION_AAD_TENANT_ID")
        if not tenant or not args.client_id:
            raise SystemExit("--aad needs --tenant-id (or JUNCTION_AAD_TENANT_ID) and --client-id")
        scopes = args.aad_scope or _default_scopes()
        # A certificate given on the command line wins over a secret from the environment.
        secret = None if args.certificate else args.client_secret or os.environ.get("JUNCTION_CLIENT_SECRET")
        return acquire_token(
            tenant_id=tenant,
            client_id=args.client_id,
            scopes=scopes,
            authority_host=args.authority_host,
            client_secret=secret,
            certificate_path=Path(args.certificate) if args.certificate else None,
            device_code=not (secret or args.certificate),
            ca_bundle=args.ca_bundle,
        )
    return args.token


def _client(args: argparse.Namespace) -> HttpClient:
    return HttpClient(args.url.rstrip("/"), _bearer(args))


def cmd_serve(args: argparse.Namespace) -> int:
    from devhost import main as devhost_main

    return devhost_main(["--root", args.root, "--host", args.host, "--port", str(args.port)])


def cmd_token_create(args: argparse.Namespace) -> int:
    load_local_settings()
    from core.identity.tokens import create_token
    from core.kernel.settings import get_settings
    from core.store.storage import Storage

    storage = Storage.from_settings(get_settings())
    created = create_token(
        storage,
        name=args.name,
        scopes=args.scope,
        scenario_ids=args.scenario or None,
        expires_in_days=args.expires_in_days,
    )
    if args.quiet:
        print(created.token)
    else:
        _print(created.to_json())
        print("Keep the token now: it is not stored and cannot be shown again.", file=sys.stderr)
    return 0


def cmd_scenario(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.action == "create":
        _print(client.request("POST", "/management/scenarios", json_body=_read_json_file(args.file)))
    elif args.action == "list":
        _print({"value": _every_page(client, "/management/scenarios?top=1000")})
    elif args.action == "update":
        # The file may be what `scenario show` printed, edited: its etag makes the update fail
        # (412) if someone changed the scenario since, and the other read-only fields are ignored.
        _print(client.request("PUT", f"/management/scenarios/{quote(args.id, safe='')}", json_body=_read_json_file(args.file)))
    else:
        _print(client.request("GET", f"/management/scenarios/{quote(args.id, safe='')}"))
    return 0


def _every_page(client: HttpClient, path: str) -> list[Any]:
    """Every item of a paged listing, following ``nextLink``.

    Only the link's path and query are used, against the URL the CLI was given: a link naming
    another host (a misconfigured ``JUNCTION_PUBLIC_BASE_URL``) must not receive the token.
    """
    items: list[Any] = []
    next_path: str | None = path
    while next_path:
        page = client.request("GET", next_path)
        items.extend(page.get("value") or [])
        link = page.get("nextLink")
        parts = urlsplit(link) if isinstance(link, str) and link else None
        next_path = f"{parts.path}?{parts.query}" if parts and parts.query else None
    return items


def cmd_trigger(args: argparse.Namespace) -> int:
    client = _client(args)
    path = f"/ExternalData/Accept/{quote(args.scenario, safe='')}"
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else {}
    if args.data:
        data = sys.stdin.buffer.read() if args.data == "-" else Path(args.data).read_bytes()
        content_type = args.content_type or ("application/xml" if args.data.endswith(".xml") else "application/json")
        response = client.raw("POST", path, body=data, headers={**headers, "Content-Type": content_type})
    else:
        response = client.raw("GET", path, headers=headers)
    print(response.headers.get("X-Run-Id", ""))
    return 0


def cmd_cache_get(args: argparse.Namespace) -> int:
    client = _client(args)
    _print(client.request("GET", f"/ExternalData/GetCacheData/{quote(args.scenario, safe='')}?keyJson={quote(args.key, safe='')}"))
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    client = _client(args)
    base = f"/management/scenarios/{quote(args.scenario, safe='')}/runs"
    _print(client.request("GET", f"{base}/{quote(args.run, safe='')}" if args.run else base))
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    """``junction health``: the admin details (GET /management/health); ``--public`` asks GET /health."""
    client = _client(args)
    _print(client.request("GET", "/health" if args.public else "/management/health"))
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.action == "import":
        data = Path(args.file).read_bytes()
        yaml = args.file.endswith((".yaml", ".yml"))
        response = client.raw(
            "PUT", f"/management/apis/{quote(args.name, safe='')}", body=data,
            headers={"Content-Type": "application/yaml" if yaml else "application/json"},
        )  # fmt: skip
        _print(json.loads(response.body))
    elif args.action == "list":
        _print(client.request("GET", "/management/apis"))
    elif args.action == "show":
        _print(client.request("GET", f"/management/apis/{quote(args.name, safe='')}"))
    else:  # bind
        binding: dict[str, Any] = {"scenarioId": args.scenario, "authentication": {"type": args.auth}}
        if args.scope:
            binding["authentication"]["scopes"] = args.scope
        if args.trusted_issuer:
            binding["authentication"]["trustedIssuers"] = [Path(p).read_text() for p in args.trusted_issuer]
        if args.any_tenant_user:
            binding["authentication"]["anyTenantUser"] = True
        if args.protocols:
            binding["allowedProtocols"] = args.protocols.split(",")
        if args.cors:
            binding["cors"] = {"allowedOrigins": args.cors}
        if args.ip_allow:
            binding["ipAllowList"] = args.ip_allow
        if args.rate_limit is not None:
            binding["rateLimit"] = {"requestsPerMinute": args.rate_limit, **({"burst": args.burst} if args.burst is not None else {})}
            if args.per_credential:
                binding["rateLimit"]["perCredential"] = True
        if args.signature:
            binding["signature"] = _signature(args)
        if args.respond:
            binding["respond"] = args.respond
        path = f"/management/apis/{quote(args.name, safe='')}/operations/{quote(args.operation, safe='')}"
        _print(client.request("PUT", path, json_body=binding))
    return 0


def _signature(args: argparse.Namespace) -> dict[str, Any]:
    """``--signature SCHEME --signature-secret JUNCTION_SECRET_X [--signature-header H] [--signature-tolerance S]``."""
    if not args.signature_secret:
        raise SystemExit("--signature needs --signature-secret JUNCTION_SECRET_<NAME> (the app setting holding the secret)")
    signature: dict[str, Any] = {"scheme": args.signature, "secret": {"secret": args.signature_secret}}
    if args.signature_header:
        signature["header"] = args.signature_header
    if args.signature_tolerance is not None:
        signature["toleranceSeconds"] = args.signature_tolerance
    return signature


def cmd_apikey_create(args: argparse.Namespace) -> int:
    ruleset = []
    for rule in args.rule:
        path, _, methods = rule.partition(":")
        ruleset.append({"path": path, "methods": methods.split(",") if methods and methods != "*" else "*"})
    _print(_client(args).request("POST", "/management/apikeys", json_body={"name": args.name, "ruleset": ruleset}))
    print("Keep the key now: it is not stored and cannot be shown again.", file=sys.stderr)
    return 0


def cmd_user_create(args: argparse.Namespace) -> int:
    password = os.environ.get("JUNCTION_USER_PASSWORD") or getpass.getpass(f"Password for {args.username}: ")
    _print(_client(args).request("POST", "/management/users", json_body={"username": args.username, "password": password}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="junction", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("JUNCTION_URL", DEFAULT_URL), help="Junction's base URL (JUNCTION_URL)")
    parser.add_argument("--token", default=os.environ.get("JUNCTION_TOKEN"), help="a personal access token (JUNCTION_TOKEN)")
    aad = parser.add_argument_group("Azure AD (msal)")
    aad.add_argument("--aad", action="store_true", help="authenticate with an Azure AD token instead of --token")
    aad.add_argument("--tenant-id", default=os.environ.get("JUNCTION_AAD_TENANT_ID"))
    aad.add_argument("--client-id", default=os.environ.get("JUNCTION_CLIENT_ID"), help="the calling app's client ID")
    aad.add_argument("--client-secret", help="client credentials: the app's secret (or JUNCTION_CLIENT_SECRET)")
    aad.add_argument("--certificate", help="client credentials: a PEM file with the app's certificate and key")
    aad.add_argument("--aad-scope", action="append", help="scope to request (default: JUNCTION_AAD_SCOPE, else <first JUNCTION_AAD_AUDIENCE>/.default)")
    aad.add_argument("--ca-bundle", help="PEM file of CAs to trust for the authority (private or test issuers)")
    aad.add_argument("--authority-host", default=os.environ.get("JUNCTION_AAD_AUTHORITY_HOST", "https://login.microsoftonline.com"))
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the function app locally with devhost")
    serve.add_argument("--root", default=".")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=7071)
    serve.set_defaults(func=cmd_serve)

    token = sub.add_parser("token", help="personal access tokens").add_subparsers(dest="action", required=True)
    create = token.add_parser("create", help="create a token straight in storage (bootstrap)")
    create.add_argument("--name", required=True)
    create.add_argument("--scope", action="append", choices=["admin", "trigger"], required=True)
    create.add_argument("--scenario", action="append", help="limit the token to this scenario id (repeatable)")
    create.add_argument("--expires-in-days", type=int)
    create.add_argument("--quiet", action="store_true", help="print only the token")
    create.set_defaults(func=cmd_token_create)

    scenario = sub.add_parser("scenario", help="scenarios").add_subparsers(dest="action", required=True)
    scenario_create = scenario.add_parser("create")
    scenario_create.add_argument("file", help="the scenario as a JSON file, or - for standard input")
    scenario.add_parser("list")
    scenario_show = scenario.add_parser("show")
    scenario_show.add_argument("id")
    scenario_update = scenario.add_parser("update", help="replace a scenario (the file may be `scenario show` output, edited)")
    scenario_update.add_argument("id")
    scenario_update.add_argument("file", help="the scenario as a JSON file, or - for standard input")
    for p in scenario.choices.values():
        p.set_defaults(func=cmd_scenario)

    trigger = sub.add_parser("trigger", help="start a run (Accept)")
    trigger.add_argument("scenario")
    trigger.add_argument("--data", help="a file to POST (JSON, or XML by its .xml name), - for standard input")
    trigger.add_argument("--content-type")
    trigger.add_argument("--idempotency-key")
    trigger.set_defaults(func=cmd_trigger)

    cache = sub.add_parser("cache", help="cached data").add_subparsers(dest="action", required=True)
    cache_get = cache.add_parser("get")
    cache_get.add_argument("scenario")
    cache_get.add_argument("--key", required=True, help="the key as JSON, e.g. '\"last\"'")
    cache_get.set_defaults(func=cmd_cache_get)

    api = sub.add_parser("api", help="OpenAPI documents and their operations").add_subparsers(dest="action", required=True)
    api_import = api.add_parser("import", help="import (or re-import) a Swagger 2.0 / OpenAPI 3.x file")
    api_import.add_argument("file", help="a .json, .yaml or .yml file")
    api_import.add_argument("--name", required=True)
    api.add_parser("list")
    api_show = api.add_parser("show")
    api_show.add_argument("name")
    api_bind = api.add_parser("bind", help="bind an operation to a scenario")
    api_bind.add_argument("name", help="the API's name")
    api_bind.add_argument("operation", help="the operationId")
    api_bind.add_argument("--scenario", required=True)
    api_bind.add_argument("--auth", default="none", choices=["none", "basic", "certificate", "apiKey", "oauth2"])
    api_bind.add_argument("--scope", action="append", help="oauth2: a scope or role that is enough (repeatable)")
    api_bind.add_argument("--trusted-issuer", action="append", help="certificate: a PEM file of a trusted issuer (repeatable)")
    api_bind.add_argument(
        "--any-tenant-user", action="store_true", help="oauth2: users of the tenant outside JUNCTION_AAD_GROUP_ID may call it too"
    )
    api_bind.add_argument("--protocols", help="allowed protocols, e.g. https or http,https")
    api_bind.add_argument("--cors", help="allowed origins, separated by , or ; (* for all)")
    api_bind.add_argument("--ip-allow", action="append", metavar="CIDR", help="an address or range that may call it (repeatable)")
    api_bind.add_argument("--rate-limit", type=int, metavar="N", help="requests a minute, for all callers together")
    api_bind.add_argument("--burst", type=int, metavar="M", help="with --rate-limit: requests at once (default N)")
    api_bind.add_argument("--per-credential", action="store_true", help="with --rate-limit: one limit per credential")
    api_bind.add_argument("--respond", choices=["sync", "async"], help="async: answer 202 with a status URL and run from the queue")
    api_bind.add_argument("--signature", choices=["hmac-sha256", "github", "stripe", "slack"], help="verify signed requests (webhooks)")
    api_bind.add_argument("--signature-secret", help="the app setting holding the signing secret, JUNCTION_SECRET_<NAME>")
    api_bind.add_argument("--signature-header", help="the header the signature comes in (default by scheme)")
    api_bind.add_argument("--signature-tolerance", type=int, help="seconds a timestamp may be off, and a signature is remembered (default 300)")
    for p in api.choices.values():
        p.set_defaults(func=cmd_api)

    apikey = sub.add_parser("apikey", help="API keys").add_subparsers(dest="action", required=True)
    apikey_create = apikey.add_parser("create")
    apikey_create.add_argument("--name", required=True)
    apikey_create.add_argument("--rule", action="append", required=True, help="PATH[:METHODS], e.g. '/api/pet/*:GET,POST' or '/api/**'")
    apikey_create.set_defaults(func=cmd_apikey_create)

    user = sub.add_parser("user", help="local users for Basic authentication").add_subparsers(dest="action", required=True)
    user_create = user.add_parser("create", help="the password is asked for (or JUNCTION_USER_PASSWORD)")
    user_create.add_argument("--username", required=True)
    user_create.set_defaults(func=cmd_user_create)

    runs = sub.add_parser("runs", help="runs of a scenario, newest first")
    runs.add_argument("scenario")
    runs.add_argument("run", nargs="?")
    runs.set_defaults(func=cmd_runs)

    health = sub.add_parser("health", help="storage, queues, last schedule tick and key caches (admin); --public: GET /health")
    health.add_argument("--public", action="store_true", help="the anonymous check load balancers use")
    health.set_defaults(func=cmd_health)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, RuntimeError) as exc:  # AadLoginError is a RuntimeError
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
