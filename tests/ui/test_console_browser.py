"""The console in a real browser: headless Chromium against an agent and the simulators.

One agent and one browser for the whole module (start-up is the slow part); each test uses
its own region so that they do not depend on each other's order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import wait_until
from tests.ui.browser import chromium
from tests.ui.conftest import OWNER, Console
from vesagent.model import RegionKey
from vesagent.sim.topology import extra_info

SECRET = "Pw-only-in-AAI-7"  # a collector password that must never reach the browser


@pytest.fixture(scope="module")
def browser(console: Console) -> Iterator[Any]:
    with chromium() as driver:
        yield driver


def by_css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def texts(driver: Any, selector: str) -> list[str]:
    """The visible text of every match, read in one script: live swaps cannot make it stale."""
    script = "return [...document.querySelectorAll(arguments[0])].map((e) => e.innerText);"
    return list(driver.execute_script(script, selector))


def text_of(driver: Any, selector: str) -> str:
    found = texts(driver, selector)
    return found[0] if found else ""


def csp_violations(driver: Any) -> list[str]:
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]
    ]


def set_editor(driver: Any, old: str, new: str) -> None:
    """Select ``old`` in the editor and type ``new`` over it, as a person would."""
    area = by_css(driver, "textarea#config")[0]
    start = area.get_attribute("value").index(old)
    driver.execute_script(
        "arguments[0].focus(); arguments[0].setSelectionRange(arguments[1], arguments[2]);",
        area,
        start,
        start + len(old),
    )
    area.send_keys(new)


def open_editor(driver: Any, console: Console, region: str) -> None:
    driver.get(f"{console.url}regions/{OWNER}_{region}/config")
    wait_until(lambda: by_css(driver, "#gutter span"), 10, "the editor's line numbers")


def test_overview_loads(console: Console, browser: Any) -> None:
    """The overview lists a configured region, healthy, with no CSP violation in the page."""
    console.add_region("RegionOne", extra_info(console.config([{"domain": "fault", "type": "vm"}])))
    console.sync()
    browser.get(console.url)
    row = f'tr[data-vimid="{OWNER}_RegionOne"]'
    wait_until(lambda: "ok" in text_of(browser, f"{row} td.poll"), 10, "a successful poll")
    assert "valid" in text_of(browser, f"{row} td.config")
    assert browser.title.startswith("regions")
    assert csp_violations(browser) == []


def test_vm_fault_appears_and_clears_without_reload(console: Console, browser: Any) -> None:
    """A VM in ERROR shows up as a critical alarm on the open page, then clears, no reload."""
    ids = console.openstack.create_servers("RegionTwo", 2, prefix="web")
    console.add_region("RegionTwo", extra_info(console.config([{"domain": "fault", "type": "vm"}])))
    console.sync()
    browser.get(f"{console.url}regions/{OWNER}_RegionTwo")
    wait_until(lambda: by_css(browser, ".none-alarms"), 10, "the empty alarm list")
    browser.execute_script("window.stillTheSamePage = true;")
    name = console.openstack.server("RegionTwo", ids[0])["name"]
    console.openstack.set_status("RegionTwo", ids[0], "ERROR", fault={"code": 500, "message": "x"})
    alarm = wait_until(
        lambda: [t for t in texts(browser, "tr.alarm") if name in t], 15, "the alarm row"
    )
    assert "critical" in alarm[0]
    wait_until(
        lambda: "delivered" in text_of(browser, "table.events tbody tr"), 10, "delivery shown"
    )
    console.openstack.set_status("RegionTwo", ids[0], "ACTIVE")
    wait_until(lambda: by_css(browser, ".none-alarms"), 15, "the alarm to clear")
    assert browser.execute_script("return window.stillTheSamePage === true;")
    assert csp_violations(browser) == []


def test_invalid_config_shows_error_at_path_and_save_is_refused(
    console: Console, browser: Any
) -> None:
    """A bad poll_interval is reported at its JSON path and line; Save writes nothing."""
    bad = console.config([{"domain": "fault", "type": "vm", "poll_interval": -3}])
    console.add_region("RegionBad", extra_info(bad, other="kept"))
    before = console.stored("RegionBad")
    open_editor(browser, console, "RegionBad")
    problem = wait_until(lambda: by_css(browser, "#problems li.problem"), 10, "the problem")[0]
    assert problem.get_attribute("data-path") == "backlogs[0].poll_interval"
    assert "must be at least 1 second" in problem.text
    text = by_css(browser, "textarea#config")[0].get_attribute("value")
    expected_line = next(
        n for n, line in enumerate(text.splitlines(), 1) if '"poll_interval": -3' in line
    )
    assert problem.get_attribute("data-line") == str(expected_line)
    assert by_css(browser, f"#gutter-line-{expected_line}.mark-bad")
    by_css(browser, "#save")[0].click()
    refused = wait_until(lambda: by_css(browser, "#save-refused"), 10, "the refusal")
    assert "backlogs[0].poll_interval" in refused[0].text
    assert console.stored("RegionBad") == before
    assert csp_violations(browser) == []


def test_valid_fix_saves_and_the_agent_follows(console: Console, browser: Any) -> None:
    """Typing a valid value clears the error live; Save writes A&AI and the agent starts."""
    bad = console.config([{"domain": "fault", "type": "vm", "poll_interval": -3}])
    console.add_region("RegionFix", extra_info(bad, other="kept"))
    console.sync()
    key = RegionKey(OWNER, "RegionFix")
    assert console.agent.pollers.get(key) is None
    open_editor(browser, console, "RegionFix")
    wait_until(lambda: by_css(browser, "#problems li.problem"), 10, "the problem")
    set_editor(browser, '"poll_interval": -3', '"poll_interval": 2')
    wait_until(lambda: text_of(browser, "#verdict") == "valid", 10, "the live verdict")
    assert '+      "poll_interval": 2' in text_of(browser, "#diff")
    by_css(browser, "#save")[0].click()
    wait_until(lambda: by_css(browser, "#saved"), 10, "the saved banner")
    stored = json.loads(console.stored("RegionFix") or "")
    assert stored["other"] == "kept"
    assert stored["vesagent_config"]["backlogs"][0]["poll_interval"] == 2
    assert stored["vesagent_config"]["ves_subscription"]["password"] == "sample1"
    poller = wait_until(lambda: console.agent.pollers.get(key), 10, "the region's poller")
    assert poller.spec.config.backlogs[0].poll_interval == 2


def test_concurrent_edit_in_aai_is_detected(console: Console, browser: Any) -> None:
    """Someone edits A&AI after the editor opened: Save shows it and overwrites nothing."""
    mine = console.config([{"domain": "fault", "type": "vm"}])
    console.add_region("RegionRace", extra_info(mine))
    open_editor(browser, console, "RegionRace")
    theirs = extra_info(console.config([{"domain": "fault", "type": "vm"}], poll=7))
    console.aai.set_extra_info(OWNER, "RegionRace", theirs)
    set_editor(browser, '"poll_interval_default": 1', '"poll_interval_default": 3')
    wait_until(lambda: text_of(browser, "#verdict") == "valid", 10, "the live verdict")
    by_css(browser, "#save")[0].click()
    conflict = wait_until(lambda: by_css(browser, "#conflict"), 10, "the conflict")[0]
    assert "someone changed this config in A&AI" in conflict.text
    assert '"poll_interval_default": 7' in conflict.text
    assert console.stored("RegionRace") == theirs


def test_password_left_masked_is_kept(console: Console, browser: Any) -> None:
    """The password shows as *** and never reaches the page; saving keeps the stored one."""
    config = console.config([{"domain": "fault", "type": "vm", "tenant": "nobody"}])
    config["ves_subscription"]["password"] = SECRET
    config["ves_subscription"]["endpoint"] = f"{console.ves.url}/eventListener/v5"
    console.add_region("RegionPw", extra_info(config, other={"keep": [1, 2]}))
    console.sync()
    open_editor(browser, console, "RegionPw")
    area = by_css(browser, "textarea#config")[0]
    assert '"password": "***"' in area.get_attribute("value")
    set_editor(browser, '"poll_interval_default": 1', '"poll_interval_default": 2')
    wait_until(lambda: text_of(browser, "#verdict") == "valid", 10, "the live verdict")
    by_css(browser, "#save")[0].click()
    wait_until(lambda: by_css(browser, "#saved"), 10, "the saved banner")
    stored = json.loads(console.stored("RegionPw") or "")
    assert stored["vesagent_config"]["ves_subscription"]["password"] == SECRET
    assert stored["vesagent_config"]["poll_interval_default"] == 2
    assert stored["other"] == {"keep": [1, 2]}
    for page in ("", f"regions/{OWNER}_RegionPw", f"regions/{OWNER}_RegionPw/config"):
        browser.get(console.url + page)
        assert SECRET not in browser.page_source
