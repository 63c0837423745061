"""The Junction console: the web page the function app serves at ``/console/`` (docs/console.md).

The console is static files (plain ES modules, a style sheet, a vendored MSAL.js) under the
app's top-level ``console/`` folder. It holds no authority: the page signs a person in and
calls the management API and the triggers with that person's credentials, like any client.
What this module adds is only what a static file server would, done carefully:

- every asset is served under ``/console/assets/<version>/...``, where the version is a hash of
  all the files, so assets can be cached for a year (``immutable``) and a deployment changes the
  URL of every one of them; the page itself (``index.html``, served for every page URL so each
  page can be bookmarked) is revalidated on each load;
- a Content-Security-Policy without ``'unsafe-inline'`` (no inline script or style) or any
  origin but the app's own and, when Azure AD is configured, the sign-in authority's;
- the page's configuration (whether "Sign in with Microsoft" is offered, and with which client)
  travels in a ``<meta>`` element, not in an inline script;
- ``GET /console/api/schedule`` lists the next due times of an NCRONTAB expression as
  ``core.scenarios.schedule`` computes them, so the editor shows what the timer will do, not what a
  second implementation in JavaScript thinks it will.

Plain Python, no ``azure.functions``: the trigger in ``triggers/console.py`` only adapts.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import logging
import mimetypes
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from core.kernel.errors import BadRequest, NotFound
from core.kernel.settings import Settings
from core.scenarios.schedule import check_schedule, due_times
from core.web.exchange import Reply

logger = logging.getLogger(__name__)

FOLDER_NAME = "console"
INDEX = "index.html"
ASSETS_PREFIX = "/console/assets"
API_PREFIX = "api/"
NEXT_DUE_TIMES = 5
HORIZON = timedelta(days=366 * 30)  # a leap day falls due within 8 years; the preview looks further
MAX_SCHEDULE_LENGTH = 200
VERSION_PLACEHOLDER = "%JUNCTION_ASSETS%"
CONFIG_PLACEHOLDER = "%JUNCTION_CONFIG%"

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}


def find_console_folder(start: Path | None = None) -> Path:
    """The ``console/`` folder beside the app's ``host.json``, found by walking up from this
    module, so it is found wherever this module lives in ``core``."""
    here = (start or Path(__file__)).resolve()
    for folder in here.parents:
        if (folder / "host.json").is_file() and (folder / FOLDER_NAME / INDEX).is_file():
            return folder / FOLDER_NAME
    raise FileNotFoundError(f"no {FOLDER_NAME}/{INDEX} beside a host.json above {here}")


@dataclass(frozen=True)
class Assets:
    """Every file of the console, read once per process, with the version that names them."""

    template: str
    files: dict[str, bytes]
    version: str

    @classmethod
    def load(cls, folder: Path) -> Assets:
        files: dict[str, bytes] = {}
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts):
                files[path.relative_to(folder).as_posix()] = path.read_bytes()
        template = files.pop(INDEX).decode("utf-8")
        digest = hashlib.sha256()
        for name, data in files.items():
            digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
        return cls(template=template, files=files, version=digest.hexdigest()[:16])


@functools.lru_cache(maxsize=1)
def get_assets() -> Assets:
    return Assets.load(find_console_folder())


def page_config(settings: Settings) -> dict[str, Any]:
    """What the page needs to know to offer "Sign in with Microsoft": the console's SPA client
    ID, the tenant's authority, and the scope of Junction's API. Nothing secret: the same values
    are in any SPA's JavaScript."""
    config: dict[str, Any] = {"aad": None}
    if settings.aad_enabled and settings.console_client_id:
        config["aad"] = {
            "clientId": settings.console_client_id,
            "authority": f"{settings.aad_authority_host}/{settings.aad_tenant_id}",
            "knownAuthority": settings.aad_authority_host.split("://", 1)[1],
            "scopes": [console_scope(settings)],
        }
    return config


def console_scope(settings: Settings) -> str:
    """The scope the console asks Azure AD for: ``<first JUNCTION_AAD_AUDIENCE>/.default``, as the
    CLI does without ``--aad-scope``; it covers the ``access_as_user`` permission the console's
    registration is granted (docs/azure-ad.md)."""
    return f"{settings.aad_audiences[0].rstrip('/')}/.default"


def content_security_policy(settings: Settings) -> str:
    """No inline script or style, nothing from elsewhere; MSAL.js may talk to the authority."""
    connect = "'self'"
    if page_config(settings)["aad"] is not None:
        connect += f" {settings.aad_authority_host}"
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src {connect}",
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ]
    )


def _security_headers(settings: Settings) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(settings),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


@functools.lru_cache(maxsize=4)
def _render_index(template: str, version: str, config_json: str) -> bytes:
    text = template.replace(VERSION_PLACEHOLDER, f"{ASSETS_PREFIX}/{version}")
    return text.replace(CONFIG_PLACEHOLDER, html.escape(config_json, quote=True)).encode("utf-8")


def _content_type(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    return CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def serve_file(settings: Settings, path: str, assets: Assets | None = None) -> Reply:
    """``GET /console/<path>``: an asset under ``assets/<version>/``, else the page itself.

    Any other path is a page of the console (``scenarios/<id>/runs`` ...): the page reads its
    URL and shows it, or says that there is no such page. An asset of another version (a page
    loaded before a deployment asking for what the deployment replaced) is a 404, never this
    version's file under a name that promises other content.
    """
    assets = assets or get_assets()
    headers = _security_headers(settings)
    parts = path.strip("/").split("/")
    if parts[0] == "assets":
        if len(parts) < 3 or parts[1] != assets.version or "/".join(parts[2:]) not in assets.files:
            return Reply(404, b"not found\n", {**headers, "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"})
        name = "/".join(parts[2:])
        return Reply(200, assets.files[name], {**headers, "Content-Type": _content_type(name), "Cache-Control": IMMUTABLE})
    body = _render_index(assets.template, assets.version, json.dumps(page_config(settings), sort_keys=True))
    return Reply(200, body, {**headers, "Content-Type": CONTENT_TYPES[".html"], "Cache-Control": REVALIDATE})


def next_due_times(expression: str | None, now: datetime | None = None, count: int = NEXT_DUE_TIMES) -> list[str]:
    """The next ``count`` due times of a scenario schedule (UTC, ISO 8601), computed by the code
    the timer uses; a schedule the API would refuse is refused with the API's own message."""
    if not expression or len(expression) > MAX_SCHEDULE_LENGTH:
        raise BadRequest(f"send the schedule to preview as ?expression= (1 to {MAX_SCHEDULE_LENGTH} characters)", "InvalidSchedule")
    check_schedule(expression)
    start = now or datetime.now(UTC)
    found: list[str] = []
    try:
        for moment in due_times(expression, start, start + HORIZON):
            found.append(moment.astimezone(UTC).isoformat().replace("+00:00", "Z"))
            if len(found) == count:
                break
    except Exception as exc:  # noqa: BLE001 - croniter's own errors: a date that never comes (31 February)
        raise BadRequest(f"schedule {expression!r} never falls due ({type(exc).__name__})", "InvalidSchedule") from None
    return found


def serve_api(path: str, query: dict[str, str]) -> dict[str, Any]:
    """``/console/api/...``: computations the editor shows; they read and change nothing."""
    name = path.strip("/")[len(API_PREFIX) :]
    if name == "schedule":
        expression = query.get("expression")
        return {"expression": expression, "next": next_due_times(expression)}
    raise NotFound("no such console API", "NotFound")
