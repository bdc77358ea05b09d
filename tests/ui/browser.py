"""Headless Chromium for the console's browser tests (Debian's ``chromium`` + ``chromium-driver``).

``.ci/run`` installs both when missing; elsewhere the tests skip, naming what is missing.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)


def _find(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A Selenium-driven headless Chromium with a fresh profile; skips when unavailable."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    browser = _find("chromium", "chromium-browser")
    driver_path = _find("chromedriver", "chromium-driver")
    if browser is None or driver_path is None:
        pytest.skip(
            "headless Chromium is not installed (apt-get install chromium chromium-driver; "
            ".ci/run does it)"
        )
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="vesagent-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
        driver.set_page_load_timeout(20)
        try:
            yield driver
        finally:
            driver.quit()
