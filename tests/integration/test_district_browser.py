"""The district page (/district) in a real browser: Debian's Chromium, headless, through
selenium. The central's app serves three institutions from a fixed store on a frozen clock
(tests/unit/central/test_district.py); rows and figures are read from the DOM and compared
with GET /api/v1/district, the sort and filters are driven through the page's own controls,
and a token of one institution sees one row. Skips without Chromium (tests/system.py).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from central.api import Tenant, create_app
from central.profile import load_profile
from central.store import Store
from protocols.clock import VirtualClock
from tests.conftest import free_port
from tests.integration.test_dashboard_browser import ARTIFACTS, FLAGS, _binaries, wait_for
from tests.unit.central.central_helpers import authenticator, bearer
from tests.unit.central.test_district import NOW, A, B, C, populate

pytestmark = pytest.mark.integration


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    store = Store(tmp_path / "central.sqlite")
    populate(store)
    auth = authenticator()
    app = create_app(tmp_path / "central.sqlite",
                     [Tenant(c, load_profile("national")) for c in (A, B, C)],
                     VirtualClock(NOW), auth)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", auth
    finally:
        server.should_exit = True
        thread.join(30)
        store.close()


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[WebDriver]:
    binary, driver_path = _binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    options.add_argument("--window-size=1280,900")
    d = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    d.set_page_load_timeout(30)
    try:
        yield d
    finally:
        d.quit()


def rows(d: WebDriver) -> list[dict[str, str]]:
    """Each row's institution and cells, read in one script (one render)."""
    raw: list[dict[str, str]] = d.execute_script(
        "return Array.from(document.querySelectorAll('[data-testid=district-row]')).map("
        "tr => { const o = {institution: tr.dataset.institution};"
        "  tr.querySelectorAll('td[data-testid]').forEach(td => {"
        "    o[td.dataset.testid] = td.childNodes[0].textContent.trim(); });"
        "  return o; });")
    return raw


def shown_after(d: WebDriver, query: str) -> list[dict[str, str]]:
    wait_for(d, f"document.getElementById('main').dataset.query === {query!r}")
    return rows(d)


def api(url: str, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = httpx.get(f"{url}/api/v1/district", params=params, headers=headers, timeout=30)
    r.raise_for_status()
    out: list[dict[str, Any]] = r.json()["institutions"]
    return out


def fmt(x: float | None, digits: int) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def test_district_page_ranks_filters_and_sorts_like_the_api(
        served: tuple[str, Any], driver: WebDriver) -> None:
    url, auth = served
    admin = bearer(auth, "viewer")
    token = admin["Authorization"].removeprefix("Bearer ")
    driver.get(f"{url}/district#token={token}")
    wait_for(driver, "document.getElementById('main').dataset.state === 'ready'")
    shown = rows(driver)
    expected = api(url, admin, sort="score")
    assert [r["institution"] for r in shown] == [r["institution"] for r in expected]
    for s, e in zip(shown, expected, strict=True):
        assert s["d-rank"] == str(e["rank"])
        assert s["d-kgce_per_m2"] == fmt(e["kgce_per_m2"], 2)
        assert s["d-kgce_per_person"] == fmt(e["kgce_per_person"], 1)
        assert s["d-water_m3_per_person"] == fmt(e["water_m3_per_person"], 2)
        assert s["d-score"] == fmt(e["score"], 1)
        assert s["d-open_alarms"] == str(e["open_alarms"])
    charlie = next(s for s in shown if s["institution"] == "charlie")
    assert charlie["d-kgce_per_m2"] == "—"  # no data: never 0
    # The sort, by clicking a column header, then by the select.
    driver.find_element(By.CSS_SELECTOR, "button[data-sort=kgce_per_m2]").click()
    assert [r["institution"] for r in shown_after(driver, "sort=kgce_per_m2")] == [
        r["institution"] for r in api(url, admin, sort="kgce_per_m2")] == [
        "bravo", "alpha", "charlie"]
    Select(driver.find_element(By.ID, "f-sort")).select_by_value("kgce_per_person")
    assert [r["institution"] for r in shown_after(driver, "sort=kgce_per_person")] == [
        "alpha", "bravo", "charlie"]
    # Filters: a type, then a district on top of it.
    Select(driver.find_element(By.ID, "f-type")).select_by_value("school")
    assert {r["institution"] for r in shown_after(
        driver, "sort=kgce_per_person&type=school")} == {"alpha", "charlie"}
    Select(driver.find_element(By.ID, "f-region")).select_by_value("瑞安市")
    assert [r["institution"] for r in shown_after(
        driver, "sort=kgce_per_person&type=school&region=%E7%91%9E%E5%AE%89%E5%B8%82")] == [
        "charlie"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    Select(driver.find_element(By.ID, "f-type")).select_by_value("")
    Select(driver.find_element(By.ID, "f-region")).select_by_value("")
    shown_after(driver, "sort=kgce_per_person")
    driver.find_element(By.ID, "lang").click()
    wait_for(driver, "document.documentElement.lang === 'en'")
    driver.save_screenshot(str(ARTIFACTS / "district.png"))


def test_district_page_of_one_institutions_token_shows_one_row(
        served: tuple[str, Any], driver: WebDriver) -> None:
    url, auth = served
    token = bearer(auth, "viewer", ["bravo"])["Authorization"].removeprefix("Bearer ")
    driver.get(f"{url}/district#token={token}")
    wait_for(driver, "document.getElementById('main').dataset.state === 'ready'")
    assert [(r["institution"], r["d-rank"]) for r in rows(driver)] == [("bravo", "1")]
    driver.get(f"{url}/district?again#token=not-a-token")  # a new load, not a hash change
    wait_for(driver, "document.getElementById('main').dataset.state === 'auth'")
