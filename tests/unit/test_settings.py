"""Settings are validated once, with messages that name the setting."""

from __future__ import annotations

import pytest

from core.kernel.errors import ConfigurationError
from core.kernel.settings import DEVELOPMENT_CONNECTION_STRING, load_settings

BASE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}


def test_defaults() -> None:
    settings = load_settings(BASE)
    assert settings.storage.connection_string == DEVELOPMENT_CONNECTION_STRING
    assert settings.max_body_bytes == 10 * 1024 * 1024
    assert not settings.aad_enabled
    assert settings.aad_authority_host == "https://login.microsoftonline.com"
    assert settings.run_retention_days == 30
    assert settings.outbound_allowed_hosts == ()


def test_allowed_hosts_in_every_accepted_form() -> None:
    settings = load_settings({**BASE, "JUNCTION_OUTBOUND_ALLOWED_HOSTS": " API.example.com , erp.example.net:8443,*.svc.example.org,127.0.0.1:9000"})
    assert settings.outbound_allowed_hosts == ("api.example.com", "erp.example.net:8443", "*.svc.example.org", "127.0.0.1:9000")


def test_identity_based_storage() -> None:
    settings = load_settings(
        {
            "AzureWebJobsStorage__tableServiceUri": "https://acct.table.core.windows.net",
            "AzureWebJobsStorage__queueServiceUri": "https://acct.queue.core.windows.net",
            "AzureWebJobsStorage__blobServiceUri": "https://acct.blob.core.windows.net",
            "AzureWebJobsStorage__credential": "managedidentity",
            "AzureWebJobsStorage__clientId": "00000000-0000-0000-0000-000000000001",
        }
    )
    assert settings.storage.uses_identity
    assert settings.storage.table_uri == "https://acct.table.core.windows.net"
    assert settings.storage.client_id == "00000000-0000-0000-0000-000000000001"


def test_frozen() -> None:
    settings = load_settings(BASE)
    with pytest.raises(AttributeError):
        settings.max_body_bytes = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({}, "AzureWebJobsStorage"),
        ({**BASE, "JUNCTION_MAX_BODY_BYTES": "lots"}, "JUNCTION_MAX_BODY_BYTES"),
        ({**BASE, "JUNCTION_MAX_BODY_BYTES": "100000001"}, "JUNCTION_MAX_BODY_BYTES"),
        ({**BASE, "JUNCTION_AAD_TENANT_ID": "contoso"}, "JUNCTION_AAD_TENANT_ID"),
        ({**BASE, "JUNCTION_AAD_TENANT_ID": "72f988bf-86f1-41af-91ab-2d7cd011db47"}, "JUNCTION_AAD_AUDIENCE"),
        ({**BASE, "JUNCTION_AAD_AUTHORITY_HOST": "http://login.example"}, "JUNCTION_AAD_AUTHORITY_HOST"),
        ({**BASE, "JUNCTION_AAD_GROUP_ID": "admins"}, "JUNCTION_AAD_GROUP_ID"),
        ({**BASE, "JUNCTION_TABLE_PREFIX": "bad-prefix"}, "JUNCTION_TABLE_PREFIX"),
        ({**BASE, "JUNCTION_RUN_RETENTION_DAYS": "0"}, "JUNCTION_RUN_RETENTION_DAYS"),
        ({**BASE, "JUNCTION_RUN_RETENTION_DAYS": "30d"}, "JUNCTION_RUN_RETENTION_DAYS"),
        ({**BASE, "JUNCTION_API_DEADLINE_SECONDS": "0"}, "JUNCTION_API_DEADLINE_SECONDS"),
        ({**BASE, "JUNCTION_API_DEADLINE_SECONDS": "230"}, "JUNCTION_API_DEADLINE_SECONDS"),
        ({**BASE, "JUNCTION_API_DEADLINE_SECONDS": "3m"}, "JUNCTION_API_DEADLINE_SECONDS"),
        ({**BASE, "JUNCTION_API_DEADLINE_SECONDS": "nan"}, "JUNCTION_API_DEADLINE_SECONDS"),
        ({**BASE, "JUNCTION_SCENARIO_HOLD_SECONDS": "61"}, "JUNCTION_SCENARIO_HOLD_SECONDS"),
        ({**BASE, "JUNCTION_SCENARIO_HOLD_SECONDS": "-1"}, "JUNCTION_SCENARIO_HOLD_SECONDS"),
        ({**BASE, "JUNCTION_SCENARIO_HOLD_SECONDS": "inf"}, "JUNCTION_SCENARIO_HOLD_SECONDS"),
        ({**BASE, "JUNCTION_SCENARIO_HOLD_SECONDS": "1s"}, "JUNCTION_SCENARIO_HOLD_SECONDS"),
        ({**BASE, "JUNCTION_MAX_RUN_QUEUE_DEPTH": "-1"}, "JUNCTION_MAX_RUN_QUEUE_DEPTH"),
        ({**BASE, "JUNCTION_MAX_RUN_QUEUE_DEPTH": "1e6"}, "JUNCTION_MAX_RUN_QUEUE_DEPTH"),
        ({**BASE, "JUNCTION_MAX_RUN_QUEUE_DEPTH": "10000001"}, "JUNCTION_MAX_RUN_QUEUE_DEPTH"),
        ({**BASE, "JUNCTION_OUTBOUND_ALLOWED_HOSTS": "api.example.com,https://erp.example.net"}, "JUNCTION_OUTBOUND_ALLOWED_HOSTS"),
        ({**BASE, "JUNCTION_OUTBOUND_ALLOWED_HOSTS": "*"}, "JUNCTION_OUTBOUND_ALLOWED_HOSTS"),
        ({**BASE, "JUNCTION_OUTBOUND_ALLOWED_HOSTS": "api.example.com:99999"}, "JUNCTION_OUTBOUND_ALLOWED_HOSTS"),
        ({**BASE, "JUNCTION_OUTBOUND_ALLOWED_HOSTS": "api.example.com/path"}, "JUNCTION_OUTBOUND_ALLOWED_HOSTS"),
        ({**BASE, "JUNCTION_OAUTH_ISSUERS": "http://idp.example.com/realms/acme"}, "JUNCTION_OAUTH_ISSUERS"),
        ({**BASE, "JUNCTION_OAUTH_ISSUERS": "idp.example.com"}, "JUNCTION_OAUTH_ISSUERS"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        load_settings(env)


def test_api_deadline_default_and_value() -> None:
    assert load_settings(BASE).api_deadline_seconds == 180
    assert load_settings({**BASE, "JUNCTION_API_DEADLINE_SECONDS": " 2.5 "}).api_deadline_seconds == 2.5
    assert load_settings(BASE).scenario_hold_seconds == 1.0
    assert load_settings({**BASE, "JUNCTION_SCENARIO_HOLD_SECONDS": "0"}).scenario_hold_seconds == 0.0
    assert load_settings({**BASE, "JUNCTION_SCENARIO_HOLD_SECONDS": "0.25"}).scenario_hold_seconds == 0.25


def test_run_queue_bound_default_and_value() -> None:
    assert load_settings(BASE).max_run_queue_depth == 0
    assert load_settings({**BASE, "JUNCTION_MAX_RUN_QUEUE_DEPTH": " 5000 "}).max_run_queue_depth == 5000


def test_audiences_are_a_list() -> None:
    settings = load_settings(
        {**BASE, "JUNCTION_AAD_TENANT_ID": "72F988BF-86F1-41AF-91AB-2D7CD011DB47", "JUNCTION_AAD_AUDIENCE": "api://junction, 11111111-1111-1111-1111-111111111111"}
    )
    assert settings.aad_tenant_id == "72f988bf-86f1-41af-91ab-2d7cd011db47"
    assert settings.aad_audiences == ("api://junction", "11111111-1111-1111-1111-111111111111")


def test_client_certificates_are_off_unless_the_deployment_turns_them_on() -> None:
    deployment = load_settings(BASE).client_certificates
    assert (deployment.enabled, deployment.mode, deployment.exclusion_paths) == (False, "Optional", ())


def test_client_certificate_settings_as_the_deployment_writes_them() -> None:
    # ARM's string(true) is "True"; the mode is matched without regard to case.
    deployment = load_settings(
        {
            **BASE,
            "JUNCTION_CLIENT_CERT_ENABLED": "True",
            "JUNCTION_CLIENT_CERT_MODE": "required",
            "JUNCTION_CLIENT_CERT_EXCLUSION_PATHS": " /ExternalData ; /management,/Public ",
        }
    ).client_certificates
    assert (deployment.enabled, deployment.mode) == (True, "Required")
    assert deployment.exclusion_paths == ("/ExternalData", "/management", "/Public")


def test_exclusion_paths_match_as_the_front_end_matches_them() -> None:
    deployment = load_settings({**BASE, "JUNCTION_CLIENT_CERT_ENABLED": "true", "JUNCTION_CLIENT_CERT_EXCLUSION_PATHS": "/Public"}).client_certificates
    # Case-insensitive prefixes, like App Service's clientCertExclusionPaths ("/Public" covers "/publicity").
    for path in ("/public", "/PUBLIC/orders", "/publicity", "/%70ublic/orders", "/%50UBLIC"):
        assert deployment.excluded(path), path
    for path in ("/", "/api/public", "/pub"):
        assert not deployment.excluded(path), path


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"JUNCTION_CLIENT_CERT_ENABLED": "yes"}, "JUNCTION_CLIENT_CERT_ENABLED must be true or false"),
        ({"JUNCTION_CLIENT_CERT_MODE": "OptionalInteractiveUser"}, "renegotiate TLS"),
        ({"JUNCTION_CLIENT_CERT_MODE": "Ignore"}, "JUNCTION_CLIENT_CERT_MODE must be Required or Optional"),
        ({"JUNCTION_CLIENT_CERT_EXCLUSION_PATHS": "/ok;management"}, "JUNCTION_CLIENT_CERT_EXCLUSION_PATHS"),
    ],
)
def test_client_certificate_settings_junction_cannot_honour_stop_the_start(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        load_settings({**BASE, **env})


def test_worker_thread_count_sizes_the_storage_pools() -> None:
    assert load_settings(BASE).worker_threads == 32  # unset: the worker's maximum (and devhost's pool)
    assert load_settings({**BASE, "PYTHON_THREADPOOL_THREAD_COUNT": "12"}).worker_threads == 12
    for bad in ("0", "33", "many"):
        with pytest.raises(ConfigurationError, match="PYTHON_THREADPOOL_THREAD_COUNT"):
            load_settings({**BASE, "PYTHON_THREADPOOL_THREAD_COUNT": bad})
