"""Every query of the dashboard and of the alert rules names only metrics and labels the agent
exports: read from a live ``Metrics`` on a fresh registry (every labelled metric given a child),
plus an explicit allowlist for the names other branches add this round.

PromQL syntax is checked by ``promtool`` (dashboard queries become recording rules); names and
labels are pulled out of each query by :func:`names_in`, which knows PromQL's shape well enough
for that (selectors, matchers, ``by``/``without``/``on``/``ignoring`` lists, function calls).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from vesagent.metrics import Metrics, OutboxCollector
from vesagent.notifications.metrics import NotificationMetrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "vesagent-rules.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "vesagent.json"

# Names arriving this round from other branches; each entry goes once vesagent/metrics.py
# exports the name (a name exported for real is checked against its real labels instead).
PENDING: dict[str, set[str]] = {}
# Labels Prometheus itself attaches to every scraped series (the target's, not the agent's).
TARGET_LABELS = {"instance", "job"}
# Grafana's variables, replaced by what they stand for when every value is selected.
GRAFANA_VARIABLES = {"$vimid": ".*", "$__rate_interval": "5m", "$__range": "1h"}
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "inf", "nan",
}  # fmt: skip


def exported() -> dict[str, set[str]]:
    """Sample names (``_total``, ``_bucket``...) the agent exports, each with its label names."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    registry.register(OutboxCollector(lambda: {"http://ves": {"depth": 1}}))
    notifications = NotificationMetrics(registry)  # the listener's, on the agent's registry
    for metric in [*vars(metrics).values(), *vars(notifications).values()]:
        if isinstance(metric, MetricWrapperBase) and metric._labelnames:
            metric.labels(*["x"] * len(metric._labelnames))
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            found.setdefault(sample.name, set()).update(sample.labels)
    return found


def known_names() -> dict[str, set[str]]:
    """What queries may name: the exported samples, then the pending ones not yet exported."""
    names = exported()
    for name, labels in PENDING.items():
        names.setdefault(name, labels)
    return names


def names_in(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) a PromQL expression uses."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    labels = set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)\s*\"", expr))
    for clause in re.findall(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", expr
    ):
        labels |= {label.strip() for label in clause.split(",") if label.strip()}
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', " ", expr)  # string literals
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)  # matchers, ranges
    metrics = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)(\s*\()?", expr):
        token, call = match.group(1), match.group(2)
        if call or token.lower() in KEYWORDS:
            continue
        metrics.add(token)
    return metrics, labels


def problems(expr: str, names: dict[str, set[str]]) -> list[str]:
    """What in ``expr`` the agent does not export (empty when everything is known)."""
    metrics, labels = names_in(expr)
    found = [f"unknown metric {m}" for m in sorted(metrics - names.keys())]
    allowed = set(TARGET_LABELS)
    for metric in metrics & names.keys():
        allowed |= names[metric]
    found += [
        f"label {label} is not exported by {sorted(metrics)}" for label in sorted(labels - allowed)
    ]
    if not metrics:
        found.append("names no metric")
    return found


def rule_queries() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(alert, expression, rule) for every rule."""
    for group in yaml.safe_load(RULES.read_text("utf-8"))["groups"]:
        for rule in group["rules"]:
            yield rule.get("alert") or rule["record"], rule["expr"], rule


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_queries() -> Iterator[tuple[str, str]]:
    """(panel title, expression) for every target of every panel."""
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def test_checker_reports_unknown_metrics_and_labels() -> None:
    """The checker itself bites: a made-up metric and a made-up label are both reported."""
    names = known_names()
    assert problems('sum by (vimid) (rate(vesagent_polls_total{outcome="error"}[5m]))', names) == []
    assert problems("rate(vesagent_nope_total[5m])", names) == [
        "unknown metric vesagent_nope_total"
    ]
    assert problems("sum by (region) (vesagent_polls_total)", names) == [
        "label region is not exported by ['vesagent_polls_total']"
    ]
    assert problems('vesagent_collector_up{vimid="x"}', names)  # vimid is not a collector label


def test_live_metrics_include_what_the_queries_rely_on() -> None:
    """The exported names the dashboard and rules are built on exist with their labels."""
    names = exported()
    assert names["vesagent_polls_total"] == {"vimid", "outcome"}
    assert "le" in names["vesagent_poll_duration_seconds_bucket"]
    assert names["vesagent_outbox_depth"] == {"collector"}
    assert names["vesagent_events_total"] == {"domain", "severity"}


def test_rule_queries_name_only_exported_metrics_and_labels() -> None:
    """Every alert expression, and every $labels.X its annotations print, is exported."""
    names = known_names()
    errors = []
    for alert, expr, rule in rule_queries():
        errors += [f"{alert}: {p}" for p in problems(expr, names)]
        metrics, grouped = names_in(expr)
        # An aggregation keeps only its `by` labels; a plain selector keeps all of them.
        printable = set(grouped)
        if not re.search(r"\b(?:sum|max|min|avg|count)\s*(?:by\s*\([^)]*\)\s*)?\(", expr):
            printable |= TARGET_LABELS
            for metric in metrics & names.keys():
                printable |= names[metric]
        text = json.dumps(rule.get("annotations", {}))
        errors += [
            f"{alert}: annotation prints $labels.{label}, which the expression drops"
            for label in re.findall(r"\$labels\.(\w+)", text)
            if label not in printable
        ]
    assert not errors, "\n".join(errors)


def test_dashboard_queries_name_only_exported_metrics_and_labels() -> None:
    """Every panel query, and the region variable's query, uses exported names only."""
    names = known_names()
    errors = [f"{title}: {p}" for title, expr in dashboard_queries() for p in problems(expr, names)]
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        metric, label = re.fullmatch(
            r"label_values\((\w+),\s*(\w+)\)", variable["definition"]
        ).groups()
        if label not in names.get(metric, set()):
            errors.append(f"variable {variable['name']}: {metric} has no label {label}")
    assert not errors, "\n".join(errors)


def test_dashboard_covers_what_operators_look_for() -> None:
    """Regions and poll health, events per domain and severity, delivery and outbox per
    collector, open alarms: each has a panel."""
    queries = " ".join(expr for _title, expr in dashboard_queries())
    for needed in (
        "vesagent_polls_total",
        "by (domain, severity)",
        "by (collector, outcome)",
        "vesagent_outbox_depth",
        "vesagent_active_alarms",
    ):
        assert needed in queries, needed


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not found (.ci/run installs it)"
)
def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every dashboard query (each written as a recording rule)."""
    queries = [expr for _title, expr in dashboard_queries()]
    rules = {"groups": [{"name": "dashboard", "rules": []}]}
    for i, expr in enumerate(queries):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        rules["groups"][0]["rules"].append({"record": f"dashboard:query_{i}", "expr": expr})
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump(rules), "utf-8")
    done = subprocess.run(
        ["promtool", "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(queries)} rules found" in done.stdout
