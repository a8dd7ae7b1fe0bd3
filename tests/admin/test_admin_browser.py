"""The admin page in a real headless Chromium (Debian's, driven by Selenium).

A broker runs two real gRPC consumers: one answering UNAVAILABLE (its breaker opens), one
answering INVALID_ARGUMENT (its events end in its DLQ). The page must show the open breaker,
list the DLQ with its headers and decoded payload (markup in them shown as text, never run),
and a click on "replay", with the token entered and the confirmation accepted, must bring
the event back to the consumer, which accepts it now. Screenshots: ``tmp_path/admin.png``
(overview) and ``tmp_path/admin-dlq.png``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from .chromium import FLAGS, Chromium, ChromiumUnavailable, ensure_chromium
from .scenario import MARKUP, TOKEN, admin_scenario

pytestmark = pytest.mark.integration

TITLE = "Courier broker"


@pytest.fixture(scope="session")
def chromium() -> Chromium:
    try:
        return ensure_chromium()
    except ChromiumUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture()
def browser(chromium: Chromium) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium.browser)
    for flag in FLAGS:
        options.add_argument(flag)
    # Both paths given: Selenium Manager (which would download a driver) never runs.
    driver = webdriver.Chrome(service=Service(executable_path=str(chromium.driver)),
                              options=options)  # fmt: skip
    try:
        yield driver
    finally:
        driver.quit()


def wait(
    driver: WebDriver, what: str, check: Callable[[WebDriver], Any], timeout: float = 30
) -> Any:
    """Poll ``check`` (stale elements from the page's own refresh count as 'not yet')."""

    def attempt(d: WebDriver) -> Any:
        try:
            return check(d)
        except StaleElementReferenceException:
            return False

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(attempt, message=what)


def click(driver: WebDriver, css: str, what: str) -> None:
    """Click the element at ``css`` (retried when a refresh replaced it under us)."""

    def clicked(d: WebDriver) -> bool:
        found = d.find_elements(By.CSS_SELECTOR, css)
        if not found or not found[0].is_displayed():
            return False
        found[0].click()
        return True

    wait(driver, what, clicked)


def text(driver: WebDriver, css: str) -> str:
    found = driver.find_elements(By.CSS_SELECTOR, css)
    return found[0].text if found else ""


def test_the_page_shows_the_open_breaker_and_a_click_replays_a_dlq_event(
    bootstrap_servers: str, unique: Callable[[str], str], browser: WebDriver, tmp_path: Path
) -> None:
    with admin_scenario(bootstrap_servers, unique) as s:
        browser.get(s.url)
        assert browser.title == TITLE
        down_breaker = f'tr[data-consumer="{s.down_name}"] .breaker'
        wait(browser, "the open breaker", lambda d: text(d, down_breaker) == "open")
        picky_breaker = f'tr[data-consumer="{s.picky_name}"] .breaker'
        assert text(browser, picky_breaker) == "closed"
        wait(browser, "failed calls listed",
             lambda d: d.find_elements(By.CSS_SELECTOR, "#failures td") and
             "UNAVAILABLE" in text(d, "#failures"))  # fmt: skip
        overview = tmp_path / "admin.png"
        browser.save_screenshot(str(overview))

        # The token, kept in sessionStorage for this tab.
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        click(browser, "#token-save", "the token button")
        assert (
            browser.execute_script("return sessionStorage.getItem('courier-admin-token')") == TOKEN
        )

        click(browser, f'tr[data-consumer="{s.picky_name}"] a.dlq-link', "the DLQ link")
        rows = "#dlq-events tr[data-position]"
        wait(browser, "3 DLQ events", lambda d: len(d.find_elements(By.CSS_SELECTOR, rows)) == 3)
        target = s.picky_events[0]
        row = f'#dlq-events tr[data-event-id="{target.id}"]'
        assert text(browser, f"{row} td.status") == "INVALID_ARGUMENT"

        # Details: headers and payload, markup shown as text and never run.
        click(browser, f"{row} button.details-toggle", "the details button")
        # JSON.stringify escapes the markup's quotes: look for a part without any.
        shown = MARKUP.split('"')[0]
        wait(browser, "the decoded payload",
             lambda d: shown in text(d, "#dlq-events tr.details pre.payload-json"))  # fmt: skip
        assert MARKUP in text(browser, "#dlq-events tr.details table.headers")  # x-note header
        details = text(browser, "#dlq-events tr.details")
        assert "courier-last-status" in details and "received_by <b>must</b> be a name" in details
        assert "pkg-0" in details
        assert browser.find_elements(By.CSS_SELECTOR, "#dlq img, #dlq script, #dlq b") == []
        assert browser.title == TITLE  # the markup's handlers would have changed it

        # Replay that one event: the consumer accepts now.
        s.picky_rejects.clear()
        click(browser, f"{row} button.replay-one", "the replay button")
        wait(browser, "the confirmation", lambda d: d.find_element(By.ID, "confirm").is_displayed())
        assert text(browser, "#confirm-text").startswith("Replay 1 event(s)")
        assert target.id in text(browser, "#confirm-list")
        time.sleep(0.5)
        assert s.picky_server.delivered("Handle") == {}  # nothing before the confirmation
        click(browser, "#confirm-yes", "the confirm button")
        wait(browser, "the replay result", lambda d: "Replayed 1 of 1" in text(d, "#result"))
        s.picky_server.wait_for(
            lambda: target.id in s.picky_server.delivered("Handle"), 30, "the replayed event"
        )
        assert set(s.picky_server.delivered("Handle")) == {target.id}
        wait(browser, "the row marked replayed",
             lambda d: text(d, f"{row} td:nth-child(9)") == "yes")  # fmt: skip
        dlq_shot = tmp_path / "admin-dlq.png"
        browser.save_screenshot(str(dlq_shot))
        assert overview.stat().st_size > 10_000 and dlq_shot.stat().st_size > 10_000
        print(f"\nscreenshots: {overview} {dlq_shot}")
