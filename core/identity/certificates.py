"""Client certificate authentication for API-bound operations (``X-ARR-ClientCert``).

App Service terminates TLS. When the app's client certificate mode is enabled it asks the
caller for a certificate, checks that the caller holds its private key (the TLS handshake) and
forwards the certificate to the app, base64 DER, in ``X-ARR-ClientCert``, overwriting any
header of that name the caller sent. Junction then decides whether to *trust* it:

- only over HTTPS (a certificate "sent" over plain HTTP proves nothing): 403;
- the chain must lead to one of the binding's trusted issuer certificates. Path validation is
  cryptography's RFC 5280 client verifier (signatures, issuer/subject chaining, CA basic
  constraints and key usage of the issuers, path length); intermediate CAs may be listed among
  the trusted issuers;
- the leaf must be inside its validity period and carry Extended Key Usage ``clientAuth``;
- the principal's username is the leaf's subject as an RFC 4514 string.

Security note: the header is only as trustworthy as whatever sets it. In Azure it is App
Service, and only where the deployment turned client certificates on (``clientCertEnabled``,
mode ``Optional``/``Required``) and the path is not one of ``clientCertExclusionPaths``;
anywhere else the front end does not ask for a certificate and the header is what the caller
sent. So the header is read only where JUNCTION_CLIENT_CERT_ENABLED and _EXCLUSION_PATHS (set by
the deployment from the same parameters) say the front end sets it (:func:`forwarded_certificate`); elsewhere a
certificate-bound operation answers 401 and the log says the deployment is misconfigured.
``docs/deploy.md`` and ``docs/api-operations.md`` say so.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import re
from collections.abc import Sequence
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from core.kernel.errors import BadRequest, Forbidden, Unauthorized
from core.kernel.settings import ClientCertificateSettings

logger = logging.getLogger(__name__)

HEADER = "x-arr-clientcert"
MAX_HEADER_LENGTH = 32_768
MAX_TRUSTED_ISSUERS = 20
MAX_CHAIN_DEPTH = 8
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----")


def _refused(message: str) -> Unauthorized:
    return Unauthorized(message, "InvalidClientCertificate", error="invalid_request")


def parse_trusted_issuers(pems: Sequence[str]) -> list[str]:
    """Trusted issuer certificates of a binding, validated and re-serialised as PEM.

    BadRequest names the entry that is not a certificate. Each entry may hold several PEM
    blocks (a CA and its intermediates).
    """
    if not pems:
        raise BadRequest("authentication.trustedIssuers: list at least one issuer certificate (PEM)", "InvalidBinding")
    out: list[str] = []
    for index, text in enumerate(pems):
        blocks = _PEM.findall(text or "")
        if not blocks:
            raise BadRequest(f"authentication.trustedIssuers[{index}] is not a PEM certificate", "InvalidBinding")
        for block in blocks:
            try:
                cert = x509.load_pem_x509_certificate(block.encode("ascii"))
            except ValueError:
                raise BadRequest(f"authentication.trustedIssuers[{index}] is not a valid certificate", "InvalidBinding") from None
            try:
                is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
            except x509.ExtensionNotFound:
                is_ca = False
            if not is_ca:
                raise BadRequest(
                    f"authentication.trustedIssuers[{index}] is not a CA certificate (basicConstraints CA:TRUE)",
                    "InvalidBinding",
                )
            out.append(cert.public_bytes(serialization.Encoding.PEM).decode("ascii"))
    if len(out) > MAX_TRUSTED_ISSUERS:
        raise BadRequest(f"authentication.trustedIssuers: at most {MAX_TRUSTED_ISSUERS} certificates", "InvalidBinding")
    return out


def load_client_certificate(value: str) -> x509.Certificate:
    """The certificate in an ``X-ARR-ClientCert`` value: base64 DER, or PEM (also URL-encoded)."""
    if len(value) > MAX_HEADER_LENGTH:
        raise _refused("the client certificate header is too long")
    text = value.strip()
    if "%" in text and "-----BEGIN" not in text:
        text = unquote(text)  # some proxies URL-encode a PEM
    try:
        if "-----BEGIN CERTIFICATE-----" in text:
            return x509.load_pem_x509_certificate(text.encode("ascii"))
        der = base64.b64decode("".join(text.split()), validate=True)
        return x509.load_der_x509_certificate(der)
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise _refused("the client certificate cannot be read") from None


def _store(trusted_pems: Sequence[str]) -> list[x509.Certificate]:
    certs: list[x509.Certificate] = []
    for text in trusted_pems:
        for block in _PEM.findall(text):
            certs.append(x509.load_pem_x509_certificate(block.encode("ascii")))
    return certs


def forwarded_certificate(deployment: ClientCertificateSettings, path: str, header_value: str | None) -> str | None:
    """``X-ARR-ClientCert`` when the front end sets it for ``path``; Unauthorized otherwise.

    Refusing (rather than reading the header anyway) is the point: with client certificates off,
    or on an excluded path, the front end passes a caller's own ``X-ARR-ClientCert`` through, and
    anyone could present a public certificate of a trusted partner.
    """
    if not deployment.enabled:
        logger.warning(
            "certificate-bound operation %s refused: the deployment is misconfigured for client certificates:"
            " JUNCTION_CLIENT_CERT_ENABLED is not true, so App Service does not ask callers for a certificate and"
            " X-ARR-ClientCert cannot be trusted (deploy with clientCertEnabled=true; docs/deploy.md)",
            path[:200],
        )
        raise Unauthorized("client certificates are not turned on for this deployment", "ClientCertificatesNotEnabled")
    if deployment.excluded(path):
        logger.warning(
            "certificate-bound operation %s refused: the deployment is misconfigured for client certificates:"
            " the path is under JUNCTION_CLIENT_CERT_EXCLUSION_PATHS, where App Service does not ask for a"
            " certificate, so X-ARR-ClientCert cannot be trusted (remove it from clientCertExclusionPaths)",
            path[:200],
        )
        raise Unauthorized("client certificates are not requested on this path", "ClientCertificatesNotEnabled")
    return header_value


def verify_client_certificate(
    header_value: str | None,
    trusted_pems: Sequence[str],
    *,
    scheme: str,
    now: dt.datetime | None = None,
) -> str:
    """The subject (RFC 4514) of a client certificate the binding trusts.

    Forbidden over plain HTTP; Unauthorized when the certificate is missing, unreadable,
    expired or not yet valid, not for client authentication, or not issued by a trusted issuer.
    """
    from cryptography.x509.verification import PolicyBuilder, Store, VerificationError  # cold start

    if scheme != "https":
        raise Forbidden("client certificates are accepted only over HTTPS", "HttpsRequired")
    if not header_value:
        raise Unauthorized("this operation needs a client certificate", "ClientCertificateRequired")
    leaf = load_client_certificate(header_value)
    moment = now or dt.datetime.now(dt.UTC)
    if moment < leaf.not_valid_before_utc:
        raise _refused("the client certificate is not valid yet")
    if moment > leaf.not_valid_after_utc:
        raise _refused("the client certificate has expired")
    try:
        usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise _refused("the client certificate is not for client authentication (no extended key usage)") from None
    if ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        raise _refused("the client certificate is not for client authentication")
    anchors = _store(trusted_pems)
    if not anchors:
        raise _refused("no trusted issuer is configured for this operation")
    intermediates = [c for c in anchors if c.subject != c.issuer]
    try:
        verifier = (
            PolicyBuilder().store(Store(anchors)).time(moment).max_chain_depth(MAX_CHAIN_DEPTH).build_client_verifier()
        )
        verifier.verify(leaf, intermediates)
    except VerificationError as exc:
        logger.info("client certificate %s refused: %s", leaf.subject.rfc4514_string()[:200], exc)
        raise _refused("the client certificate is not issued by a trusted issuer") from None
    except ValueError as exc:  # malformed extensions and the like: refused, never a 500
        logger.info("client certificate refused: %s", exc)
        raise _refused("the client certificate cannot be verified") from None
    return leaf.subject.rfc4514_string()
