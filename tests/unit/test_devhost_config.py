"""host.json and local.settings.json as devhost reads them, with the host's defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devhost.config import (
    ConfigError,
    expand_connection_string,
    load_host_config,
    load_local_settings,
    parse_timespan,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("00:00:00", 0.0), ("00:00:02", 2.0), ("00:01:30", 90.0), ("1.02:00:00", 93600.0), ("00:00:00.5", 0.5), (3, 3.0)],
)
def test_timespans(text: str | int, seconds: float) -> None:
    assert parse_timespan(text) == seconds


def test_bad_timespan_names_the_value() -> None:
    with pytest.raises(ConfigError, match="visibilityTimeout"):
        parse_timespan("soon", "visibilityTimeout")


def test_defaults_without_host_json(tmp_path: Path) -> None:
    config = load_host_config(tmp_path)
    assert config.route_prefix == "api"
    assert config.queues.max_dequeue_count == 5
    assert config.queues.batch_size == 16
    assert config.queues.visibility_timeout == 0
    assert config.queues.max_polling_interval == 1.0
    assert config.queues.message_encoding == "base64"


def test_repository_host_json_is_read() -> None:
    config = load_host_config(Path(__file__).resolve().parents[2])
    assert config.route_prefix == ""
    assert config.queues.visibility_timeout == 2.0
    assert config.queues.max_polling_interval == 2.0


def test_host_json_errors_are_named(tmp_path: Path) -> None:
    (tmp_path / "host.json").write_text(json.dumps({"extensions": {"queues": {"batchSize": 0}}}))
    with pytest.raises(ConfigError, match="batchSize"):
        load_host_config(tmp_path)
    (tmp_path / "host.json").write_text("{not json")
    with pytest.raises(ConfigError, match="host.json"):
        load_host_config(tmp_path)


def test_batch_size_above_32_is_refused_as_the_host_refuses_it(tmp_path: Path) -> None:
    (tmp_path / "host.json").write_text(json.dumps({"extensions": {"queues": {"batchSize": 32}}}))
    assert load_host_config(tmp_path).queues.batch_size == 32
    (tmp_path / "host.json").write_text(json.dumps({"extensions": {"queues": {"batchSize": 33}}}))
    with pytest.raises(ConfigError, match="batchSize: at most 32"):
        load_host_config(tmp_path)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(None, 1800.0), ("00:10:00", 600.0), ("-1", None), ("1.00:00:00", 86400.0), ("00:00:01", 1.0)],
)
def test_function_timeout(tmp_path: Path, value: str | None, seconds: float | None) -> None:
    data = {} if value is None else {"functionTimeout": value}
    (tmp_path / "host.json").write_text(json.dumps(data))
    assert load_host_config(tmp_path).function_timeout == seconds


def test_function_timeout_below_a_second_is_refused(tmp_path: Path) -> None:
    (tmp_path / "host.json").write_text(json.dumps({"functionTimeout": "00:00:00.5"}))
    with pytest.raises(ConfigError, match="functionTimeout"):
        load_host_config(tmp_path)


def test_timers_run_in_utc_whatever_the_local_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime
    import time

    from devhost.timers import TimerRunner

    monkeypatch.setenv("TZ", "America/New_York")
    monkeypatch.setenv("WEBSITE_TIME_ZONE", "Eastern Standard Time")
    time.tzset()
    try:
        assert TimerRunner.now().utcoffset() == datetime.timedelta(0)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_local_settings_never_override_the_environment(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_text(
        json.dumps({"IsEncrypted": False, "Values": {"A": "from-file", "B": "from-file", "C": 3}})
    )
    environ = {"B": "from-env"}
    applied = load_local_settings(tmp_path, environ)
    assert environ == {"A": "from-file", "B": "from-env", "C": "3"}
    assert sorted(applied) == ["A", "C"]
    assert load_local_settings(tmp_path / "missing", {}) == []


def test_development_storage_expands_to_azurite() -> None:
    expanded = expand_connection_string("UseDevelopmentStorage=true")
    assert "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1" in expanded
    assert (
        expand_connection_string("DefaultEndpointsProtocol=https;AccountName=x")
        == "DefaultEndpointsProtocol=https;AccountName=x"
    )
