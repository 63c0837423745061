"""A real, local HTTPS identity provider for Azure AD tests.

It plays login.microsoftonline.com and graph.microsoft.com for one tenant, over real TLS with
its own certificate authority, so the code under test does the same network work it does in
Azure: OpenID discovery, JWKS download, msal's client-credentials and device-code flows, and
Graph ``checkMemberGroups``. Nothing is mocked; tests steer it with plain attributes:

- ``jwks_down``: the JWKS endpoint answers 503; ``jwks_fetches`` counts downloads.
- ``delays``: ``{"discovery" | "jwks" | "token" | "graph" | "msi": seconds}`` makes that endpoint
  answer late (a slow IdP); ``answered_at[kind]`` is when it last finished answering
  (``time.monotonic()``), so tests can check what happened before a slow answer came.
- ``rotate()``: publish a new signing key (dropping the old one unless asked to keep it).
- ``memberships``: ``{oid: {group ids}}`` for Graph; ``graph_failing`` makes Graph answer 503;
  ``graph_calls`` counts checkMemberGroups calls.
- ``register_client()``: an app registration (client secret and/or certificate, app roles);
  ``register_spa()``: a single-page application (redirect URIs), for the console's MSAL.js.
- ``browser_user``: who signs in at the authorization endpoint (authorization code + PKCE, as
  Azure AD requires of single-page applications; the token endpoint answers their origin with
  CORS); None answers ``login_required``. ``authorize_requests`` and ``pkce_checks`` record it.
- ``mint()``: sign any claims with any key and algorithm, to forge tokens.

Start it with ``with LocalIdentityProvider(folder) as idp:``. ``idp.ca_path`` is the CA bundle to
put in ``SSL_CERT_FILE`` and ``REQUESTS_CA_BUNDLE`` (``idp.env()`` gives both), also for a devhost
subprocess. ``python -m tests.support.idp FOLDER`` runs one in the foreground for manual use.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import ssl
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from jwt.algorithms import RSAAlgorithm

DEFAULT_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
TOKEN_LIFETIME = 3600


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_self_signed_certificate(common_name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A client certificate as an app registration would hold (key + self-signed cert)."""
    key = new_rsa_key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def write_certificate_pem(path: Path, key: Any, cert: x509.Certificate) -> Path:
    """Key and certificate in one PEM file (the format ``--certificate`` takes)."""
    path.write_bytes(_pem_key(key) + cert.public_bytes(serialization.Encoding.PEM))
    path.chmod(0o600)
    return path


@dataclass
class Client:
    """An app registration: how it authenticates and which app roles it has been granted."""

    client_id: str
    secret: str | None = None
    certificate: x509.Certificate | None = None
    roles: tuple[str, ...] = ()
    oid: str = field(default_factory=lambda: str(uuid.uuid4()))
    claims: dict[str, Any] = field(default_factory=dict)
    """Extra claims for every token this client gets (e.g. ``groups``)."""
    spa_redirect_uris: tuple[str, ...] = ()
    """Redirect URIs of the "Single-page application" platform (authorization code + PKCE)."""


@dataclass
class DeviceUser:
    """Who "signs in" when a device-code flow is approved."""

    oid: str = field(default_factory=lambda: str(uuid.uuid4()))
    name: str = "Ada Lovelace"
    username: str = "ada@contoso.example"
    claims: dict[str, Any] = field(default_factory=dict)


class LocalIdentityProvider:
    """An HTTPS issuer + Graph stand-in for one tenant, served from a thread."""

    def __init__(self, folder: Path, tenant_id: str = DEFAULT_TENANT) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.tenant_id = tenant_id
        self.clients: dict[str, Client] = {}
        self.memberships: dict[str, set[str]] = {}
        self.graph_failing = False
        self.jwks_down = False
        self.delays: dict[str, float] = {}
        self.answered_at: dict[str, float] = {}
        self.jwks_fetches = 0
        self.discovery_fetches = 0
        self.graph_calls = 0
        self.token_requests = 0
        self.device_codes_issued = 0
        # The App Service managed-identity endpoint (IDENTITY_ENDPOINT): the identities it knows
        # ({client_id: oid}), the header secret it expects, and who asked for what.
        self.managed_identities: dict[str, str] = {}
        self.identity_header = uuid.uuid4().hex
        self.identity_requests: list[dict[str, str]] = []
        self.device_user: DeviceUser | None = None
        """Set to approve device-code sign-ins as this user; None leaves them pending."""
        self._device_flows: dict[str, tuple[str, str]] = {}  # device_code -> (client_id, scope)
        self.browser_user: DeviceUser | None = None
        """Who signs in at the authorization endpoint; None answers ``error=login_required``."""
        self.authorize_requests: list[dict[str, str]] = []
        self.pkce_checks = 0
        self._codes: dict[str, dict[str, Any]] = {}  # authorization code -> its request and user
        self._refresh_tokens: dict[str, tuple[str, str, DeviceUser]] = {}  # -> (client_id, scope, user)
        self._lock = threading.Lock()
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.current_kid = ""
        self.rotate()
        self._make_tls()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LocalIdentityProvider:
        server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.folder / "server.pem", self.folder / "server.key")
        # Handshake in the handler thread, so one stuck client cannot stall the accept loop.
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, name="local-idp", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LocalIdentityProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Both the authority host and the Graph endpoint."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def issuer_v1(self) -> str:
        return f"https://sts.windows.net/{self.tenant_id}/"

    @property
    def issuer_v2(self) -> str:
        return f"{self.base_url}/{self.tenant_id}/v2.0"

    @property
    def token_endpoint(self) -> str:
        return f"{self.base_url}/{self.tenant_id}/oauth2/v2.0/token"

    @property
    def ca_path(self) -> Path:
        return self.folder / "ca.pem"

    def env(self) -> dict[str, str]:
        """Environment that makes Python's ssl and requests trust this IdP."""
        return {"SSL_CERT_FILE": str(self.ca_path), "REQUESTS_CA_BUNDLE": str(self.ca_path)}

    # -- keys and tokens ---------------------------------------------------------------------

    def rotate(self, *, keep_old: bool = False) -> str:
        """Publish a new signing key and sign with it from now on; returns its kid."""
        kid = b64url(uuid.uuid4().bytes)
        with self._lock:
            if not keep_old:
                self.keys = {}
            self.keys[kid] = new_rsa_key()
            self.current_kid = kid
        return kid

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self.keys.items():
            jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "kty": "RSA", "x5t": kid, "issuer": self.issuer_v2})
        return {"keys": keys}

    def public_key_pem(self, kid: str | None = None) -> bytes:
        key = self.keys[kid or self.current_kid]
        return key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def mint(
        self,
        claims: Mapping[str, Any],
        *,
        kid: str | None = None,
        alg: str = "RS256",
        key: Any = None,
        header: Mapping[str, Any] | None = None,
    ) -> str:
        """Sign ``claims`` as this IdP would, or forge: any kid, algorithm, key or header.

        ``alg="none"`` gives an unsigned token; ``HS*`` with ``key=idp.public_key_pem()`` is the
        classic public-key-as-HMAC-secret forgery (pyjwt refuses to make those, so it is done
        by hand here).
        """
        head: dict[str, Any] = {"typ": "JWT", "alg": alg, "kid": kid or self.current_kid}
        head.update(header or {})
        if alg == "none" or alg.startswith("HS"):
            signing_input = f"{b64url(json.dumps(head).encode())}.{b64url(json.dumps(dict(claims)).encode())}"
            if alg == "none":
                return signing_input + "."
            secret = key if isinstance(key, bytes) else str(key).encode()
            digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
            return f"{signing_input}.{b64url(hmac.new(secret, signing_input.encode(), digest).digest())}"
        signing_key = key if key is not None else self.keys[kid or self.current_kid]
        extra = {k: v for k, v in head.items() if k != "alg"}
        return jwt.encode(dict(claims), signing_key, algorithm=alg, headers=extra)

    def _times(self, now: float | None) -> dict[str, int]:
        issued = int(time.time() if now is None else now)
        return {"iat": issued, "nbf": issued, "exp": issued + TOKEN_LIFETIME}

    def user_claims(self, aud: str, *, version: int = 2, now: float | None = None, **overrides: Any) -> dict[str, Any]:
        """A delegated (user) access token's claims, v1 or v2 shaped."""
        oid = overrides.pop("oid", None) or str(uuid.uuid4())
        claims: dict[str, Any] = {
            "aud": aud,
            "iss": self.issuer_v2 if version == 2 else self.issuer_v1,
            **self._times(now),
            "tid": self.tenant_id,
            "oid": oid,
            "sub": b64url(oid.encode()),
            "name": "Grace Hopper",
            "scp": "access_as_user",
            "ver": "2.0" if version == 2 else "1.0",
        }
        if version == 2:
            claims.update({"azp": str(uuid.uuid4()), "preferred_username": "grace@contoso.example"})
        else:
            claims.update(
                {"appid": str(uuid.uuid4()), "upn": "grace@contoso.example", "unique_name": "grace@contoso.example"}
            )
        claims.update(overrides)
        return claims

    def app_claims(
        self,
        aud: str,
        *,
        roles: tuple[str, ...] | list[str] | None = (),
        version: int = 2,
        now: float | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        """An app-only (client credentials) access token's claims."""
        client = str(uuid.uuid4())
        oid = str(uuid.uuid4())
        claims: dict[str, Any] = {
            "aud": aud,
            "iss": self.issuer_v2 if version == 2 else self.issuer_v1,
            **self._times(now),
            "tid": self.tenant_id,
            "oid": oid,
            "sub": oid,
            "idtyp": "app",
            "ver": "2.0" if version == 2 else "1.0",
            ("azp" if version == 2 else "appid"): client,
        }
        if roles is not None:
            claims["roles"] = list(roles)
        claims.update(overrides)
        return claims

    # -- app registrations -------------------------------------------------------------------

    def register_client(
        self,
        client_id: str | None = None,
        *,
        secret: str | None = None,
        certificate: x509.Certificate | None = None,
        roles: tuple[str, ...] = (),
        claims: Mapping[str, Any] | None = None,
    ) -> Client:
        client = Client(
            client_id=client_id or str(uuid.uuid4()),
            secret=secret,
            certificate=certificate,
            roles=tuple(roles),
            claims=dict(claims or {}),
        )
        self.clients[client.client_id] = client
        return client

    def register_certificate_client(self, name: str, **kwargs: Any) -> tuple[Client, Path]:
        """A client that authenticates with a certificate; returns it and its PEM (key + cert)."""
        key, cert = make_self_signed_certificate(name)
        path = write_certificate_pem(self.folder / f"{name}.pem", key, cert)
        return self.register_client(certificate=cert, **kwargs), path

    def register_spa(self, redirect_uri: str, client_id: str | None = None) -> Client:
        """A single-page application registration (the console): public, redirect URI as given."""
        client = self.register_client(client_id)
        client.spa_redirect_uris = (redirect_uri,)
        return client

    def spa_origins(self) -> set[str]:
        return {"{0.scheme}://{0.netloc}".format(urlsplit(uri)) for c in self.clients.values() for uri in c.spa_redirect_uris}

    @property
    def server_spki_sha256(self) -> str:
        """Base64 SHA-256 of the TLS server key, for Chromium's --ignore-certificate-errors-spki-list."""
        cert = x509.load_pem_x509_certificate((self.folder / "server.pem").read_bytes())
        spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(hashlib.sha256(spki).digest()).decode()

    # -- TLS ----------------------------------------------------------------------------------

    def _make_tls(self) -> None:
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name("Junction test identity provider CA")
        ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ca_ski, critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        server_key = ec.generate_private_key(ec.SECP256R1())
        server = (
            x509.CertificateBuilder()
            .subject_name(_name("localhost"))
            .issuer_name(ca_name)
            .public_key(server_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=7))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        self.ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        (self.folder / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
        key_file = self.folder / "server.key"
        key_file.write_bytes(_pem_key(server_key))
        key_file.chmod(0o600)

    # -- request handling (called from the handler) -------------------------------------------

    def _discovery(self) -> dict[str, Any]:
        self.discovery_fetches += 1
        tenant_url = f"{self.base_url}/{self.tenant_id}"
        return {
            "issuer": self.issuer_v2,
            "authorization_endpoint": f"{tenant_url}/oauth2/v2.0/authorize",
            "token_endpoint": self.token_endpoint,
            "device_authorization_endpoint": f"{tenant_url}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{tenant_url}/oauth2/v2.0/logout",
            "jwks_uri": f"{tenant_url}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "tenant_region_scope": "EU",
        }

    def _client_from_request(self, form: Mapping[str, str]) -> Client | None:
        client = self.clients.get(form.get("client_id", ""))
        if client is None:
            return None
        if "client_secret" in form:
            ok = client.secret is not None and hmac.compare_digest(form["client_secret"], client.secret)
            return client if ok else None
        if form.get("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            if client.certificate is None:
                return None
            assertion = form.get("client_assertion", "")
            try:
                header = jwt.get_unverified_header(assertion)
                der = client.certificate.public_bytes(serialization.Encoding.DER)
                if header.get("x5t#S256"):
                    thumb_ok = header["x5t#S256"].rstrip("=") == b64url(hashlib.sha256(der).digest())
                else:
                    thumb_ok = str(header.get("x5t", "")).rstrip("=") == b64url(hashlib.sha1(der).digest())
                if not thumb_ok:
                    return None
                jwt.decode(
                    assertion,
                    client.certificate.public_key(),
                    algorithms=["PS256", "RS256"],
                    audience=self.token_endpoint,
                    issuer=client.client_id,
                    options={"require": ["exp", "aud", "iss", "sub"]},
                )
            except jwt.PyJWTError:
                return None
            return client
        return None

    def _token(self, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        self.token_requests += 1
        grant = form.get("grant_type")
        if grant == "client_credentials":
            client = self._client_from_request(form)
            if client is None:
                return 401, {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret or assertion.",
                }
            scopes = form.get("scope", "").split()
            if len(scopes) != 1 or not scopes[0].endswith("/.default"):
                return 400, {"error": "invalid_scope", "error_description": "AADSTS1002012: use '<resource>/.default'."}
            resource = scopes[0][: -len("/.default")]
            roles = () if resource == self.base_url else client.roles
            claims = self.app_claims(
                resource, roles=list(roles) if roles else None, azp=client.client_id, oid=client.oid
            )
            claims.update(client.claims)
            return 200, self._token_response(self.mint(claims))
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            flow = self._device_flows.get(form.get("device_code", ""))
            if flow is None:
                return 400, {"error": "expired_token", "error_description": "unknown device code"}
            if self.device_user is None:
                return 400, {"error": "authorization_pending", "error_description": "AADSTS70016: pending"}
            client_id, scope = flow
            del self._device_flows[form["device_code"]]
            return 200, self._user_tokens(client_id, scope, self.device_user)
        if grant == "authorization_code":
            code = self._codes.pop(form.get("code", ""), None)
            if code is None:
                return 400, {"error": "invalid_grant", "error_description": "AADSTS70008: the code is unknown, used or expired."}
            if form.get("client_id") != code["client_id"] or form.get("redirect_uri") != code["redirect_uri"]:
                return 400, {"error": "invalid_grant", "error_description": "AADSTS50148: client_id or redirect_uri differs from the authorization request."}
            verifier = form.get("code_verifier", "")
            if not verifier or b64url(hashlib.sha256(verifier.encode()).digest()) != code["challenge"]:
                return 400, {"error": "invalid_grant", "error_description": "AADSTS501481: The Code_Verifier does not match the code_challenge supplied in the authorization request."}
            self.pkce_checks += 1
            return 200, self._user_tokens(code["client_id"], code["scope"], code["user"], nonce=code["nonce"], delegated_default="access_as_user")
        if grant == "refresh_token":
            held = self._refresh_tokens.get(form.get("refresh_token", ""))
            if held is None or held[0] != form.get("client_id"):
                return 400, {"error": "invalid_grant", "error_description": "AADSTS700082: the refresh token is unknown or expired."}
            return 200, self._user_tokens(held[0], form.get("scope") or held[1], held[2], delegated_default="access_as_user")
        return 400, {"error": "unsupported_grant_type", "error_description": f"grant {grant!r} is not supported here"}

    def _user_tokens(
        self, client_id: str, scope: str, user: DeviceUser, *, nonce: str | None = None, delegated_default: str | None = None
    ) -> dict[str, Any]:
        """Access, ID and refresh tokens for a user signed in to ``client_id`` (device code or
        authorization code). ``delegated_default`` is what ``.default`` grants (Azure AD puts the
        consented scopes, not ``.default``, in ``scp``)."""
        resource_scopes = [s for s in scope.split() if s not in ("openid", "profile", "offline_access")]
        resource = resource_scopes[0].rsplit("/", 1)[0] if resource_scopes else client_id
        names = " ".join(s.rsplit("/", 1)[-1] for s in resource_scopes)
        if delegated_default and names == ".default":
            names = delegated_default
        claims = self.user_claims(
            resource, oid=user.oid, name=user.name, preferred_username=user.username, azp=client_id, scp=names
        )
        claims.update(user.claims)
        id_claims = {
            **self._times(None),
            "aud": client_id,
            "iss": self.issuer_v2,
            "tid": self.tenant_id,
            "oid": user.oid,
            "sub": claims["sub"],
            "name": user.name,
            "preferred_username": user.username,
            "ver": "2.0",
        }
        if nonce is not None:
            id_claims["nonce"] = nonce
        refresh = b64url(uuid.uuid4().bytes)
        self._refresh_tokens[refresh] = (client_id, scope, user)
        response = self._token_response(self.mint(claims))
        response.update(
            {
                "scope": scope,
                "id_token": self.mint(id_claims),
                "refresh_token": refresh,
                "client_info": b64url(json.dumps({"uid": user.oid, "utid": self.tenant_id}).encode()),
            }
        )
        return response

    def _authorize(self, query: Mapping[str, str]) -> tuple[int, dict[str, Any] | None, str | None]:
        """The authorization endpoint as Azure AD runs it for a single-page application:
        ``(status, error payload, redirect location)``. The person is ``browser_user``, already
        signed in (there is no page to type a password into)."""
        self.authorize_requests.append(dict(query))
        client = self.clients.get(query.get("client_id", ""))
        if client is None:
            return 400, {"error": "unauthorized_client", "error_description": "AADSTS700016: unknown application"}, None
        redirect = query.get("redirect_uri", "")
        if redirect not in client.spa_redirect_uris:
            return 400, {"error": "invalid_request", "error_description": "AADSTS50011: the redirect URI does not match the application's"}, None
        answer: dict[str, str] = {"state": query.get("state", "")}
        if query.get("response_type") != "code":
            answer.update(error="unsupported_response_type", error_description="AADSTS700054: response_type must be code")
        elif query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            answer.update(error="invalid_request", error_description="AADSTS9002325: Proof Key for Code Exchange is required for cross-origin authorization code redemption.")
        elif self.browser_user is None:
            answer.update(error="login_required", error_description="AADSTS50058: no one is signed in")
        else:
            code = b64url(uuid.uuid4().bytes)
            self._codes[code] = {
                "client_id": client.client_id,
                "redirect_uri": redirect,
                "scope": query.get("scope", ""),
                "nonce": query.get("nonce"),
                "challenge": query["code_challenge"],
                "user": self.browser_user,
            }
            answer.update(
                code=code,
                client_info=b64url(json.dumps({"uid": self.browser_user.oid, "utid": self.tenant_id}).encode()),
                session_state=str(uuid.uuid4()),
            )
        separator = "?" if query.get("response_mode") == "query" else "#"
        return 302, None, f"{redirect}{separator}{urlencode(answer)}"

    @staticmethod
    def _token_response(access_token: str) -> dict[str, Any]:
        return {
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "ext_expires_in": TOKEN_LIFETIME,
            "access_token": access_token,
        }

    @property
    def identity_endpoint(self) -> str:
        return f"{self.base_url}/msi/token"

    def _managed_identity_token(self, query: Mapping[str, str], header: str | None) -> tuple[int, dict[str, Any]]:
        """As App Service's endpoint: ``resource`` (not scopes), the client id of a user-assigned
        identity, the ``X-IDENTITY-HEADER`` secret, and ``expires_on`` in epoch seconds."""
        self.identity_requests.append(dict(query))
        if header != self.identity_header:
            return 401, {"statusCode": 401, "message": "X-IDENTITY-HEADER is missing or wrong"}
        if query.get("api-version") != "2019-08-01" or not query.get("resource"):
            return 400, {"statusCode": 400, "message": "api-version 2019-08-01 and resource are required"}
        oid = self.managed_identities.get(query.get("client_id", ""))
        if oid is None:
            return 400, {"statusCode": 400, "message": "No managed identity with that client id"}
        resource = query["resource"]
        claims = self.app_claims(resource, azp=query["client_id"], oid=oid)
        now = int(time.time())
        return 200, {"access_token": self.mint(claims), "expires_on": str(now + TOKEN_LIFETIME),
                     "resource": resource, "token_type": "Bearer", "client_id": query["client_id"]}  # fmt: skip

    def _devicecode(self, form: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("client_id") not in self.clients:
            return 400, {"error": "unauthorized_client", "error_description": "AADSTS700016: unknown application"}
        self.device_codes_issued += 1
        device_code = b64url(uuid.uuid4().bytes)
        user_code = uuid.uuid4().hex[:9].upper()
        self._device_flows[device_code] = (form["client_id"], form.get("scope", ""))
        verification = f"{self.base_url}/devicelogin"
        return 200, {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": verification,
            "expires_in": 900,
            "interval": 1,
            "message": f"To sign in, use a web browser to open the page {verification} and enter the code {user_code} to authenticate.",
        }

    def _check_member_groups(self, oid: str, authorization: str | None, body: bytes) -> tuple[int, dict[str, Any]]:
        self.graph_calls += 1
        if self.graph_failing:
            return 503, {"error": {"code": "serviceNotAvailable", "message": "Graph is down (test switch)"}}
        token = (authorization or "").removeprefix("Bearer ")
        try:
            kid = jwt.get_unverified_header(token).get("kid", "")
            jwt.decode(
                token,
                self.keys[kid].public_key(),
                algorithms=["RS256"],
                audience=self.base_url,
                issuer=self.issuer_v2,
            )
        except (jwt.PyJWTError, KeyError):
            return 401, {"error": {"code": "InvalidAuthenticationToken", "message": "Access token validation failure."}}
        try:
            ids = json.loads(body)["groupIds"]
        except (ValueError, KeyError, TypeError):
            return 400, {"error": {"code": "Request_BadRequest", "message": "groupIds required"}}
        member_of = {g.lower() for g in self.memberships.get(oid.lower(), set())}
        return 200, {"value": [g for g in ids if g.lower() in member_of]}


class _QuietServer(ThreadingHTTPServer):
    """Clients that refuse the test CA (tests of exactly that) are not worth a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def _handler_for(idp: LocalIdentityProvider) -> type[BaseHTTPRequestHandler]:
    tenant = idp.tenant_id

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet tests
            pass

        def _send(self, status: int, payload: Any) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self._cors()
            self.end_headers()
            self.wfile.write(body)

        def _cors(self) -> None:
            """As Azure AD: discovery and keys for any origin; the token endpoint for the origins
            of single-page applications' redirect URIs only."""
            origin = self.headers.get("Origin")
            if origin is None:
                return
            path = urlsplit(self.path).path
            if self.command == "GET" or self.command == "OPTIONS" and "/oauth2/" not in path:
                self.send_header("Access-Control-Allow-Origin", "*")
            elif origin in idp.spa_origins():
                self.send_header("Access-Control-Allow-Origin", origin)
                self.send_header("Vary", "Origin")

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()

        def do_OPTIONS(self) -> None:  # noqa: N802 - CORS preflight
            self.send_response(204)
            self._cors()
            self.send_header("Access-Control-Allow-Methods", "GET, POST")
            requested = self.headers.get("Access-Control-Request-Headers")
            if requested:
                self.send_header("Access-Control-Allow-Headers", requested)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _late(self, kind: str, status: int, payload: Any) -> None:
            """Answer after ``idp.delays[kind]`` seconds (a slow IdP), noting when it answered."""
            delay = idp.delays.get(kind, 0.0)
            if delay:
                time.sleep(delay)
            try:
                self._send(status, payload)
            finally:
                idp.answered_at[kind] = time.monotonic()

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def do_GET(self) -> None:  # noqa: N802
            path = urlsplit(self.path).path
            if path in (
                f"/{tenant}/v2.0/.well-known/openid-configuration",
                f"/{tenant}/.well-known/openid-configuration",
            ):
                self._late("discovery", 200, idp._discovery())
            elif path == f"/{tenant}/oauth2/v2.0/authorize":
                query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
                status, payload, location = idp._authorize(query)
                if location is not None:
                    self._redirect(location)
                else:
                    self._send(status, payload)
            elif path == f"/{tenant}/oauth2/v2.0/logout":
                query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
                target = query.get("post_logout_redirect_uri", "")
                if urlsplit(target).scheme and "{0.scheme}://{0.netloc}".format(urlsplit(target)) in idp.spa_origins():
                    self._redirect(target)
                else:
                    self._send(200, {"signedOut": True})
            elif path == "/msi/token":
                query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
                self._late("msi", *idp._managed_identity_token(query, self.headers.get("X-IDENTITY-HEADER")))
            elif path == f"/{tenant}/discovery/v2.0/keys":
                idp.jwks_fetches += 1
                if idp.jwks_down:
                    self._late("jwks", 503, {"error": "temporarily_unavailable"})
                else:
                    self._late("jwks", 200, idp.jwks())
            else:
                self._send(404, {"error": "not_found", "path": path})

        def do_POST(self) -> None:  # noqa: N802
            path = urlsplit(self.path).path
            body = self._body()
            form = {k: v[-1] for k, v in parse_qs(body.decode(errors="replace")).items()}
            if path == f"/{tenant}/oauth2/v2.0/token":
                self._late("token", *idp._token(form))
            elif path == f"/{tenant}/oauth2/v2.0/devicecode":
                self._send(*idp._devicecode(form))
            elif path.startswith("/v1.0/users/") and path.endswith("/checkMemberGroups"):
                oid = path[len("/v1.0/users/") : -len("/checkMemberGroups")]
                self._late("graph", *idp._check_member_groups(oid, self.headers.get("Authorization"), body))
            else:
                self._send(404, {"error": "not_found", "path": path})

    return Handler


def running_idp(folder: Path) -> Iterator[LocalIdentityProvider]:
    """Generator for pytest fixtures: a started IdP whose CA the process trusts meanwhile."""
    import os

    idp = LocalIdentityProvider(folder).start()
    saved = {name: os.environ.get(name) for name in idp.env()}
    os.environ.update(idp.env())
    try:
        yield idp
    finally:
        idp.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


AUDIENCE = "api://junction"
API_CLIENT_ID = "6f1f3c1e-0d2b-4c4e-9a51-3b7f2d9e8a10"


def aad_settings(idp: LocalIdentityProvider, **overrides: Any) -> Any:
    """Junction settings that trust ``idp``'s tenant (audiences: the App ID URI and client id)."""
    from core.kernel.settings import Settings, StorageSettings

    values: dict[str, Any] = {
        "storage": StorageSettings(connection_string="UseDevelopmentStorage=true"),
        "aad_tenant_id": idp.tenant_id,
        "aad_audiences": (AUDIENCE, API_CLIENT_ID),
        "aad_authority_host": idp.base_url,
        "graph_endpoint": idp.base_url,
    }
    values.update(overrides)
    return Settings(**values)


if __name__ == "__main__":  # pragma: no cover - manual use
    import sys

    with LocalIdentityProvider(Path(sys.argv[1] if len(sys.argv) > 1 else "idp")) as running:
        print(json.dumps({"base_url": running.base_url, "tenant": running.tenant_id, "ca": str(running.ca_path)}))
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
