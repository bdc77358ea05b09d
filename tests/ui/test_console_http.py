"""The console over plain HTTP: headers, cross-site writes, auth, escaping, validation."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from pydantic import SecretStr

from tests.helpers import free_port, wait_until
from tests.ui.conftest import OWNER, Console, start_console, stop_console
from vesagent.config import check_config_text
from vesagent.sim.topology import extra_info

WRITE = {"X-Vesagent-Console": "1"}


@pytest.fixture(scope="module")
def seeded(console: Console) -> Console:
    config = console.config([{"domain": "fault", "type": "vm", "poll_interval": "<script>x"}])
    console.add_region("RegionOne", extra_info(config))
    console.sync()
    return console


def check_url(console: Console, region: str = "RegionOne") -> str:
    return f"{console.url}regions/{OWNER}_{region}/config/check"


def test_pages_carry_a_strict_content_security_policy(seeded: Console) -> None:
    """Every console answer forbids inline script, framing and foreign origins."""
    for path in ("", "fragments/overview", f"regions/{OWNER}_RegionOne/config", "s/console.css"):
        response = requests.get(seeded.url + path, timeout=5)
        assert response.status_code == 200, path
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_values_are_escaped(seeded: Console) -> None:
    """A config value that looks like markup is shown as text, never as markup."""
    page = requests.get(seeded.url, timeout=5).text
    assert "&lt;script&gt;x" in page
    assert "<script>x" not in page


@pytest.mark.parametrize(
    "headers, reason",
    [
        ({}, "X-Vesagent-Console"),
        ({**WRITE, "Sec-Fetch-Site": "cross-site"}, "cross-site"),
        ({**WRITE, "Origin": "http://evil.example"}, "cross-origin"),
    ],
)
def test_cross_site_writes_are_refused(seeded: Console, headers: dict, reason: str) -> None:
    """A POST without the console header, or from another site or origin, changes nothing."""
    before = seeded.stored("RegionOne")
    url = f"{seeded.url}regions/{OWNER}_RegionOne/config"
    response = requests.post(url, data={"config": "{}", "base": ""}, headers=headers, timeout=5)
    assert response.status_code == 403
    assert reason in response.text
    assert seeded.stored("RegionOne") == before


def test_same_origin_write_passes_the_guard(seeded: Console) -> None:
    """The browser's own same-origin POST (Origin = our host) is accepted by the guard."""
    origin = seeded.url.rstrip("/").removesuffix("/ui")
    response = requests.post(
        check_url(seeded),
        data={"config": "{}"},
        headers={**WRITE, "Origin": origin, "Sec-Fetch-Site": "same-origin"},
        timeout=5,
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[1]",
        '{"ves_subscription": {"endpoint": "ftp://x"}, "backlogs": [{"domain": "nope"}]}',
        '"{\\"vesagent_config\\": {\\"backlogs\\": []}}"',
    ],
)
def test_validation_endpoint_is_check_config(seeded: Console, text: str) -> None:
    """The endpoint reports exactly ``check-config``'s problems (paths and messages)."""
    response = requests.post(
        check_url(seeded),
        data={"config": text},
        headers={**WRITE, "Accept": "application/json"},
        timeout=5,
    )
    body = response.json()
    assert [(p["path"], p["message"]) for p in body["problems"]] == check_config_text(text)
    assert body["valid"] is False


def test_validation_maps_paths_to_lines(seeded: Console) -> None:
    """Each problem carries the editor line its JSON path points at."""
    config = seeded.config([{"domain": "fault", "type": "vm"}, {"domain": "fault", "type": "x"}])
    text = json.dumps(config, indent=2)
    response = requests.post(
        check_url(seeded),
        data={"config": text},
        headers={**WRITE, "Accept": "application/json"},
        timeout=5,
    )
    (problem,) = response.json()["problems"]
    assert problem["path"] == "backlogs[1].type"
    assert text.splitlines()[problem["line"] - 1].strip() == '"type": "x"'


def test_unknown_region_is_a_clear_404(seeded: Console) -> None:
    """A vimid that is not one, or not in A&AI, answers 404 with the reason."""
    assert requests.get(f"{seeded.url}regions/nounderscore", timeout=5).status_code == 404
    response = requests.get(f"{seeded.url}regions/{OWNER}_Nowhere/config", timeout=5)
    assert response.status_code == 404
    assert "Nowhere" in response.text


def test_edit_of_other_keys_meanwhile_is_kept_not_a_conflict(seeded: Console) -> None:
    """Another system changing its own key of cloud-extra-info does not block a save."""
    config = seeded.config([{"domain": "fault", "type": "vm"}])
    seeded.add_region("RegionKeys", extra_info(config, other="v1"))
    page = requests.get(f"{seeded.url}regions/{OWNER}_RegionKeys/config", timeout=5).text
    base = re.search(r'name="base" id="base" value="([0-9a-f]+)"', page)
    assert base is not None
    seeded.aai.set_extra_info(OWNER, "RegionKeys", extra_info(config, other="v2"))
    mine = {**config, "poll_interval_default": 5}
    response = requests.post(
        f"{seeded.url}regions/{OWNER}_RegionKeys/config",
        data={"config": json.dumps(mine), "base": base[1]},
        headers=WRITE,
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 303
    stored = json.loads(seeded.stored("RegionKeys") or "")
    assert stored["other"] == "v2"
    assert stored["vesagent_config"]["poll_interval_default"] == 5


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    running = start_console(
        Path(tmp_path_factory.mktemp("secured")),
        api_username="operator",
        api_password=SecretStr("console-pw"),
    )
    try:
        yield running
    finally:
        stop_console(running)


def test_console_uses_the_rest_api_authentication(secured: Console) -> None:
    """With API credentials set, every console path (static files too) needs them."""
    for path in ("", "s/htmx.min.js", f"regions/{OWNER}_RegionOne/config"):
        response = requests.get(secured.url + path, timeout=5)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert requests.get(secured.url, auth=("operator", "console-pw"), timeout=5).status_code == 200
    assert requests.get(secured.url, auth=("operator", "wrong"), timeout=5).status_code == 401


def test_overview_shows_each_regions_notification_state(seeded: Console) -> None:
    """A region with notifications on an unreachable broker shows its listener failing, a
    region without them a dash; the broker password never reaches the page."""
    secret = "bus-s3cret-pw"
    config = seeded.config([{"domain": "fault", "type": "vm"}], poll=30)
    config["notifications"] = {
        "transport_url": f"rabbit://vesagent:{secret}@127.0.0.1:{free_port()}/"
    }
    seeded.add_region("RegionTwo", extra_info(config))
    seeded.sync()

    def cells() -> dict[str, str]:
        page = requests.get(f"{seeded.url}fragments/overview", timeout=5).text
        assert secret not in page
        rows = re.findall(r'data-vimid="([^"]+)".*?<td class="notif">(.*?)</td>', page, re.S)
        return {vimid: re.sub(r"<[^>]+>", "", cell).strip() for vimid, cell in rows}

    shown = wait_until(
        lambda: cells().get(f"{OWNER}_RegionTwo") == "failing" and cells(),
        30,
        "RegionTwo's listener shown failing",
    )
    assert shown[f"{OWNER}_RegionOne"] == "—"
    assert secret not in requests.get(f"{seeded.url}regions/{OWNER}_RegionTwo", timeout=5).text
