"""A certificate-bound operation trusts X-ARR-ClientCert only where the deployment says App
Service asks for a certificate (JUNCTION_CLIENT_CERT_*, written by infra/ from the same
parameters as the site's clientCertEnabled, clientCertMode and clientCertExclusionPaths).

devhost plays the front end with --trust-forwarded-client-cert: the header reaches the app as a
caller sent it, which is what App Service does where it did not ask for a certificate.
"""

from __future__ import annotations

from pathlib import Path

from devhost.azurite import Azurite
from tests.e2e.conftest import assert_json_error, serve_junction
from tests.support.pki import Authority, header_value

HTTPS = {"X-Forwarded-Proto": "https"}
PARTNERS = Authority("Deployment Partners CA")
DOCUMENT = {
    "openapi": "3.0.3",
    "info": {"title": "partners", "version": "1"},
    "servers": [{"url": "/partners"}],
    "paths": {
        "/orders": {"get": {"operationId": "orders", "responses": {"200": {"description": "ok"}}}},
        "/public/orders": {"get": {"operationId": "publicOrders", "responses": {"200": {"description": "ok"}}}},
    },
}
PROCESS = {"steps": [{"type": "return", "value": {"jmespath": "{user: trigger.data.username}"}}]}
ARGS = ["--no-timers", "--no-queues", "--trust-forwarded-client-cert"]


def _deployment(**env: str) -> dict[str, str]:
    return {"JUNCTION_CLIENT_CERT_MODE": "Optional", **env}


def test_certificate_operations_follow_the_deployment(azurite: Azurite, tmp_path: Path) -> None:
    good = header_value(PARTNERS.issue("Partner One"))
    for name in ("on", "off"):
        (tmp_path / name).mkdir()
    on = _deployment(JUNCTION_CLIENT_CERT_ENABLED="true", JUNCTION_CLIENT_CERT_EXCLUSION_PATHS="/ExternalData;/PARTNERS/public")
    with serve_junction(azurite, "e2ecertdeploy", tmp_path / "on", extra_env=on, args=ARGS) as junction:
        scenario = junction.create_scenario(process=PROCESS)
        with junction.admin() as admin:
            assert admin.put("/management/apis/partners", json=DOCUMENT).status_code in (200, 201)
            for operation in ("orders", "publicOrders"):
                binding = {"scenarioId": scenario["id"], "authentication": {"type": "certificate", "trustedIssuers": [PARTNERS.pem]}}
                assert admin.put(f"/management/apis/partners/operations/{operation}", json=binding).status_code == 200
        with junction.client() as client:
            accepted = client.get("/partners/orders", headers={**HTTPS, "X-ARR-ClientCert": good})
            excluded = client.get("/partners/public/orders", headers={**HTTPS, "X-ARR-ClientCert": good})
            encoded = client.get("/partners/%70ublic/orders", headers={**HTTPS, "X-ARR-ClientCert": good})
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["user"] == "CN=Partner One,O=Contoso"
        # Under an exclusion path the front end asks for no certificate: the header is the caller's.
        assert_json_error(excluded, 401, "ClientCertificatesNotEnabled")
        assert encoded.status_code in (401, 404), encoded.text
        assert "under JUNCTION_CLIENT_CERT_EXCLUSION_PATHS" in (tmp_path / "on" / "devhost.log").read_text()

    off = _deployment(JUNCTION_CLIENT_CERT_ENABLED="false")
    with serve_junction(azurite, "e2ecertdeploy", tmp_path / "off", extra_env=off, args=ARGS) as junction:
        with junction.client() as client:
            refused = client.get("/partners/orders", headers={**HTTPS, "X-ARR-ClientCert": good})
        assert_json_error(refused, 401, "ClientCertificatesNotEnabled")
        log = (tmp_path / "off" / "devhost.log").read_text()
        assert "the deployment is misconfigured for client certificates" in log
        assert "JUNCTION_CLIENT_CERT_ENABLED is not true" in log
