"""Tests of ``vesagent.config``: the vesagent_config models, parsing, problems, write-back."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vesagent import cli
from vesagent.config import (
    CONFIG_KEY,
    HEARTBEAT_INTERVAL,
    KNOWN_METRICS,
    MAX_BACKLOGS,
    MAX_CLOUD_EXTRA_INFO_BYTES,
    MEASUREMENT_INTERVAL,
    Backlog,
    Threshold,
    VesagentConfig,
    VesSubscription,
    check_config_text,
    check_config_warnings,
    masked,
    merge_into_cloud_extra_info,
    parse_cloud_extra_info,
    parse_vesagent_config,
    remove_from_cloud_extra_info,
    warnings,
)
from vesagent.errors import ConfigError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "config"
ENDPOINT = "http://127.0.0.1:8080/eventListener/v5"


def config(**overrides: Any) -> dict[str, Any]:
    """A minimal valid vesagent_config object with ``overrides`` applied."""
    obj: dict[str, Any] = {"ves_subscription": {"endpoint": ENDPOINT}, "backlogs": []}
    obj.update(overrides)
    return obj


def backlog_config(**fields: Any) -> dict[str, Any]:
    """A config holding one backlog with ``fields``."""
    return config(backlogs=[fields])


def problems(obj: object) -> list[tuple[str, str]]:
    """The problems ``parse_vesagent_config`` raises for ``obj`` ([] when valid)."""
    try:
        parse_vesagent_config(obj)
    except ConfigError as exc:
        return exc.problems
    return []


def one_problem(obj: object) -> tuple[str, str]:
    found = problems(obj)
    assert len(found) == 1, found
    return found[0]


# --- the seed design's fixture ---------------------------------------------------------------


@pytest.fixture(name="multicloud")
def _multicloud() -> dict[str, Any]:
    return json.loads((FIXTURES / "multicloud_fcaps_cloud_extra_info.json").read_text())


def test_multicloud_fixture_string_parses(multicloud: dict[str, Any]) -> None:
    """The cloud-extra-info string of MultiCloud's own tests is a valid vesagent config."""
    parsed = parse_cloud_extra_info(multicloud["cloud-extra-info"])
    assert isinstance(parsed, VesagentConfig)
    sub = parsed.ves_subscription
    assert sub.endpoint == "http://127.0.0.1:9011/sample"
    assert sub.version == "v5"
    assert sub.batch_url == "http://127.0.0.1:9011/sample/eventBatch"
    assert sub.basic_auth() == ("user", "password")
    assert parsed.poll_interval_default == 10
    (backlog,) = parsed.backlogs
    assert (backlog.domain, backlog.type, backlog.tenant, backlog.source) == (
        "fault",
        "vm",
        "VIM",
        "onap-aaf",
    )
    assert parsed.interval_of(backlog) == 10
    assert parsed == parse_vesagent_config(multicloud["decoded"][CONFIG_KEY])


def test_multicloud_fixture_as_aai_string_passes_check_config(multicloud: dict[str, Any]) -> None:
    """check-config accepts the value exactly as A&AI returns it: a JSON string."""
    text = json.dumps(multicloud["cloud-extra-info"])
    assert check_config_text(text) == []
    assert check_config_warnings(text) == []


# --- parse_cloud_extra_info ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [None, "", "   \n", '{"openstack-region-id": "RegionOne"}', "{}"],
    ids=["none", "empty", "blank", "other-keys-only", "empty-object"],
)
def test_unmanaged_cloud_extra_info_is_none(text: str | None) -> None:
    """Without a vesagent_config key the region is simply not managed."""
    assert parse_cloud_extra_info(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("openstack-region-id=RegionOne", "cloud-extra-info is not valid JSON: Expecting value"),
        ('{"a": 1', "cloud-extra-info is not valid JSON"),
        ("[1, 2]", "cloud-extra-info must be a JSON object, got an array"),
        ('"text"', 'cloud-extra-info must be a JSON object, got "text"'),
        ("7", "cloud-extra-info must be a JSON object, got 7"),
        ('{"vesagent_config": []}', "vesagent_config must be a JSON object, got an array"),
        ('{"vesagent_config": null}', "vesagent_config must be a JSON object, got null"),
        ('{"vesagent_config": "{}"}', 'vesagent_config must be a JSON object, got "{}"'),
        ('{"vesagent_config": NaN}', "NaN is not allowed"),
        ("[" * 100_000, "nested too deeply"),
        ('{"a": ' + "9" * 5000 + "}", "not usable JSON"),
    ],
    ids=[
        "free-text",
        "truncated",
        "array",
        "string",
        "number",
        "config-array",
        "config-null",
        "config-string",
        "nan",
        "deep",
        "huge-int",
    ],
)
def test_bad_cloud_extra_info_raises_config_error(text: str, expected: str) -> None:
    """Every way cloud-extra-info can be unusable is a ConfigError at the top path."""
    with pytest.raises(ConfigError) as caught:
        parse_cloud_extra_info(text)
    ((path, message),) = caught.value.problems
    assert path == ""
    assert expected in message


def padded_cloud_extra_info(size: int, filler: str = "a") -> str:
    """A valid cloud-extra-info of exactly ``size`` UTF-8 bytes (padded by another key)."""
    head = json.dumps({CONFIG_KEY: config()})[:-1] + ', "pad": "'
    tail = '"}'
    room = size - len(head.encode()) - len(tail.encode())
    count = room // len(filler.encode())
    assert count * len(filler.encode()) == room
    return head + filler * count + tail


def test_one_mebibyte_is_accepted() -> None:
    """A cloud-extra-info of exactly 1 MiB still parses."""
    text = padded_cloud_extra_info(MAX_CLOUD_EXTRA_INFO_BYTES)
    assert len(text.encode()) == MAX_CLOUD_EXTRA_INFO_BYTES
    assert parse_cloud_extra_info(text) is not None


def test_one_byte_over_a_mebibyte_is_refused() -> None:
    """One byte more is refused before parsing, with the size in the message."""
    text = padded_cloud_extra_info(MAX_CLOUD_EXTRA_INFO_BYTES + 1)
    with pytest.raises(ConfigError) as caught:
        parse_cloud_extra_info(text)
    assert caught.value.problems == [
        ("", "cloud-extra-info is too large: 1048577 bytes, at most 1048576 (1 MiB)")
    ]


def test_size_limit_counts_utf8_bytes_not_characters() -> None:
    """Two-byte characters count twice: fewer than 1 Mi characters can be too large."""
    text = padded_cloud_extra_info(MAX_CLOUD_EXTRA_INFO_BYTES + 2, filler="é")
    assert len(text) < MAX_CLOUD_EXTRA_INFO_BYTES
    with pytest.raises(ConfigError, match="too large"):
        parse_cloud_extra_info(text)


# --- ves_subscription ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "ves_version", "version", "stored", "batch_url"),
    [
        (ENDPOINT, None, "v5", ENDPOINT, ENDPOINT + "/eventBatch"),
        (
            "https://ves.onap:8443/eventListener/v7",
            None,
            "v7",
            "https://ves.onap:8443/eventListener/v7",
            "https://ves.onap:8443/eventListener/v7/eventBatch",
        ),
        (
            "http://ves:8080/eventListener/v7/",
            None,
            "v7",
            "http://ves:8080/eventListener/v7",
            "http://ves:8080/eventListener/v7/eventBatch",
        ),
        (
            "http://ves:8080/route/eventListener/v7",
            None,
            "v7",
            "http://ves:8080/route/eventListener/v7",
            "http://ves:8080/route/eventListener/v7/eventBatch",
        ),
        ("http://ves:8080/sample", None, "v5", "http://ves:8080/sample", None),
        ("http://ves:8080/eventlistener/v7", None, "v5", None, None),
        ("http://ves:8080/sample", "v7", "v7", None, None),
        ("http://ves:8080/eventListener/v7", "V5", "v5", None, None),
        (
            "HTTP://VES.Onap:8080/eventListener/v5",
            None,
            "v5",
            "http://ves.onap:8080/eventListener/v5",
            None,
        ),
        ("http://ves", None, "v5", "http://ves", "http://ves/eventBatch"),
        ("http://[::1]:8080/eventListener/v5", None, "v5", None, None),
    ],
    ids=[
        "v5",
        "v7-https",
        "trailing-slash",
        "routing-prefix",
        "seed-sample",
        "lower-case-path-is-not-v7",
        "explicit-v7",
        "explicit-v5-wins",
        "scheme-and-host-lowered",
        "no-path",
        "ipv6",
    ],
)
def test_subscription_version_and_batch_url(
    endpoint: str, ves_version: str | None, version: str, stored: str | None, batch_url: str | None
) -> None:
    """v7 when the path has /eventListener/v7 unless ves_version says otherwise."""
    sub = VesSubscription.model_validate({"endpoint": endpoint, "ves_version": ves_version})
    assert sub.version == version
    assert sub.ves_version == version
    if stored is not None:
        assert sub.endpoint == stored
    if batch_url is not None:
        assert sub.batch_url == batch_url
    assert "//eventBatch" not in sub.batch_url


@pytest.mark.parametrize(
    ("subscription", "path", "expected"),
    [
        ({}, "ves_subscription.endpoint", "is required"),
        ({"endpoint": 5}, "ves_subscription.endpoint", "must be an http or https URL, got 5"),
        ({"endpoint": "ves:8080/x"}, "ves_subscription.endpoint", "with a host"),
        ({"endpoint": "ftp://ves/x"}, "ves_subscription.endpoint", 'got "ftp://ves/x"'),
        ({"endpoint": "http://"}, "ves_subscription.endpoint", "with a host"),
        ({"endpoint": "http://ves:99999/x"}, "ves_subscription.endpoint", "is not a valid URL"),
        ({"endpoint": "http://[::1/x"}, "ves_subscription.endpoint", "is not a valid URL"),
        ({"endpoint": "http://ves/a b"}, "ves_subscription.endpoint", "must not contain spaces"),
        ({"endpoint": "http://vés/x"}, "ves_subscription.endpoint", "printable ASCII"),
        ({"endpoint": "http://u:pw@ves/x"}, "ves_subscription.endpoint", "must not carry"),
        ({"endpoint": "http://ves/x?a=1"}, "ves_subscription.endpoint", "query string"),
        (
            {"endpoint": "http://ves/eventListener/v5/eventBatch"},
            "ves_subscription.endpoint",
            "give the single-event URL",
        ),
        ({"ves_version": "v6"}, "ves_subscription.ves_version", 'must be "v5" or "v7", got "v6"'),
        ({"timeout": 0.4}, "ves_subscription.timeout", "must be at least 0.5 seconds, got 0.4"),
        ({"timeout": "121"}, "ves_subscription.timeout", 'at most 120 seconds, got "121"'),
        ({"ssl_insecure": "maybe"}, "ves_subscription.ssl_insecure", "must be true or false"),
        ({"username": "u"}, "ves_subscription.password", "is required when a username is given"),
        ({"password": "p"}, "ves_subscription.username", "is required when a password is given"),
        ({"username": 7, "password": "p"}, "ves_subscription.username", "must be a string, got 7"),
        ({"ca_file": ["a"]}, "ves_subscription.ca_file", "must be a string, got an array"),
    ],
)
def test_subscription_problems(subscription: dict[str, Any], path: str, expected: str) -> None:
    """Each bad ves_subscription field is reported at its own path."""
    sub = {"endpoint": ENDPOINT, **subscription}
    if subscription == {}:
        sub = {}
    where, message = one_problem(config(ves_subscription=sub))
    assert where == path
    assert expected in message


@pytest.mark.parametrize(
    ("timeout", "expected"), [(None, 5.0), ("0.5", 0.5), (120, 120.0), (" 7 ", 7.0)]
)
def test_subscription_timeout(timeout: object, expected: float) -> None:
    """timeout defaults to 5 s and takes numbers or numeric strings within 0.5 .. 120."""
    fields = (
        {"endpoint": ENDPOINT} if timeout is None else {"endpoint": ENDPOINT, "timeout": timeout}
    )
    assert VesSubscription.model_validate(fields).timeout == expected


def test_subscription_tls_options() -> None:
    """ssl_insecure defaults to false; ca_file is kept as given; blank ca_file is absent."""
    default = VesSubscription.model_validate({"endpoint": "https://ves/x"})
    assert (default.ssl_insecure, default.ca_file) == (False, None)
    tuned = VesSubscription.model_validate(
        {"endpoint": "https://ves/x", "ssl_insecure": True, "ca_file": "/etc/ca.pem"}
    )
    assert (tuned.ssl_insecure, tuned.ca_file) == (True, "/etc/ca.pem")
    assert VesSubscription.model_validate({"endpoint": "https://ves/x", "ca_file": ""}) == default


def test_subscription_without_credentials_has_no_auth() -> None:
    """No username and password: events are posted without Basic auth."""
    sub = VesSubscription.model_validate({"endpoint": ENDPOINT, "username": "", "password": ""})
    assert sub.basic_auth() is None


def test_password_never_shown() -> None:
    """The password is absent from repr, str, JSON dumps and problem messages."""
    secret = "pa55-w0rd-XYZ"
    parsed = parse_vesagent_config(
        config(ves_subscription={"endpoint": ENDPOINT, "username": "u", "password": secret})
    )
    for text in (repr(parsed), str(parsed), parsed.model_dump_json(), str(parsed.model_dump())):
        assert secret not in text
    assert parsed.ves_subscription.basic_auth() == ("u", secret)
    bad = config(ves_subscription={"endpoint": "nope", "password": secret})
    with pytest.raises(ConfigError) as caught:
        parse_vesagent_config(bad)
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value.problems)
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_non_string_password_is_not_echoed() -> None:
    """A password of the wrong type is reported without its value."""
    where, message = one_problem(
        config(ves_subscription={"endpoint": ENDPOINT, "username": "u", "password": 987654321})
    )
    assert where == "ves_subscription.password"
    assert message == "must be a string"


# --- thresholds ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "attrs"),
    [
        (
            {"metric": "cpu.percentUsage", "above": 90},
            {"metric": "cpu.percentUsage", "above": 90.0, "severity": "MAJOR", "cont": False},
        ),
        (
            {"metric": "CPU.PERCENTUSAGE", "above": "90.5", "severity": "critical", "cont": True},
            {"metric": "cpu.percentUsage", "above": 90.5, "severity": "CRITICAL", "cont": True},
        ),
        (
            {"metric": "memory.percentUsage", "below": "-1e1", "severity": "WARNING"},
            {"metric": "memory.percentUsage", "below": -10.0, "severity": "WARNING"},
        ),
        (
            {"metric": "disk.diskOpsReadLast", "above": 0, "severity": "Minor"},
            {"severity": "MINOR"},
        ),
        ({"metric": "nic.receivedOctetsDelta", "below": 1}, {"direction": "below", "limit": 1.0}),
    ],
)
def test_valid_thresholds(fields: dict[str, Any], attrs: dict[str, Any]) -> None:
    """Metric names and severities are normalised; limits take numbers or numeric strings."""
    threshold = Threshold.model_validate(fields)
    for name, value in attrs.items():
        assert getattr(threshold, name) == value


@pytest.mark.parametrize(
    ("fields", "path", "expected"),
    [
        ({"metric": "cpu.load", "above": 1}, "metric", 'unknown metric "cpu.load"; known'),
        ({"metric": 5, "above": 1}, "metric", "must be a metric name, got 5"),
        ({"above": 1}, "metric", "is required"),
        ({"metric": "cpu.percentUsage"}, "", "needs a limit: above or below"),
        ({"metric": "cpu.percentUsage", "above": 1, "below": 0}, "", "not both"),
        ({"metric": "cpu.percentUsage", "above": "high"}, "above", 'must be a number, got "high"'),
        ({"metric": "cpu.percentUsage", "below": True}, "below", "must be a number, got true"),
        ({"metric": "cpu.percentUsage", "above": "nan"}, "above", "must be a number"),
        ({"metric": "cpu.percentUsage", "above": 1e400}, "above", "must be a finite number"),
        ({"metric": "cpu.percentUsage", "above": 1, "severity": "NORMAL"}, "severity", "one of"),
        ({"metric": "cpu.percentUsage", "above": 1, "cont": "often"}, "cont", "true or false"),
    ],
)
def test_threshold_problems(fields: dict[str, Any], path: str, expected: str) -> None:
    """Threshold problems are reported under backlogs[0].thresholds[0]."""
    where, message = one_problem(backlog_config(domain="tca", thresholds=[fields]))
    base = "backlogs[0].thresholds[0]"
    assert where == (f"{base}.{path}" if path else base)
    assert expected in message


def test_unknown_metric_message_lists_every_known_metric() -> None:
    """The message for an unknown metric names every metric that exists."""
    _where, message = one_problem(
        backlog_config(domain="tca", thresholds=[{"metric": "cpu", "above": 1}])
    )
    for name in KNOWN_METRICS:
        assert name in message
    assert "cpu.percentUsage" in KNOWN_METRICS and "memory.percentUsage" in KNOWN_METRICS
    prefixes = {name.split(".")[0] for name in KNOWN_METRICS}
    assert prefixes == {"cpu", "memory", "disk", "nic"}


@pytest.mark.parametrize(
    ("fields", "value", "crossed"),
    [
        ({"above": 90}, 90.1, True),
        ({"above": 90}, 90, False),
        ({"above": 90}, 10, False),
        ({"below": 5}, 4.9, True),
        ({"below": 5}, 5, False),
        ({"below": 5}, 50, False),
    ],
)
def test_threshold_crossed(fields: dict[str, Any], value: float, crossed: bool) -> None:
    """A value crosses only when strictly beyond the limit."""
    threshold = Threshold.model_validate({"metric": "cpu.percentUsage", **fields})
    assert threshold.crossed(value) is crossed


# --- backlogs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("fault", "fault"),
        ("FAULT", "fault"),
        ("pm", "measurement"),
        ("PM", "measurement"),
        ("measurement", "measurement"),
        ("measurementsForVfScaling", "measurement"),
        ("measurementsforvfscaling", "measurement"),
        ("heartbeat", "heartbeat"),
        ("HeartBeat", "heartbeat"),
        ("tca", "tca"),
        ("thresholdCrossingAlert", "tca"),
        (" THRESHOLDCROSSINGALERT ", "tca"),
    ],
)
def test_domain_aliases(given: str, canonical: str) -> None:
    """Domain aliases and any letter case map to the canonical domain."""
    fields: dict[str, Any] = {"domain": given}
    if canonical == "tca":
        fields["thresholds"] = [{"metric": "cpu.percentUsage", "above": 90}]
    assert Backlog.model_validate(fields).domain == canonical


@pytest.mark.parametrize(
    ("domain", "type_", "ok"),
    [
        ("fault", "vm", True),
        ("fault", "host", True),
        ("fault", "vim", True),
        ("heartbeat", "vm", True),
        ("heartbeat", "host", True),
        ("heartbeat", "vim", True),
        ("measurement", "vm", True),
        ("measurement", "host", False),
        ("measurement", "vim", False),
        ("tca", "vm", True),
        ("tca", "host", False),
        ("tca", "vim", False),
    ],
)
def test_domain_and_type_combinations(domain: str, type_: str, ok: bool) -> None:
    """vim and host backlogs report fault or heartbeat only; measurement and tca need vm."""
    fields: dict[str, Any] = {"domain": domain, "type": type_.upper()}
    if domain == "tca":
        fields["thresholds"] = [{"metric": "cpu.percentUsage", "above": 90}]
    found = problems(backlog_config(**fields))
    if ok:
        assert found == []
    else:
        assert found == [
            ("backlogs[0].type", f"a {type_} backlog reports fault or heartbeat, not {domain}")
        ]


@pytest.mark.parametrize(
    ("fields", "path", "expected"),
    [
        ({}, "domain", "is required"),
        ({"domain": "syslog"}, "domain", 'got "syslog"'),
        ({"domain": 3}, "domain", "got 3"),
        ({"domain": "fault", "type": "pod"}, "type", 'must be one of vm, host, vim, got "pod"'),
        ({"domain": "fault", "tenant": 12}, "tenant", "must be a string, got 12"),
        ({"domain": "fault", "source": {"a": 1}}, "source", "must be a string, got an object"),
        ({"domain": "fault", "tenant": "\ud800"}, "tenant", "is not valid Unicode text"),
        ({"domain": "tca"}, "thresholds", "a tca backlog needs at least one threshold"),
        ({"domain": "tca", "thresholds": []}, "thresholds", "needs at least one threshold"),
        ({"domain": "tca", "thresholds": {}}, "thresholds", "must be an array of thresholds"),
        ({"domain": "fault", "thresholds": []}, "thresholds", "only tca backlogs have thresholds"),
        ({"domain": "fault", "type": "host", "tenant": "a"}, "tenant", "does not apply to host"),
        ({"domain": "fault", "type": "vim", "sourceid": "x"}, "sourceid", "does not apply to vim"),
        (
            {"domain": "pm", "host_faults": False},
            "host_faults",
            "only to fault backlogs of type vm",
        ),
        ({"domain": "fault", "failure_threshold": 2}, "failure_threshold", "only to backlogs of"),
        ({"domain": "fault", "type": "vim", "failure_threshold": 0}, "failure_threshold", "got 0"),
        ({"domain": "fault", "type": "vim", "failure_threshold": 2.5}, "failure_threshold", "2.5"),
        ({"domain": "fault", "host_faults": "perhaps"}, "host_faults", "must be true or false"),
    ],
)
def test_backlog_problems(fields: dict[str, Any], path: str, expected: str) -> None:
    """Each backlog rule is reported at the offending field of backlogs[0]."""
    where, message = one_problem(backlog_config(**fields))
    assert where == f"backlogs[0].{path}"
    assert expected in message


def test_every_cross_field_problem_of_a_backlog_is_reported() -> None:
    """Several combination problems of one backlog come back together, each at its path."""
    found = problems(
        backlog_config(domain="tca", type="vim", tenant="a", source="b", failure_threshold=2)
    )
    assert sorted(path for path, _ in found) == [
        "backlogs[0].source",
        "backlogs[0].tenant",
        "backlogs[0].thresholds",
        "backlogs[0].type",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1.0),
        ("1", 1.0),
        (0.5 + 0.5, 1.0),
        ("30", 30.0),
        (" 2.5 ", 2.5),
        ("1e2", 100.0),
        (86400, 86400.0),
        ("86400", 86400.0),
        (None, None),
    ],
)
def test_poll_interval_accepts_numbers_and_numeric_strings(
    value: object, expected: float | None
) -> None:
    """poll_interval is seconds, as a JSON number or a numeric string, 1 .. 86400."""
    parsed = parse_vesagent_config(backlog_config(domain="fault", poll_interval=value))
    assert parsed.backlogs[0].poll_interval == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "must be at least 1 second, got 0"),
        ("0", 'must be at least 1 second, got "0"'),
        (0.999, "must be at least 1 second, got 0.999"),
        (-5, "must be at least 1 second, got -5"),
        (86401, "must be at most 86400 seconds (1 day), got 86401"),
        ("abc", 'must be a number of seconds, got "abc"'),
        ("10s", 'must be a number of seconds, got "10s"'),
        ("", 'must be a number of seconds, got ""'),
        ("1_000", 'must be a number of seconds, got "1_000"'),
        ("nan", 'must be a number of seconds, got "nan"'),
        ("inf", 'must be a number of seconds, got "inf"'),
        (1e400, "must be a finite number, got inf"),
        ("1e400", 'must be a finite number, got "1e400"'),
        (10**400, "must be a number of seconds, got 1000000"),
        (True, "must be a number of seconds, got true"),
        ([10], "must be a number of seconds, got an array"),
        (
            "{default interval for polling}",
            'must be a number of seconds, got "{default interval for polling}"',
        ),
    ],
)
def test_poll_interval_bounds_and_types(value: object, expected: str) -> None:
    """Bad poll_interval values name the bound or the bad value."""
    where, message = one_problem(backlog_config(domain="fault", poll_interval=value))
    assert where == "backlogs[0].poll_interval"
    assert message.startswith(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, 10.0), ("15", 15.0), (1, 1.0), ("86400", 86400.0)],
)
def test_poll_interval_default(value: object, expected: float) -> None:
    """poll_interval_default is 10 s when absent, and takes numbers or numeric strings."""
    obj = config() if value is None else config(poll_interval_default=value)
    assert parse_vesagent_config(obj).poll_interval_default == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "must be at least 1 second, got 0"),
        ("100000", 'must be at most 86400 seconds (1 day), got "100000"'),
        ("seconds", 'must be a number of seconds, got "seconds"'),
    ],
)
def test_poll_interval_default_problems(value: object, expected: str) -> None:
    """Bad poll_interval_default values are reported at its path."""
    assert one_problem(config(poll_interval_default=value)) == ("poll_interval_default", expected)


@pytest.mark.parametrize(
    ("fields", "default", "expected"),
    [
        ({"domain": "fault"}, 10, 10),
        ({"domain": "fault", "poll_interval": "30"}, 10, 30),
        ({"domain": "fault", "type": "vim"}, 25, 25),
        ({"domain": "heartbeat"}, 10, HEARTBEAT_INTERVAL),
        ({"domain": "heartbeat", "type": "host", "poll_interval": 5}, 10, 5),
        ({"domain": "pm"}, 10, MEASUREMENT_INTERVAL),
        ({"domain": "measurement", "poll_interval": 60}, 10, 60),
        ({"domain": "tca", "thresholds": [{"metric": "cpu.percentUsage", "above": 1}]}, 7, 7),
    ],
)
def test_effective_interval(fields: dict[str, Any], default: float, expected: float) -> None:
    """fault/tca/vim follow poll_interval_default; heartbeat 60 s, measurement 300 s."""
    parsed = parse_vesagent_config(config(poll_interval_default=default, backlogs=[fields]))
    assert parsed.interval_of(parsed.backlogs[0]) == expected
    assert parsed.backlogs[0].effective_interval(default) == expected
    assert (HEARTBEAT_INTERVAL, MEASUREMENT_INTERVAL) == (60.0, 300.0)


def test_backlog_defaults() -> None:
    """type vm, every project, every source, host_faults on, 3 failed polls for a VIM fault."""
    backlog = Backlog.model_validate({"domain": "fault"})
    assert (backlog.type, backlog.tenant, backlog.source) == ("vm", None, None)
    assert (backlog.tenantid, backlog.sourceid, backlog.poll_interval) == (None, None, None)
    assert (backlog.host_faults, backlog.failure_threshold, backlog.thresholds) == (True, 3, ())
    vim = Backlog.model_validate({"domain": "fault", "type": "vim", "failure_threshold": "5"})
    assert vim.failure_threshold == 5


# --- equality and keys -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ({"domain": "fault", "poll_interval": "10"}, {"domain": "fault", "poll_interval": 10}),
        ({"domain": "fault", "poll_interval": 10.0}, {"domain": "FAULT", "poll_interval": "1e1"}),
        ({"domain": "pm"}, {"domain": "measurementsForVfScaling", "type": "vm"}),
        ({"domain": "fault", "tenant": "*", "source": "*"}, {"domain": "fault"}),
        ({"domain": "fault", "tenant": "", "source": None}, {"domain": "fault", "type": "VM"}),
        ({"domain": "fault", "extra": 1}, {"domain": "fault"}),
        (
            {
                "domain": "thresholdCrossingAlert",
                "thresholds": [{"metric": "CPU.percentusage", "above": "90", "severity": "major"}],
            },
            {"domain": "tca", "thresholds": [{"metric": "cpu.percentUsage", "above": 90}]},
        ),
    ],
)
def test_same_meaning_compares_equal(left: dict[str, Any], right: dict[str, Any]) -> None:
    """Configs with the same meaning are equal and their backlogs share a key."""
    a = parse_vesagent_config(config(backlogs=[left]))
    b = parse_vesagent_config(config(backlogs=[right]))
    assert a == b
    assert hash(a) == hash(b)
    assert a.backlogs[0].key == b.backlogs[0].key


def test_config_level_normalisation_compares_equal() -> None:
    """Numeric strings, trailing slashes and a redundant ves_version do not change meaning."""
    a = parse_vesagent_config(
        config(
            ves_subscription={"endpoint": "http://VES:8080/eventListener/v7/", "timeout": "5"},
            poll_interval_default="10",
        )
    )
    b = parse_vesagent_config(
        config(
            ves_subscription={"endpoint": "http://ves:8080/eventListener/v7", "ves_version": "v7"},
            poll_interval_default=10,
        )
    )
    assert a == b


@pytest.mark.parametrize(
    "change",
    [
        {"poll_interval": 11},
        {"tenant": "other"},
        {"tenantid": "abc"},
        {"source": "vm-2"},
        {"sourceid": "id-2"},
        {"host_faults": False},
        {"domain": "heartbeat"},
    ],
)
def test_key_changes_with_meaning(change: dict[str, Any]) -> None:
    """Any change of a backlog's meaning changes its key; the key is 16 hex digits."""
    base = {"domain": "fault", "tenant": "admin", "source": "vm-1", "poll_interval": 10}
    before = Backlog.model_validate(base).key
    after = Backlog.model_validate({**base, **change}).key
    assert before != after
    assert len(before) == 16 and int(before, 16) >= 0


def test_key_is_stable_across_processes() -> None:
    """The key is a fixed digest of content, not Python's per-process salted hash()."""
    backlog = Backlog.model_validate({"domain": "fault", "tenant": "VIM", "source": "onap-aaf"})
    assert backlog.key == "363a4cdf007c08f6"


def test_password_change_makes_configs_differ() -> None:
    """Secrets count for equality: a new password must reach the running sender."""
    a = parse_vesagent_config(
        config(ves_subscription={"endpoint": ENDPOINT, "username": "u", "password": "a"})
    )
    b = parse_vesagent_config(
        config(ves_subscription={"endpoint": ENDPOINT, "username": "u", "password": "b"})
    )
    assert a != b


def test_models_are_frozen() -> None:
    """Validated configs cannot be changed in place."""
    parsed = parse_vesagent_config(backlog_config(domain="fault"))
    with pytest.raises(ValueError, match="frozen"):
        parsed.backlogs[0].tenant = "x"  # type: ignore[misc]


def test_backlogs_by_key() -> None:
    """backlogs_by_key indexes every backlog by its key."""
    parsed = parse_vesagent_config(
        config(backlogs=[{"domain": "fault"}, {"domain": "heartbeat", "type": "vim"}])
    )
    by_key = parsed.backlogs_by_key()
    assert list(by_key.values()) == list(parsed.backlogs)
    assert all(key == backlog.key for key, backlog in by_key.items())


def test_duplicate_backlogs_are_refused() -> None:
    """Two backlogs with the same meaning would double every event: both are named."""
    found = problems(
        config(
            backlogs=[
                {"domain": "fault", "tenant": "a"},
                {"domain": "heartbeat"},
                {"domain": "FAULT", "tenant": "a", "source": "*"},
                {"domain": "fault", "tenant": "a"},
            ]
        )
    )
    assert found == [
        ("backlogs[2]", "duplicates backlogs[0]"),
        ("backlogs[3]", "duplicates backlogs[0]"),
    ]


# --- counts ----------------------------------------------------------------------------------


def many_backlogs(count: int) -> list[dict[str, Any]]:
    return [{"domain": "fault", "source": f"vm-{i}"} for i in range(count)]


def test_a_thousand_backlogs_are_accepted() -> None:
    """1,000 backlogs is the most a region may have."""
    parsed = parse_vesagent_config(config(backlogs=many_backlogs(MAX_BACKLOGS)))
    assert len(parsed.backlogs) == 1000
    assert len(parsed.backlogs_by_key()) == 1000


def test_a_thousand_and_one_backlogs_are_refused() -> None:
    """1,001 backlogs is one problem at backlogs, with the count."""
    assert one_problem(config(backlogs=many_backlogs(MAX_BACKLOGS + 1))) == (
        "backlogs",
        "at most 1000 backlogs, got 1001",
    )


def test_no_backlogs_is_valid() -> None:
    """A config with no backlogs (or none given) is valid and watches nothing."""
    assert parse_vesagent_config({"ves_subscription": {"endpoint": ENDPOINT}}).backlogs == ()
    assert parse_vesagent_config(config(backlogs=None)).backlogs == ()


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({}, [("ves_subscription", "is required")]),
        (
            config(ves_subscription="http://x"),
            [("ves_subscription", 'must be a JSON object, got "http://x"')],
        ),
        (
            config(backlogs={"domain": "fault"}),
            [("backlogs", "must be an array of backlogs, got an object")],
        ),
        (config(backlogs=["fault"]), [("backlogs[0]", 'must be a JSON object, got "fault"')]),
        ([], [("", "vesagent_config must be a JSON object, got an array")]),
    ],
)
def test_shape_problems(obj: object, expected: list[tuple[str, str]]) -> None:
    """Wrong shapes are reported with paths and plain words."""
    assert problems(obj) == expected


def test_every_problem_is_reported_with_its_path() -> None:
    """The invalid fixture yields one problem per mistake, each at its JSON path."""
    found = check_config_text((FIXTURES / "invalid_many.json").read_text())
    paths = [path for path, _ in found]
    assert paths == [
        "ves_subscription.endpoint",
        "poll_interval_default",
        "backlogs[1].poll_interval",
        "backlogs[2].domain",
        "backlogs[3].thresholds",
        "backlogs[4].type",
        "backlogs[5].thresholds[0].metric",
        "backlogs[5].thresholds[1]",
    ]
    messages = dict(found)
    assert messages["backlogs[1].poll_interval"] == "must be at least 1 second, got 0"
    assert messages["poll_interval_default"] == 'must be a number of seconds, got "soon"'
    assert "s3cr3t-value" not in repr(found)


# --- check_config_text and warnings ----------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["valid_cloud_extra_info.json", "valid_bare.json", "valid_aai_string.json"]
)
def test_valid_fixtures_pass_check_config(name: str) -> None:
    """A cloud-extra-info object, a bare config and an A&AI JSON string are all accepted."""
    text = (FIXTURES / name).read_text()
    assert check_config_text(text) == []
    assert check_config_warnings(text) == []


def test_full_fixture_values() -> None:
    """The full fixture's normalised values are what its author meant."""
    obj = json.loads((FIXTURES / "valid_cloud_extra_info.json").read_text())
    parsed = parse_cloud_extra_info(json.dumps(obj))
    assert parsed is not None
    assert parsed.ves_subscription.version == "v7"
    assert parsed.ves_subscription.timeout == 10.0
    assert parsed.poll_interval_default == 15.0
    assert [(b.domain, b.type) for b in parsed.backlogs] == [
        ("fault", "vm"),
        ("fault", "vm"),
        ("measurement", "vm"),
        ("heartbeat", "host"),
        ("fault", "vim"),
        ("tca", "vm"),
    ]
    assert [parsed.interval_of(b) for b in parsed.backlogs] == [15, 30, 300, 60, 15, 15]
    tca = parsed.backlogs[5]
    assert (tca.tenant, tca.source) == (None, None)
    assert [(t.metric, t.direction, t.limit, t.severity, t.cont) for t in tca.thresholds] == [
        ("cpu.percentUsage", "above", 90.0, "MAJOR", False),
        ("memory.percentUsage", "above", 95.5, "CRITICAL", True),
        ("nic.receivedOctetsDelta", "below", 1.0, "MAJOR", False),
    ]
    assert parsed.backlogs[1].host_faults is False
    assert parsed.backlogs[4].failure_threshold == 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty input"),
        ("  ", "empty input"),
        ('""', "the JSON string is empty"),
        ('"not json"', "the JSON string is not valid JSON"),
        ("[]", "expected a cloud-extra-info or vesagent_config object, got an array"),
        ('"[1]"', "got an array"),
        ('{"openstack-region-id": "RegionOne"}', "no vesagent_config key"),
        ("{}", "no vesagent_config key"),
        ('{"vesagent_config": 1}', "vesagent_config must be a JSON object, got 1"),
        (json.dumps(json.dumps(json.dumps({}))), 'got "{}"'),
    ],
)
def test_check_config_top_level_problems(text: str, expected: str) -> None:
    """Input that holds no config at all is one problem at the top path."""
    ((path, message),) = check_config_text(text)
    assert path == ""
    assert expected in message


def test_check_config_reports_paths_relative_to_vesagent_config() -> None:
    """Inside a cloud-extra-info, paths start at vesagent_config, as for a bare object."""
    bad = config(backlogs=[{"domain": "fault"}, {"domain": "fault", "poll_interval": 0}])
    wrapped = json.dumps({"other": 1, CONFIG_KEY: bad})
    expected = [("backlogs[1].poll_interval", "must be at least 1 second, got 0")]
    assert check_config_text(json.dumps(bad)) == expected
    assert check_config_text(wrapped) == expected
    assert check_config_text(json.dumps(wrapped)) == expected


def test_unknown_keys_are_warnings_not_problems() -> None:
    """Typos are accepted but reported, each at its path with the likely intended key."""
    text = (FIXTURES / "unknown_keys.json").read_text()
    assert check_config_text(text) == []
    assert check_config_warnings(text) == [
        ("pol_interval_default", 'unknown key, ignored (did you mean "poll_interval_default"?)'),
        ("comment", "unknown key, ignored"),
        ("ves_subscription.usename", 'unknown key, ignored (did you mean "username"?)'),
        ("backlogs[0].sorce", 'unknown key, ignored (did you mean "source"?)'),
        ("backlogs[1].thresholds[0].sevrity", 'unknown key, ignored (did you mean "severity"?)'),
    ]


def test_warnings_quote_odd_key_names_and_ignore_other_systems() -> None:
    """Odd key names are quoted; keys beside vesagent_config belong to others and pass."""
    obj = config(backlogs=[{"domain": "fault", "a b\n": 1}])
    assert warnings(obj) == [('backlogs[0]["a b\\n"]', "unknown key, ignored")]
    text = json.dumps({"openstack-region-id": "R", "k8s-apitoken": "t", CONFIG_KEY: config()})
    assert check_config_warnings(text) == []
    assert warnings([1, 2]) == []
    assert warnings(config(backlogs="x", ves_subscription=None)) == []


# --- check-config end to end -----------------------------------------------------------------


def run_check_config(path: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(["check-config", path, "--log-level", "error"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_valid_file_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    """`vesagent check-config` on a valid file prints valid and exits 0."""
    path = str(FIXTURES / "valid_cloud_extra_info.json")
    code, out, _err = run_check_config(path, capsys)
    assert code == 0
    assert f"{path}: valid" in out


def test_cli_invalid_file_exits_one_with_paths(capsys: pytest.CaptureFixture[str]) -> None:
    """Every problem is printed as `path: message`; exit code 1; the password stays hidden."""
    code, out, err = run_check_config(str(FIXTURES / "invalid_many.json"), capsys)
    assert code == 1
    assert "backlogs[1].poll_interval: must be at least 1 second, got 0\n" in out
    assert "ves_subscription.endpoint: must be an http or https URL" in out
    assert "8 problem(s)" in err
    assert "s3cr3t-value" not in out + err


def test_cli_not_json_exits_one(capsys: pytest.CaptureFixture[str]) -> None:
    """A file that is not JSON is one problem at the top."""
    code, out, _err = run_check_config(str(FIXTURES / "not_json.txt"), capsys)
    assert code == 1
    assert out.startswith("(top): input is not valid JSON")


def test_cli_reads_standard_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-` reads the value from standard input, e.g. piped from an A&AI response."""
    text = (FIXTURES / "valid_aai_string.json").read_text()
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    code, out, _err = run_check_config("-", capsys)
    assert (code, out) == (0, "-: valid\n")


def test_cli_warnings_keep_exit_zero(capsys: pytest.CaptureFixture[str]) -> None:
    """Unknown keys print `warning:` lines but the config is still valid (exit 0)."""
    code, out, _err = run_check_config(str(FIXTURES / "unknown_keys.json"), capsys)
    assert code == 0
    lines = out.splitlines()
    assert 'warning: backlogs[0].sorce: unknown key, ignored (did you mean "source"?)' in lines
    assert sum(line.startswith("warning: ") for line in lines) == 5
    assert lines[-1].endswith(": valid")


def test_cli_missing_file_exits_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unreadable file is an error, not a crash."""
    code, _out, err = run_check_config(str(tmp_path / "absent.json"), capsys)
    assert code == 1
    assert "cannot read" in err


# --- merge / remove ---------------------------------------------------------------------------

OTHERS = (
    '{ "openstack-region-id" : "RegionOne",\n  "ratio": 1e2, "name": "caf\\u00e9", "n": [1, 2.50] }'
)


def test_merge_into_absent_or_blank_creates_object() -> None:
    """With no cloud-extra-info yet, the result holds only vesagent_config."""
    for existing in (None, "", "  "):
        merged = merge_into_cloud_extra_info(existing, config())
        assert json.loads(merged) == {CONFIG_KEY: config()}


def test_merge_appends_and_keeps_other_bytes() -> None:
    """Adding vesagent_config leaves every other byte as it was (no re-serialisation)."""
    merged = merge_into_cloud_extra_info(OTHERS, config())
    fragment = json.dumps(config(), separators=(",", ":"))
    assert merged == OTHERS[:-2] + f',"{CONFIG_KEY}":{fragment}' + OTHERS[-2:]
    assert parse_cloud_extra_info(merged) == parse_vesagent_config(config())
    decoded = json.loads(merged)
    assert decoded["ratio"] == 100.0 and decoded["name"] == "café"


@pytest.mark.parametrize("existing", ["{}", "{ }", " {\n} "])
def test_merge_into_empty_object(existing: str) -> None:
    """An empty object gets vesagent_config as its only member; surrounding spaces stay."""
    merged = merge_into_cloud_extra_info(existing, config())
    assert json.loads(merged) == {CONFIG_KEY: config()}
    assert merged.startswith(existing[: existing.index("{") + 1])


def test_merge_replaces_existing_config_in_place() -> None:
    """An existing vesagent_config is replaced where it stands; neighbours are untouched."""
    existing = '{"a": 1e2,  "vesagent_config" : {"old": true} ,"z":"\\u00e9"}'
    merged = merge_into_cloud_extra_info(existing, {"new": 1})
    assert merged == '{"a": 1e2,  "vesagent_config" : {"new":1} ,"z":"\\u00e9"}'


def test_merge_replaces_every_duplicate_key() -> None:
    """With duplicate keys, every copy gets the new value, so no reader sees the old one."""
    existing = '{"vesagent_config": 1, "x": 2, "vesagent_config": 3}'
    merged = merge_into_cloud_extra_info(existing, {"v": 0})
    assert merged == '{"vesagent_config": {"v":0}, "x": 2, "vesagent_config": {"v":0}}'


@pytest.mark.parametrize("existing", ["free text", "[1, 2]", '"{}"', "null", "{"])
def test_merge_refuses_to_overwrite_non_objects(existing: str) -> None:
    """A cloud-extra-info that is not a JSON object belongs to someone else: refuse."""
    with pytest.raises(ConfigError, match="refusing"):
        merge_into_cloud_extra_info(existing, config())
    with pytest.raises(ConfigError, match="refusing"):
        remove_from_cloud_extra_info(existing)


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ('{"vesagent_config": {"a": 1}}', None),
        (' { "vesagent_config" : 1 } ', None),
        ('{"vesagent_config": 1, "a": 1e2}', '{"a": 1e2}'),
        ('{"a": 1e2, "vesagent_config": 1}', '{"a": 1e2}'),
        ('{"a": 1e2, "vesagent_config": 1, "b": "\\u00e9"}', '{"a": 1e2, "b": "\\u00e9"}'),
        ('{"a": 1,\n "vesagent_config": [1, {"b": "}"}],\n "c": 3\n}', '{"a": 1,\n "c": 3\n}'),
        ('{"vesagent_config": 1, "a": 2, "vesagent_config": 3}', '{"a": 2}'),
        ('{"a": 1, "vesagent_config": 2, "vesagent_config": 3}', '{"a": 1}'),
        ('{"a": 1}', '{"a": 1}'),
        ('{"\\u0076esagent_config": 1, "a": 1}', '{"a": 1}'),
        ("{}", "{}"),
        (None, None),
        ("", ""),
    ],
)
def test_remove_keeps_every_other_byte(existing: str | None, expected: str | None) -> None:
    """Removing vesagent_config cuts only its member; None when nothing is left."""
    assert remove_from_cloud_extra_info(existing) == expected


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None)
@given(
    others=st.dictionaries(
        st.text(max_size=8).filter(lambda k: k != CONFIG_KEY), json_values, min_size=1, max_size=5
    ),
    indent=st.sampled_from([None, 0, 2]),
    separators=st.sampled_from([(",", ":"), (", ", ": "), (" ,", " : ")]),
    ensure_ascii=st.booleans(),
)
def test_merge_then_remove_restores_the_original_text(
    others: dict[str, Any], indent: int | None, separators: tuple[str, str], ensure_ascii: bool
) -> None:
    """For any other systems' object, remove(merge(x)) == x byte for byte."""
    original = json.dumps(others, indent=indent, separators=separators, ensure_ascii=ensure_ascii)
    merged = merge_into_cloud_extra_info(original, config())
    assert parse_cloud_extra_info(merged) == parse_vesagent_config(config())
    decoded = json.loads(merged)
    assert {k: v for k, v in decoded.items() if k != CONFIG_KEY} == json.loads(original)
    assert remove_from_cloud_extra_info(merged) == original
    remerged = merge_into_cloud_extra_info(merged, config(poll_interval_default=20))
    assert remove_from_cloud_extra_info(remerged) == original


# --- masking ---------------------------------------------------------------------------------


def test_masked_hides_every_password_and_copies_deeply() -> None:
    """Every password (and other secret-named key) is ***; the input is left untouched."""
    original = {
        "ves_subscription": {"endpoint": ENDPOINT, "username": "u", "password": "p1"},
        "backlogs": [{"domain": "fault", "extra": {"Password": "p2", "list": [{"token": "t"}]}}],
        "other": {"password": None},
    }
    snapshot = json.loads(json.dumps(original))
    result = masked(original)
    assert result == {
        "ves_subscription": {"endpoint": ENDPOINT, "username": "u", "password": "***"},
        "backlogs": [{"domain": "fault", "extra": {"Password": "***", "list": [{"token": "***"}]}}],
        "other": {"password": None},
    }
    assert original == snapshot
    result["backlogs"][0]["extra"]["list"].append(1)
    result["ves_subscription"]["username"] = "changed"
    assert original == snapshot


def test_masked_handles_deep_nesting() -> None:
    """Masking is iterative: any depth JSON decoding allows is fine."""
    deep: Any = {"password": "p"}
    for _ in range(5000):
        deep = {"x": [deep]}
    result = masked(deep)
    for _ in range(5000):
        result = result["x"][0]
    assert result == {"password": "***"}


def test_masked_model_dump() -> None:
    """A dumped model's SecretStr comes out as *** too."""
    parsed = parse_vesagent_config(
        config(ves_subscription={"endpoint": ENDPOINT, "username": "u", "password": "p"})
    )
    assert masked(parsed.model_dump())["ves_subscription"]["password"] == "***"


# --- properties: nothing but ConfigError ------------------------------------------------------

FIELD_NAMES = [
    "ves_subscription",
    "endpoint",
    "username",
    "password",
    "ves_version",
    "timeout",
    "ssl_insecure",
    "ca_file",
    "poll_interval_default",
    "backlogs",
    "domain",
    "type",
    "tenant",
    "tenantid",
    "source",
    "sourceid",
    "poll_interval",
    "thresholds",
    "metric",
    "above",
    "below",
    "severity",
    "cont",
    "host_faults",
    "failure_threshold",
    CONFIG_KEY,
]
INTERESTING = [
    "10",
    "0",
    "-1",
    "1e400",
    "nan",
    "*",
    "",
    " ",
    "fault",
    "pm",
    "TCA",
    "heartbeat",
    "vm",
    "host",
    "vim",
    "v5",
    "v7",
    "MAJOR",
    "cpu.percentUsage",
    "http://127.0.0.1:1/eventListener/v7",
    "https://[::1/x",
    "http://h:0/eventBatch",
    "\ud800",
    "true",
]
any_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(INTERESTING),
)
shaped = st.recursive(
    any_scalar,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=6), inner, max_size=6)
    ),
    max_leaves=40,
)


def mostly(valid: st.SearchStrategy[Any], junk: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid values nine times in ten, so that some whole configs pass and reach every rule."""
    return st.sampled_from(range(10)).flatmap(lambda n: junk if n == 0 else valid)


seconds = st.one_of(
    st.integers(1, 86400),
    st.floats(1, 86400),
    st.integers(1, 86400).map(str),
)
names = st.sampled_from(["admin", "demo", "*", "", "vm-1", "onap-aaf"]) | st.text(max_size=8)
threshold_valid = st.builds(
    lambda metric, side, limit, extra: {"metric": metric, side: limit, **extra},
    st.sampled_from(KNOWN_METRICS),
    st.sampled_from(["above", "below"]),
    st.integers(-100, 100) | st.floats(-1e6, 1e6) | st.integers(0, 100).map(str),
    st.fixed_dictionaries(
        {},
        optional={
            "severity": mostly(st.sampled_from(["MAJOR", "minor", "Critical"]), any_scalar),
            "cont": mostly(st.booleans(), any_scalar),
        },
    ),
)
threshold_like = mostly(threshold_valid, shaped)
COMBOS = [(d, "vm") for d in ("fault", "pm", "heartbeat", "tca", "thresholdCrossingAlert")] + [
    (d, t) for d in ("fault", "heartbeat") for t in ("host", "vim")
]


def make_backlog(
    combo: tuple[str, str], fields: dict[str, Any], thresholds: list[Any]
) -> dict[str, Any]:
    """A backlog of ``combo`` keeping only the fields that suit it."""
    domain, type_ = combo
    backlog = {"domain": domain, "type": type_, **fields}
    if type_ != "vm":
        backlog = {k: v for k, v in backlog.items() if k not in ("tenant", "tenantid")}
    if type_ == "vim":
        backlog = {k: v for k, v in backlog.items() if k not in ("source", "sourceid")}
    else:
        backlog.pop("failure_threshold", None)
    if not (domain == "fault" and type_ == "vm"):
        backlog.pop("host_faults", None)
    if domain in ("tca", "thresholdCrossingAlert"):
        backlog["thresholds"] = thresholds
    return backlog


backlog_valid = st.builds(
    make_backlog,
    st.sampled_from(COMBOS),
    st.fixed_dictionaries(
        {},
        optional={
            "tenant": mostly(names, any_scalar),
            "tenantid": mostly(names, any_scalar),
            "source": mostly(names, any_scalar),
            "sourceid": mostly(names, any_scalar),
            "poll_interval": mostly(seconds, any_scalar),
            "host_faults": mostly(st.booleans(), any_scalar),
            "failure_threshold": mostly(st.integers(1, 100), any_scalar),
            "unknown": shaped,
        },
    ),
    st.lists(threshold_like, min_size=1, max_size=3) | shaped,
)
backlog_like = mostly(backlog_valid, shaped)
endpoints = st.sampled_from(
    [
        "http://127.0.0.1:8080/eventListener/v5",
        "https://ves.onap:8443/eventListener/v7/",
        "http://127.0.0.1:9011/sample",
    ]
)
subscription_valid = st.builds(
    lambda endpoint, credentials, extra: {"endpoint": endpoint, **credentials, **extra},
    mostly(endpoints, st.sampled_from(INTERESTING) | shaped),
    st.sampled_from([{}, {"username": "user", "password": "password"}])
    | st.fixed_dictionaries({}, optional={"username": any_scalar, "password": any_scalar}),
    st.fixed_dictionaries(
        {},
        optional={
            "ves_version": mostly(st.sampled_from(["v5", "V7"]), any_scalar),
            "timeout": mostly(st.floats(0.5, 120), any_scalar),
            "ssl_insecure": mostly(st.booleans(), any_scalar),
            "ca_file": mostly(st.just("/etc/ca.pem"), any_scalar),
        },
    ),
)
config_like = st.fixed_dictionaries(
    {"ves_subscription": mostly(subscription_valid, shaped)},
    optional={
        "poll_interval_default": mostly(seconds, any_scalar),
        "backlogs": mostly(st.lists(backlog_like, max_size=5), shaped),
        "extra": shaped,
    },
)


def only_config_errors(text: str) -> None:
    try:
        parsed = parse_cloud_extra_info(text)
    except ConfigError as exc:
        assert exc.problems
        assert all(isinstance(p, str) and isinstance(m, str) and m for p, m in exc.problems)
        return
    if parsed is not None:
        assert all(len(backlog.key) == 16 for backlog in parsed.backlogs)
        assert all(not math.isnan(parsed.interval_of(b)) for b in parsed.backlogs)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_arbitrary_text_raises_only_config_error(text: str) -> None:
    """Any text at all: parse raises nothing but ConfigError; check-config never raises."""
    only_config_errors(text)
    assert isinstance(check_config_text(text), list)
    assert isinstance(check_config_warnings(text), list)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config_like, st.booleans())
def test_config_shaped_json_raises_only_config_error(obj: dict[str, Any], as_string: bool) -> None:
    """JSON shaped like vesagent_config: only ConfigError, and check-config never raises."""
    text = json.dumps({CONFIG_KEY: obj})
    only_config_errors(text)
    check_input = json.dumps(text) if as_string else text
    found = check_config_text(check_input)
    assert all(isinstance(path, str) and isinstance(message, str) for path, message in found)
    check_config_warnings(check_input)
    warnings(obj)
    masked(obj)
    with contextlib.suppress(ConfigError):
        parse_vesagent_config(obj)  # Python objects too: NaN and huge integers included
