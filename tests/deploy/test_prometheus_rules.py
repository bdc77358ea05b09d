"""The alert rules, checked and unit-tested with the real ``promtool`` (Debian's ``prometheus``).

``promtool test rules`` runs tests/deploy/promtool/vesagent-rules.test.yaml: for every alert,
series that fire it and series that must not. A mutated copy of the rules must fail those
tests, so they are known to bite. ``.ci/run`` installs promtool when it is missing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "vesagent-rules.yaml"
RULE_TESTS = Path(__file__).parent / "promtool" / "vesagent-rules.test.yaml"
PROMTOOL = shutil.which("promtool")

pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not found: apt-get install prometheus (.ci/run does)"
)


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run promtool; its output is in the result for the assertion message."""
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def test_rules_are_valid() -> None:
    """``promtool check rules`` accepts the file and finds every alert."""
    done = promtool("check", "rules", RULES)
    assert done.returncode == 0, done.stdout + done.stderr
    alerts = [
        r["alert"] for g in yaml.safe_load(RULES.read_text("utf-8"))["groups"] for r in g["rules"]
    ]
    assert f"SUCCESS: {len(alerts)} rules found" in done.stdout


def test_rule_unit_tests_pass() -> None:
    """``promtool test rules``: each alert fires on its series and stays quiet on the others."""
    done = promtool("test", "rules", RULE_TESTS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    """Each alert of the rules file is expected to fire somewhere and to be silent somewhere."""
    alerts = {
        r["alert"] for g in yaml.safe_load(RULES.read_text("utf-8"))["groups"] for r in g["rules"]
    }
    tests = yaml.safe_load(RULE_TESTS.read_text("utf-8"))["tests"]
    fired, quiet = set(), set()
    for test in tests:
        for case in test["alert_rule_test"]:
            (fired if case.get("exp_alerts") else quiet).add(case["alertname"])
        # A test whose series include a healthy peer counts as quiet for that peer too.
        if len(test["input_series"]) > 1:
            quiet |= {c["alertname"] for c in test["alert_rule_test"]}
    assert alerts <= fired, alerts - fired
    assert alerts <= quiet, alerts - quiet


@pytest.mark.parametrize(
    ("original", "mutant"),
    [
        ("vesagent_outbox_oldest_age_seconds > 600", "vesagent_outbox_oldest_age_seconds > 6000"),
        ('outcome="dead_lettered"', 'outcome="dropped"'),
        ("vesagent_regions_unowned) > 0", "vesagent_regions_unowned) > 5"),
        ("vesagent_store_up == 0", "vesagent_store_up == 1"),
    ],
)
def test_rule_tests_catch_a_broken_rule(tmp_path: Path, original: str, mutant: str) -> None:
    """The same unit tests fail against a copy of the rules with one threshold or label broken."""
    text = RULES.read_text("utf-8")
    assert original in text
    (tmp_path / "rules.yaml").write_text(text.replace(original, mutant), "utf-8")
    tests = yaml.safe_load(RULE_TESTS.read_text("utf-8"))
    tests["rule_files"] = ["rules.yaml"]
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests), "utf-8")
    done = promtool("test", "rules", tmp_path / "tests.yaml")
    assert done.returncode != 0 and "FAILED" in done.stdout + done.stderr
