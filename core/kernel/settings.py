"""Settings: read from the environment once per process into one frozen object.

A bad value fails at start-up with a message that names the setting, rather than as a
confusing error on the first request that happens to need it.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from core.kernel.errors import ConfigurationError

MIB = 1024 * 1024
DEFAULT_MAX_BODY_BYTES = 10 * MIB
MAX_BODY_BYTES_CEILING = 100_000_000  # the Functions host's own request limit
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_GRAPH_ENDPOINT = "https://graph.microsoft.com"
# How long Accept may answer from a scenario its instance read (docs/architecture.md, "Past one partition").
DEFAULT_SCENARIO_HOLD_SECONDS = 1.0
MAX_SCENARIO_HOLD_SECONDS = 60.0
# App Service's front end cuts an HTTP response at 230 s (the caller gets 502). An API call must
# answer before that, including the run-record writes after its deadline (bounded storage retries).
DEFAULT_API_DEADLINE_SECONDS = 180.0
MAX_API_DEADLINE_SECONDS = 200.0

# Azurite's well-known development account (public, documented by Microsoft).
_DEV_ACCOUNT = "devstoreaccount1"
_DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEVELOPMENT_CONNECTION_STRING = (
    "DefaultEndpointsProtocol=http;"
    f"AccountName={_DEV_ACCOUNT};AccountKey={_DEV_KEY};"
    f"BlobEndpoint=http://127.0.0.1:10000/{_DEV_ACCOUNT};"
    f"QueueEndpoint=http://127.0.0.1:10001/{_DEV_ACCOUNT};"
    f"TableEndpoint=http://127.0.0.1:10002/{_DEV_ACCOUNT};"
)

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,19}$")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_ALLOWED_HOST = re.compile(rf"^(?:\*\.)?{_LABEL}(?:\.{_LABEL})*(?::(?P<port>[0-9]{{1,5}}))?$")
SECRET_NAME = re.compile(r"JUNCTION_SECRET_[A-Za-z0-9_]+")
SECRET_HOSTS_SETTING = "JUNCTION_OUTBOUND_SECRET_HOSTS"  # noqa: S105 - a setting name


@dataclass(frozen=True)
class StorageSettings:
    """Either a connection string, or service URIs reached with a managed identity."""

    connection_string: str | None = None
    table_uri: str | None = None
    queue_uri: str | None = None
    blob_uri: str | None = None
    credential: str | None = None  # "managedidentity" or None (DefaultAzureCredential)
    client_id: str | None = None  # user-assigned managed identity

    @property
    def uses_identity(self) -> bool:
        return self.connection_string is None


CLIENT_CERT_MODES = ("Required", "Optional")


@dataclass(frozen=True)
class ClientCertificateSettings:
    """What the deployment tells App Service's front end to do with client certificates: the
    site's ``clientCertEnabled``, ``clientCertMode`` and ``clientCertExclusionPaths``, written by
    infra/app/function.bicep from the same parameters as JUNCTION_CLIENT_CERT_ENABLED, _MODE
    and _EXCLUSION_PATHS.

    The front end sets ``X-ARR-ClientCert`` only where it asked for a certificate; anywhere else
    the header is whatever the caller sent, so Junction trusts it only where this says the front
    end sets it (docs/deploy.md, Client certificates).
    """

    enabled: bool = False
    mode: str = "Optional"
    exclusion_paths: tuple[str, ...] = ()

    def excluded(self, path: str) -> bool:
        """True when ``path`` starts with an exclusion path, compared as the front end compares
        them (case-insensitively, as prefixes). The path is tried as received and percent-decoded,
        so an encoding that one side decodes and the other does not cannot make Junction trust a
        header the front end left alone."""
        candidates = {path.lower(), unquote(path).lower()}
        return any(c.startswith(prefix.lower()) for c in candidates for prefix in self.exclusion_paths)


@dataclass(frozen=True)
class Settings:
    storage: StorageSettings
    table_prefix: str = "junction"
    """Names every table, the run queue and the container (``core.store.tables``)."""
    aad_tenant_id: str | None = None
    aad_audiences: tuple[str, ...] = ()
    aad_group_id: str | None = None
    aad_admin_group_id: str | None = None
    aad_admin_role: str | None = None
    aad_trigger_role: str = "Junction.Trigger"
    aad_authority_host: str = DEFAULT_AUTHORITY_HOST
    console_client_id: str | None = None
    """The console's SPA app registration: "Sign in with Microsoft" is offered when set (docs/console.md)."""
    graph_endpoint: str = DEFAULT_GRAPH_ENDPOINT
    graph_client_id: str | None = None
    graph_client_secret: str | None = field(default=None, repr=False)
    graph_client_certificate_path: str | None = None
    managed_identity_client_id: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    outbound_allowed_hosts: tuple[str, ...] = ()
    oauth_issuers: tuple[str, ...] = ()
    public_base_url: str | None = None
    run_retention_days: int = 30
    api_deadline_seconds: float = DEFAULT_API_DEADLINE_SECONDS
    client_certificates: ClientCertificateSettings = field(default_factory=ClientCertificateSettings)
    worker_threads: int = 32
    """Threads that may use the storage clients at once: the pools keep that many connections."""
    scenario_hold_seconds: float = DEFAULT_SCENARIO_HOLD_SECONDS
    """How long an instance answers external triggers from a scenario it read, before reading it
    again (``JUNCTION_SCENARIO_HOLD_SECONDS``; 0: read on every call). A change made through
    another instance holds there within this time (docs/architecture.md, "Past one partition")."""
    max_run_queue_depth: int = 0
    """Admission control: Accept answers 503 while the run queue holds more messages; 0 = no bound."""
    telemetry: bool = False
    """``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set: traces, metrics and logs go to
    Application Insights (``triggers/telemetry.py``, docs/operations.md)."""

    @property
    def aad_enabled(self) -> bool:
        return self.aad_tenant_id is not None


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _guid(env: Mapping[str, str], name: str) -> str | None:
    value = _get(env, name)
    if value is not None and not _GUID.match(value):
        raise ConfigurationError(f"{name} must be a GUID, got {value!r}")
    return value.lower() if value else None


def _https_url(env: Mapping[str, str], name: str, default: str) -> str:
    value = _get(env, name) or default
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
        raise ConfigurationError(f"{name} must be an https:// URL without query, got {value!r}")
    return value.rstrip("/")


def _storage(env: Mapping[str, str]) -> StorageSettings:
    conn = _get(env, "AzureWebJobsStorage")
    if conn is not None:
        if conn.replace(" ", "").lower() == "usedevelopmentstorage=true":
            conn = DEVELOPMENT_CONNECTION_STRING
        elif "=" not in conn:
            raise ConfigurationError("AzureWebJobsStorage must be a storage connection string")
        return StorageSettings(connection_string=conn)
    uris = {
        kind: _get(env, f"AzureWebJobsStorage__{kind}ServiceUri") for kind in ("table", "queue", "blob")
    }
    account = _get(env, "AzureWebJobsStorage__accountName")
    for kind, uri in uris.items():
        if uri is None and account is not None:
            uris[kind] = f"https://{account}.{kind}.core.windows.net"
        elif uri is None:
            raise ConfigurationError(
                "set AzureWebJobsStorage (a connection string) or "
                f"AzureWebJobsStorage__{kind}ServiceUri (identity-based storage)"
            )
        elif urlsplit(uris[kind] or "").scheme not in ("https", "http"):
            raise ConfigurationError(f"AzureWebJobsStorage__{kind}ServiceUri must be a URL")
    return StorageSettings(
        table_uri=uris["table"],
        queue_uri=uris["queue"],
        blob_uri=uris["blob"],
        credential=_get(env, "AzureWebJobsStorage__credential"),
        client_id=_get(env, "AzureWebJobsStorage__clientId"),
    )


def _max_body(env: Mapping[str, str]) -> int:
    raw = _get(env, "JUNCTION_MAX_BODY_BYTES")
    if raw is None:
        return DEFAULT_MAX_BODY_BYTES
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_BODY_BYTES_CEILING:
        raise ConfigurationError(
            f"JUNCTION_MAX_BODY_BYTES must be a whole number of bytes from 1 to {MAX_BODY_BYTES_CEILING}, got {raw!r}"
        )
    return int(raw)


def _retention(env: Mapping[str, str]) -> int:
    raw = _get(env, "JUNCTION_RUN_RETENTION_DAYS")
    if raw is None:
        return 30
    if not raw.isdigit() or not 1 <= int(raw) <= 3650:
        raise ConfigurationError(f"JUNCTION_RUN_RETENTION_DAYS must be a whole number of days from 1 to 3650, got {raw!r}")
    return int(raw)


MAX_RUN_QUEUE_DEPTH_CEILING = 10_000_000


def _max_run_queue_depth(env: Mapping[str, str]) -> int:
    raw = _get(env, "JUNCTION_MAX_RUN_QUEUE_DEPTH")
    if raw is None:
        return 0
    if not raw.isdigit() or int(raw) > MAX_RUN_QUEUE_DEPTH_CEILING:
        raise ConfigurationError(
            f"JUNCTION_MAX_RUN_QUEUE_DEPTH must be a whole number of messages from 0 (no bound) to {MAX_RUN_QUEUE_DEPTH_CEILING:,}, got {raw!r}"
        )
    return int(raw)


def _worker_threads(env: Mapping[str, str]) -> int:
    """The Python worker's thread pool for sync functions (``PYTHON_THREADPOOL_THREAD_COUNT``, an
    Azure Functions setting). Unset, the worker uses min(32, CPUs + 4) threads and devhost 32: 32
    is never too few, and a pool slot costs nothing until a thread uses it."""
    raw = _get(env, "PYTHON_THREADPOOL_THREAD_COUNT")
    if raw is None:
        return 32
    if not raw.isdigit() or not 1 <= int(raw) <= 32:
        raise ConfigurationError(f"PYTHON_THREADPOOL_THREAD_COUNT must be a whole number from 1 to 32, got {raw!r}")
    return int(raw)


def _seconds(env: Mapping[str, str], name: str, default: float, low: float, high: float, *, low_note: str = "", high_note: str = "") -> float:
    """A number of seconds from ``low`` to ``high``, at most three decimals (no exponent, sign, inf or nan)."""
    raw = _get(env, name)
    if raw is None:
        return default
    digits = len(str(int(high)))
    if not re.fullmatch(rf"[0-9]{{1,{digits}}}(?:\.[0-9]{{1,3}})?", raw) or not low <= float(raw) <= high:
        raise ConfigurationError(f"{name} must be a number of seconds from {low:g}{low_note} to {high:g}{high_note}, got {raw!r}")
    return float(raw)


def _scenario_hold(env: Mapping[str, str]) -> float:
    return _seconds(
        env, "JUNCTION_SCENARIO_HOLD_SECONDS", DEFAULT_SCENARIO_HOLD_SECONDS, 0, MAX_SCENARIO_HOLD_SECONDS, low_note=" (read on every call)"
    )


def _api_deadline(env: Mapping[str, str]) -> float:
    return _seconds(
        env,
        "JUNCTION_API_DEADLINE_SECONDS",
        DEFAULT_API_DEADLINE_SECONDS,
        1,
        MAX_API_DEADLINE_SECONDS,
        high_note=" (App Service cuts a response at 230 s)",
    )


def _csv(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = _get(env, name) or ""
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def parse_host_entry(host: str) -> str | None:
    """An allow-list entry (``host``, ``host:port``, ``*.domain``) in lower case, or None."""
    host = host.strip().lower()
    match = _ALLOWED_HOST.match(host)
    if match is None or not 1 <= int(match["port"] or 443) <= 65535:
        return None
    return host


def _allowed_hosts(env: Mapping[str, str]) -> tuple[str, ...]:
    """``host``, ``host:port`` or ``*.domain``: a URL or a bare ``*`` would silently match nothing
    (or, worse, be read as "everything"), so the start-up stops instead."""
    hosts = tuple(h.lower() for h in _csv(env, "JUNCTION_OUTBOUND_ALLOWED_HOSTS"))
    for host in hosts:
        if parse_host_entry(host) is None:
            raise ConfigurationError(
                f"JUNCTION_OUTBOUND_ALLOWED_HOSTS entries are host, host:port or *.domain, got {host!r}"
            )
    return hosts


def parse_secret_hosts(raw: str | None) -> dict[str, tuple[str, ...]]:
    """``JUNCTION_OUTBOUND_SECRET_HOSTS`` as ``{secret name: (host entries)}``; ValueError names a bad entry."""
    bound: dict[str, list[str]] = {}
    for item in (raw or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, eq, host = item.partition("=")
        name, host = name.strip(), host.strip().lower()
        if not eq or not SECRET_NAME.fullmatch(name) or parse_host_entry(host) is None:
            raise ValueError(f"{SECRET_HOSTS_SETTING} entries are JUNCTION_SECRET_NAME=host (host, host:port or *.domain), got {item!r}")
        bound.setdefault(name, []).append(host)
    return {name: tuple(hosts) for name, hosts in bound.items()}


def _secret_hosts(env: Mapping[str, str]) -> None:
    """``JUNCTION_OUTBOUND_SECRET_HOSTS`` is read at call time (like the secrets, by
    ``core.process.egress``); checked here so a bad entry stops the start-up instead of failing runs."""
    try:
        parse_secret_hosts(env.get(SECRET_HOSTS_SETTING))
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def _oauth_issuers(env: Mapping[str, str]) -> tuple[str, ...]:
    """OpenID Connect issuers API operations may trust besides Azure AD, exactly as their tokens'
    ``iss`` spells them (a trailing slash matters)."""
    issuers = _csv(env, "JUNCTION_OAUTH_ISSUERS")
    for issuer in issuers:
        parts = urlsplit(issuer)
        if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
            raise ConfigurationError(f"JUNCTION_OAUTH_ISSUERS entries are https:// issuer URLs, got {issuer!r}")
    return issuers


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _get(env, name)
    if raw is None:
        return default
    if raw.lower() not in ("true", "false"):
        raise ConfigurationError(f"{name} must be true or false, got {raw!r}")
    return raw.lower() == "true"


def _client_certificates(env: Mapping[str, str]) -> ClientCertificateSettings:
    """JUNCTION_CLIENT_CERT_ENABLED, _MODE and _EXCLUSION_PATHS, as the deployment sets them."""
    enabled = _bool(env, "JUNCTION_CLIENT_CERT_ENABLED", False)
    raw_mode = _get(env, "JUNCTION_CLIENT_CERT_MODE") or "Optional"
    mode = next((m for m in CLIENT_CERT_MODES if m.lower() == raw_mode.lower()), None)
    if mode is None:
        hint = (
            " (OptionalInteractiveUser makes the front end renegotiate TLS, which fails with HTTP/2 and"
            " TLS 1.3 and limits POST and PUT bodies to 100 KB)"
            if raw_mode.lower() == "optionalinteractiveuser"
            else ""
        )
        raise ConfigurationError(f"JUNCTION_CLIENT_CERT_MODE must be Required or Optional, got {raw_mode!r}{hint}")
    paths = tuple(p.strip() for p in re.split(r"[,;]", _get(env, "JUNCTION_CLIENT_CERT_EXCLUSION_PATHS") or "") if p.strip())
    for path in paths:
        if not path.startswith("/"):
            raise ConfigurationError(
                f"JUNCTION_CLIENT_CERT_EXCLUSION_PATHS entries are paths starting with /, separated by ; or ,, got {path!r}"
            )
    return ClientCertificateSettings(enabled=enabled, mode=mode, exclusion_paths=paths)


def _prefix(env: Mapping[str, str]) -> str:
    prefix = _get(env, "JUNCTION_TABLE_PREFIX") or "junction"
    if not _PREFIX.match(prefix):
        raise ConfigurationError("JUNCTION_TABLE_PREFIX must be a letter followed by up to 19 letters or digits")
    return prefix.lower()


def read_table_prefix(env: Mapping[str, str] | None = None) -> str:
    """``JUNCTION_TABLE_PREFIX`` of ``env`` (default: the process environment), validated."""
    return _prefix(os.environ if env is None else env)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from ``env`` (default: the process environment), validating every value."""
    env = os.environ if env is None else env
    prefix = _prefix(env)
    tenant = _guid(env, "JUNCTION_AAD_TENANT_ID")
    audiences = _csv(env, "JUNCTION_AAD_AUDIENCE")
    if tenant and not audiences:
        raise ConfigurationError("JUNCTION_AAD_AUDIENCE is required when JUNCTION_AAD_TENANT_ID is set")
    console_client_id = _guid(env, "JUNCTION_CONSOLE_CLIENT_ID")
    if console_client_id and not tenant:
        raise ConfigurationError("JUNCTION_CONSOLE_CLIENT_ID needs JUNCTION_AAD_TENANT_ID: the console signs people in to that tenant")
    hosts = _allowed_hosts(env)
    _secret_hosts(env)
    public = _get(env, "JUNCTION_PUBLIC_BASE_URL")
    if public is not None and urlsplit(public).scheme not in ("http", "https"):
        raise ConfigurationError("JUNCTION_PUBLIC_BASE_URL must be an http(s) URL")
    return Settings(
        storage=_storage(env),
        table_prefix=prefix,
        aad_tenant_id=tenant,
        aad_audiences=audiences,
        aad_group_id=_guid(env, "JUNCTION_AAD_GROUP_ID"),
        aad_admin_group_id=_guid(env, "JUNCTION_AAD_ADMIN_GROUP_ID"),
        aad_admin_role=_get(env, "JUNCTION_AAD_ADMIN_ROLE"),
        aad_trigger_role=_get(env, "JUNCTION_AAD_TRIGGER_ROLE") or "Junction.Trigger",
        aad_authority_host=_https_url(env, "JUNCTION_AAD_AUTHORITY_HOST", DEFAULT_AUTHORITY_HOST),
        console_client_id=console_client_id,
        graph_endpoint=_https_url(env, "JUNCTION_GRAPH_ENDPOINT", DEFAULT_GRAPH_ENDPOINT),
        graph_client_id=_get(env, "JUNCTION_GRAPH_CLIENT_ID"),
        graph_client_secret=_get(env, "JUNCTION_GRAPH_CLIENT_SECRET"),
        graph_client_certificate_path=_get(env, "JUNCTION_GRAPH_CLIENT_CERTIFICATE_PATH"),
        managed_identity_client_id=_get(env, "AZURE_CLIENT_ID"),
        max_body_bytes=_max_body(env),
        outbound_allowed_hosts=hosts,
        oauth_issuers=_oauth_issuers(env),
        public_base_url=public.rstrip("/") if public else None,
        run_retention_days=_retention(env),
        max_run_queue_depth=_max_run_queue_depth(env),
        api_deadline_seconds=_api_deadline(env),
        scenario_hold_seconds=_scenario_hold(env),
        client_certificates=_client_certificates(env),
        worker_threads=_worker_threads(env),
        telemetry=bool(_get(env, "APPLICATIONINSIGHTS_CONNECTION_STRING")),
    )


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return load_settings()
