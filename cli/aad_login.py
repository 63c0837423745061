"""Azure AD tokens for the ``junction`` CLI, acquired with msal.

Two ways in, matching who runs the CLI:

- automation (pipelines, schedulers): client credentials, with a client secret or a certificate
  (a PEM file holding the private key and the certificate, or a ``.pfx``);
- people: the device-code flow. msal's instructions are printed to stderr, so stdout stays
  clean for the command's own output.

Tokens are kept in msal's token cache on disk (``~/.junction/msal_cache.json``, mode 0600), so
repeated commands reuse a valid token or refresh it silently instead of signing in again.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from core.identity.graph import load_certificate_credential
from core.kernel.settings import DEFAULT_AUTHORITY_HOST

logger = logging.getLogger(__name__)

DEFAULT_CACHE_PATH = Path("~/.junction/msal_cache.json")
DEFAULT_TIMEOUT_SECONDS = 30.0


class AadLoginError(RuntimeError):
    """No token could be acquired; the message is safe to print (it never holds secrets)."""


def _load_cache(msal: Any, path: Path) -> Any:
    cache = msal.SerializableTokenCache()
    try:
        cache.deserialize(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        # A corrupt cache only costs a new sign-in; do not fail the command over it.
        logger.warning("ignoring unreadable token cache %s: %s", path, exc)
    return cache


def _save_cache(cache: Any, path: Path) -> None:
    """Write the cache atomically, readable by the owner only (it holds refresh tokens)."""
    if not cache.has_state_changed:
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".msal_cache.", dir=path.parent)  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(cache.serialize())
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _session(ca_bundle: str, timeout: float) -> Any:
    """A requests session that trusts ``ca_bundle`` whatever the environment says.

    ``Session.verify`` alone loses to ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` in requests, so
    the bundle is passed on every request, with the time-box msal would otherwise apply.
    """
    import functools

    import requests

    session = requests.Session()
    session.mount("https://", requests.adapters.HTTPAdapter(max_retries=1))
    session.request = functools.partial(session.request, timeout=timeout, verify=ca_bundle)  # type: ignore[method-assign]
    return session


def _result_token(result: Any) -> str:
    if isinstance(result, dict) and isinstance(result.get("access_token"), str):
        return result["access_token"]
    if isinstance(result, dict):
        error = result.get("error") or "unknown_error"
        description = (result.get("error_description") or "").split("\n")[0]
        raise AadLoginError(f"Azure AD refused the sign-in: {error}: {description}".rstrip(": "))
    raise AadLoginError("Azure AD returned no token")


def acquire_token(
    *,
    tenant_id: str,
    client_id: str,
    scopes: list[str] | tuple[str, ...],
    authority_host: str = DEFAULT_AUTHORITY_HOST,
    client_secret: str | None = None,
    certificate_path: str | Path | None = None,
    device_code: bool = False,
    cache_path: Path | str | None = DEFAULT_CACHE_PATH,
    ca_bundle: str | Path | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> str:
    """An access token for ``scopes`` (e.g. ``["api://junction/.default"]``).

    Client credentials when ``client_secret`` or ``certificate_path`` is given, the device-code
    flow when ``device_code`` is true. ``ca_bundle`` overrides the trusted CAs (otherwise
    requests' defaults and ``REQUESTS_CA_BUNDLE`` apply). ``cache_path=None`` keeps the cache in
    memory only. Raises ``AadLoginError`` with a printable message on failure.
    """
    import msal  # the CLI pays for msal only when it signs in

    if bool(client_secret) + bool(certificate_path) + bool(device_code) != 1:
        raise AadLoginError("use exactly one of a client secret, a certificate, or device-code sign-in")
    authority = f"{authority_host.rstrip('/')}/{tenant_id}"
    path = Path(cache_path).expanduser() if cache_path is not None else None
    cache = _load_cache(msal, path) if path is not None else msal.SerializableTokenCache()
    common: dict[str, Any] = {
        "authority": authority,
        "token_cache": cache,
        "instance_discovery": False,  # sovereign and private hosts; the user chose the authority
        "timeout": timeout,
    }
    if ca_bundle is not None:
        common["http_client"] = _session(str(ca_bundle), timeout)
    try:
        if device_code:
            app = msal.PublicClientApplication(client_id, **common)
            result = None
            for account in app.get_accounts():
                result = app.acquire_token_silent(list(scopes), account=account)
                if result:
                    break
            if not result:
                flow = app.initiate_device_flow(scopes=list(scopes))
                if "user_code" not in flow:
                    _result_token(flow)
                print(flow["message"], file=sys.stderr, flush=True)
                result = app.acquire_token_by_device_flow(flow)
        else:
            credential: Any = (
                client_secret if client_secret else load_certificate_credential(certificate_path)  # type: ignore[arg-type]
            )
            app = msal.ConfidentialClientApplication(client_id, client_credential=credential, **common)
            result = app.acquire_token_for_client(scopes=list(scopes))  # the cache is consulted first
    except AadLoginError:
        raise
    except (OSError, ValueError) as exc:
        # Network failures, TLS errors, unreadable certificates, a bad authority.
        raise AadLoginError(f"could not sign in to {authority}: {type(exc).__name__}: {exc}") from None
    token = _result_token(result)
    if path is not None:
        _save_cache(cache, path)
    return token


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - thin manual entry point
    """``python -m cli.aad_login`` prints a token; the real CLI wraps ``acquire_token``."""
    import argparse

    parser = argparse.ArgumentParser(description="Print an Azure AD access token for Junction")
    parser.add_argument("--tenant-id", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--scope", action="append", required=True)
    parser.add_argument("--authority-host", default=DEFAULT_AUTHORITY_HOST)
    parser.add_argument("--client-secret", default=os.environ.get("JUNCTION_CLIENT_SECRET"))
    parser.add_argument("--certificate")
    parser.add_argument("--device-code", action="store_true")
    args = parser.parse_args(argv)
    try:
        token = acquire_token(
            tenant_id=args.tenant_id,
            client_id=args.client_id,
            scopes=args.scope,
            authority_host=args.authority_host,
            client_secret=args.client_secret if not (args.certificate or args.device_code) else None,
            certificate_path=args.certificate,
            device_code=args.device_code,
        )
    except AadLoginError as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 1
    print(token)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
