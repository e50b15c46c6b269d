"""The built-in dashboard in a real browser: Debian's Chromium, headless, driven by selenium
through the chromedriver packaged with it.

Two servers: the real `greenguard demo` in a subprocess (live data moving at 600× real time)
and the central's app over a fixed store on a frozen clock (every figure exact, every
section populated, a stand-in for the bearer-token check). Figures are read from the DOM by
`data-testid` and compared with the JSON API; screenshots go to test-artifacts/dashboard/.
Under CI=true a missing chromium or chromedriver fails the test instead of skipping it.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from central.api import Tenant, create_app
from central.ingest import IngestStats
from central.institution import parse_institution
from central.ledger import SqliteLedger
from central.notify.channels import FakeChannel
from central.notify.config import parse_notify
from central.notify.notifier import AlarmSignal, Notifier
from central.notify.queue import NotifyQueue
from central.profile import load_profile
from central.store import Store
from central.upload.state import UploadState, upload_state_path
from protocols.clock import VirtualClock
from protocols.wire import Batch, Event, Severity, StreamId
from tests import system
from tests.conftest import free_port
from tests.unit.central.central_helpers import authenticator, bearer
from tests.unit.central.test_dashboard import DASHBOARD_INSTITUTION, NOW, populate_dashboard

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")
DESKTOP = (1280, 900)
PHONE = (390, 844)
TOKENS: dict[str, str] = {}  # set by the `fixed` fixture
FIXED_DB: list[Path] = []  # the `fixed` fixture's store file


def _binaries() -> tuple[str, str]:
    browser = system.require("chromium")
    driver = shutil.which("chromedriver") or "/usr/lib/chromium/chromedriver"
    return browser, driver


Browser = Callable[[], WebDriver]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    """Start a headless Chromium with a new empty profile (no token, no language)."""
    binary, driver_path = _binaries()
    drivers: list[WebDriver] = []

    def start() -> WebDriver:
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={tmp_path / f'profile-{len(drivers)}'}")
        options.add_argument(f"--window-size={DESKTOP[0]},{DESKTOP[1]}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(executable_path=driver_path),
                                  options=options)
        driver.set_page_load_timeout(30)
        drivers.append(driver)
        return driver

    yield start
    for d in drivers:
        d.quit()


# -- helpers ---------------------------------------------------------------------------


def wait_for(driver: WebDriver, script: str, *, timeout: float = 30.0) -> Any:
    """Poll a JavaScript expression until it is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(f"return ({script});")
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout} s: {script}")
        time.sleep(0.1)


def text(driver: WebDriver, testid: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]').text).strip()


def exists(driver: WebDriver, testid: str) -> bool:
    return bool(driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]'))


def number(shown: str) -> float | None:
    return None if shown == "—" else float(shown.replace(",", ""))


def snapshot(driver: WebDriver, testids: list[str]) -> tuple[float, dict[str, float | None]]:
    """The figures of one render and the `now` of the data behind it, read in one script:
    the page cannot re-render in between (a script runs to completion)."""
    raw = driver.execute_script(
        "const out = {};"
        "for (const id of arguments[0]) {"
        "  const el = document.querySelector(`[data-testid=\"${id}\"]`);"
        "  out[id] = el === null ? null : el.textContent.trim(); }"
        "return [document.getElementById('main').dataset.asOf, out];", testids)
    missing = [k for k, v in raw[1].items() if v is None]
    assert not missing, f"not on the page: {missing}"
    return float(raw[0]), {k: number(v) for k, v in raw[1].items()}


def fmt(x: float | None, digits: int) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def api(base: str, path: str, token: str | None = None) -> Any:
    request = urllib.request.Request(base + path)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.loads(r.read())


def console_errors(driver: WebDriver) -> list[str]:
    """Console errors, CSP violations included (Chromium logs them as SEVERE)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"
            and "401" not in e["message"]]  # the sign-in state is a 401 on purpose


def screenshot(driver: WebDriver, name: str, size: tuple[int, int]) -> Path:
    """A full-page screenshot at `size`'s width; returns the file."""
    driver.set_window_size(*size)
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(size[0], max(size[1], height + 120))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    assert driver.save_screenshot(str(path))
    driver.set_window_size(*size)
    assert path.stat().st_size > 10_000
    return path


def no_horizontal_overflow(driver: WebDriver) -> None:
    width = driver.execute_script("return document.documentElement.scrollWidth")
    inner = driver.execute_script("return window.innerWidth")
    assert width <= inner, f"page is {width} px wide in a {inner} px window"


def only_same_origin(driver: WebDriver, base: str) -> None:
    urls = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert urls, "no resource loaded at all"
    assert all(u.startswith(base) for u in urls), urls


def switch_to_english(driver: WebDriver) -> None:
    driver.find_element(By.CSS_SELECTOR, '[data-testid="lang-switch"]').click()
    wait_for(driver, "document.documentElement.lang === 'en'", timeout=5)
    assert driver.find_element(By.ID, "h-targets").text.startswith("Annual targets")
    assert driver.find_element(By.ID, "h-alarms").text == "Alarms"
    assert text(driver, "lang-switch") == "中文"


# -- against the real demo -------------------------------------------------------------


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """`greenguard demo` on a free port from 09:00 on a school day at 600× (ten simulated
    minutes a second); yields its base URL and the token of the dashboard link it prints
    (None while the API needs none) once data flows."""
    port = free_port()
    log = tmp_path / "demo.log"
    greenguard = Path(sys.executable).with_name("greenguard")
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(greenguard), "demo", "--port", str(port), "--workdir", str(tmp_path / "run"),
             "--speed", "600", "--start", "2026-03-02T09:00"],
            stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        banner = re.compile(rf"Dashboard: {re.escape(base)}/(?:#token=([^\s&]+))?")
        while (printed := banner.search(log.read_text())) is None:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        token = printed.group(1)
        while True:
            board = api(base, "/api/v1/institutions/demo-school/dashboard", token)
            if (board["power_w"] is not None and board["energy_kwh_today"] > 0
                    and board["compliance"]["energy_kgce"] > 0):
                break
            assert time.monotonic() < deadline, f"no data from the demo: {board}"
            time.sleep(0.5)
        yield base, token
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def between(low: float, shown: float | None, high: float, digits: int) -> None:
    """A figure rendered between two API reads of a quantity that only grows."""
    half = 0.5 * 10 ** -digits + 1e-9
    assert shown is not None
    assert low - half <= shown <= high + half, (low, shown, high)


@pytest.mark.slow
def test_dashboard_against_a_running_demo(demo: tuple[str, str | None],
                                          browser: Browser) -> None:
    base, token = demo
    driver = browser()
    before = api(base, "/api/v1/institutions/demo-school/dashboard", token)
    before_c = api(base, "/api/v1/institutions/demo-school/compliance", token)
    # The link the demo prints; a token the API does not need yet is kept all the same.
    assert token is not None, "the demo prints a link with a viewer token"
    driver.get(f"{base}/#token={token}")
    wait_for(driver, "document.getElementById('main').dataset.state === 'ready'")
    wait_for(driver, "document.querySelector('[data-testid=sparkline]')")
    as_of, shown = snapshot(driver, [
        "energy-kgce", "today-kwh", "score", "live-power",
        *(f"gauge-{i['key']}-{part}" for i in before_c["items"] for part in ("ytd", "target")),
        *(f"bld-{b['id']}-{part}" for b in before["buildings"]
          for part in ("today", "month", "power"))])
    after = api(base, "/api/v1/institutions/demo-school/dashboard", token)
    after_c = api(base, "/api/v1/institutions/demo-school/compliance", token)
    assert before["now"] <= as_of <= after["now"]

    # The token moved from the address bar to localStorage.
    assert driver.current_url == f"{base}/"
    assert driver.execute_script("return localStorage.getItem('gg_token')") == token

    assert text(driver, "institution") == after["institution"]["name"] == "示范中学"
    # Quantities that only grow during a school day lie between the two API reads.
    between(before_c["energy_kgce"], shown["energy-kgce"], after_c["energy_kgce"], 1)
    # Today's figures restart at midnight, 15 simulated hours (90 real seconds) after 09:00.
    same_day = before["today"] == after["today"]
    if same_day:
        between(before["energy_kwh_today"], shown["today-kwh"], after["energy_kwh_today"], 1)
    for b0, b1 in zip(before["buildings"], after["buildings"], strict=True):
        if same_day:
            between(b0["energy_kwh_today"], shown[f"bld-{b0['id']}-today"],
                    b1["energy_kwh_today"], 1)
        between(b0["energy_kwh_month"], shown[f"bld-{b0['id']}-month"], b1["energy_kwh_month"], 1)
        assert b0["name"] in text(driver, f"bld-{b0['id']}-name")
    for i0, i1 in zip(before_c["items"], after_c["items"], strict=True):
        between(i0["ytd"], shown[f"gauge-{i0['key']}-ytd"], i1["ytd"], 3)
        assert fmt(shown[f"gauge-{i0['key']}-target"], 3) == fmt(i1["target"], 3)
    # Live power: the total shown is the sum of the buildings shown, and it is positive.
    powers = [shown[f"bld-{b['id']}-power"] for b in after["buildings"]]
    assert shown["live-power"] is not None
    assert shown["live-power"] > 0
    assert shown["live-power"] == pytest.approx(sum(p or 0.0 for p in powers), abs=0.2)
    # What the demo does not have is shown as an honest empty state (and what it has, not).
    sections = {"alarms-empty": lambda b: b["alarms"]["active"],
                "bins-empty": lambda b: b["waste"]["bins"],
                "items-empty": lambda b: b["month"]["items"],
                "ac-empty": lambda b: b["month"]["ac"]["units"]}
    for testid, content in sections.items():
        if bool(content(before)) == bool(content(after)):
            assert exists(driver, testid) == (not content(after)), testid
    assert text(driver, "edge-edge-1-state") == "在线"
    # The demo configures a tariff: the month's cost is a figure, not "—" (central/cost.py).
    assert after["cost"] is not None
    assert after["cost"]["configured"]
    assert text(driver, "cost-month") not in ("", "—")
    # The demo uploads to its own test platform: the 上传状态 panel lists its buildings.
    for building in ("teaching", "dormitory", "admin"):
        wait_for(driver, f"document.querySelector('[data-testid=upload-{building}-backlog]')",
                 timeout=60)
    assert driver.find_element(By.ID, "upload-section").is_displayed()
    # 同比 and the 14th FYP card (docs/comparisons.md): February 2026 has no data in the
    # demo, so the page shows 2025 (the demo's bills) against 2024 and against 2020.
    wait_for(driver, "document.querySelector('[data-testid=fyp-kgce_per_m2]')", timeout=60)
    year = api(base, "/api/v1/institutions/demo-school/comparisons?period=year", token)
    assert year["current"]["first_day"] == "2025-01-01"
    yoy = {x["figure"]: x for x in year["year_on_year"]["lines"]}["electricity_kwh"]
    assert yoy["change"] < 0
    assert text(driver, "yoy-electricity_kwh") == f"↓ {yoy['change'] * 100:.1f}%"
    assert driver.find_element(By.CSS_SELECTOR, '[data-testid="fyp-kgce_per_m2"]'
                               ).get_attribute("data-status") == "on_track"

    # The sparkline refreshes on its own.
    live_as_of = driver.find_element(By.ID, "main").get_attribute("data-live-as-of")
    wait_for(driver, f"document.getElementById('main').dataset.liveAsOf !== '{live_as_of}'",
             timeout=15)
    assert int(driver.find_element(By.CSS_SELECTOR, '[data-testid="sparkline"]')
               .get_attribute("data-points") or 0) >= 2

    only_same_origin(driver, base)
    screenshot(driver, "demo-desktop-zh", DESKTOP)
    switch_to_english(driver)
    assert text(driver, "edge-edge-1-state") == "online"
    driver.refresh()  # the choice is remembered
    wait_for(driver, "document.getElementById('main').dataset.state === 'ready'")
    assert driver.execute_script("return document.documentElement.lang") == "en"
    screenshot(driver, "demo-desktop-en", DESKTOP)
    driver.set_window_size(*PHONE)
    no_horizontal_overflow(driver)
    screenshot(driver, "demo-phone-en", PHONE)
    assert console_errors(driver) == []


# -- against fixed figures, with a token check ------------------------------------------


@pytest.fixture
def fixed(tmp_path: Path) -> Iterator[str]:
    """The central's app over `populate_dashboard`'s store on a frozen clock, with the real
    bearer check: a viewer token for the institution is in the module's `TOKENS`."""
    store = Store(tmp_path / "central.sqlite")
    FIXED_DB[:] = [tmp_path / "central.sqlite"]
    ledger = SqliteLedger(":memory:")
    populate_dashboard(store, ledger)
    audit_a_switch_off(store)
    auth = authenticator()
    # With the shipped sample tariff, so the month's cost card shows a figure.
    priced = {**DASHBOARD_INSTITUTION, "tariff": {"use": "cn-sample-general-ic"}}
    app = create_app(store, [Tenant(parse_institution({**priced, **SAVINGS_INSTITUTION_EXTRA}),
                                    load_profile("national"), ledger)],
                     VirtualClock(NOW), auth, IngestStats(received=3, stored_records=25,
                                                          connected=True))
    TOKENS["viewer"] = bearer(auth, "viewer", ["demo-school"])["Authorization"].split()[1]
    app.state.notifier = notified_leak(tmp_path)
    app.state.upload_database = tmp_path / "central.sqlite"  # no uploader has run yet

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, name="dashboard-http", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        store.close()
        ledger.close()


# The AC's rated power, so the rule's switch-off has an estimate (docs/savings.md).
SAVINGS_INSTITUTION_EXTRA = {"savings": {
    "loads": [{"edge": "edge-1", "device": "ac-1", "rated_w": 1600}]}}


def audit_a_switch_off(store: Store) -> None:
    """A vacancy switch-off of the AC at 12:00: 规则节约（估算） shows it."""
    stream = StreamId("edge-1", 1)
    after = store.watermark(stream)
    store.store_batch(Batch(stream, after, int(NOW * 1000), True, (Event(
        after + 1, int(NOW * 1000) - 3 * 3_600_000, "audit.write", Severity.INFO, "ac-1",
        {"rule": "vacancy", "source": "rule", "reason": "zone empty", "point": "on",
         "before": True, "after": False, "dry_run": False}),)), "site-1", now=NOW - 5)


def notified_leak(tmp_path: Path) -> Notifier:
    """A notifier whose open leak went out to a (fake) channel: the page shows 已通知."""
    notifier = Notifier(parse_notify({
        "channels": {"ops": {"kind": "webhook", "url": {"env": "UNUSED"}}},
        "institutions": {"demo-school": {"routes": [
            {"name": "all", "stages": [{"recipients": ["ops"]}]}]}}}),
        {"ops": FakeChannel("ops")}, NotifyQueue(tmp_path / "notify.sqlite"),
        VirtualClock(NOW), link_secret=b"k" * 32)
    notifier.observe([AlarmSignal(institution="demo-school", edge="edge-1", device="water-1",
                                  kind="leak", state="raised", ts_ms=int(NOW * 1000) - 60_000,
                                  building="教学楼", room="101")])
    asyncio.run(notifier.deliver_due())
    return notifier


def show_upload_status(driver: WebDriver, base: str, token: str, path: Path) -> None:
    """Write an uploader state file like `greenguard upload` keeps, wait for the panel,
    and compare each row with `GET …/upload`."""
    period_ms = 15 * 60_000
    first = int(NOW * 1000) // period_ms * period_ms - 8 * period_ms
    state = UploadState(path)
    try:
        for building in ("teaching", "admin"):
            state.init_cursor(building, first)
        for k in range(3):
            state.accept("teaching", first + k * period_ms, f"d{k}", int(NOW * 1000),
                         period_ms, "continuous", f"seq {k}")
        state.set_backlog("teaching", 2, int(NOW * 1000))
        state.log(int(NOW * 1000), "admin", first, "continuous", "refused",
                  "data continuous refused: ack 'FAIL'")
        state.set_backlog("admin", 5, int(NOW * 1000))
    finally:
        state.close()
    wait_for(driver, "document.getElementById('upload-section').dataset.configured === 'true'",
             timeout=60)
    assert driver.find_element(By.ID, "upload-section").is_displayed()
    status = api(base, "/api/v1/institutions/demo-school/upload", token)
    assert {b["building"] for b in status["buildings"]} == {"teaching", "admin"}
    for b in status["buildings"]:
        assert text(driver, f"upload-{b['building']}-backlog") == str(b["backlog"])
    assert text(driver, "upload-teaching-last") != "尚未上传"
    assert text(driver, "upload-teaching-error") == "无"
    assert text(driver, "upload-admin-last") == "尚未上传"
    assert text(driver, "upload-admin-error").startswith("continuous refused")
    assert "ack 'FAIL'" in text(driver, "upload-admin-error")


def test_dashboard_fixed_figures_sign_in_and_phone(fixed: str, browser: Browser) -> None:
    driver = browser()
    TOKEN = TOKENS["viewer"]  # noqa: N806 - the fixture's token, named like the old constant
    # No token: the "token needed" state, no figures.
    driver.get(f"{fixed}/")
    wait_for(driver, "document.getElementById('main').dataset.state === 'auth'")
    assert driver.find_element(By.CSS_SELECTOR, '[data-testid="auth-needed"]').is_displayed()
    assert not driver.find_element(By.ID, "content").is_displayed()
    assert "#token=" in driver.find_element(By.ID, "auth-text").text
    # The sign-in box: a token pasted by hand opens the page as the link does.
    box = driver.find_element(By.CSS_SELECTOR, '[data-testid="token-input"]')
    assert box.is_displayed()
    box.send_keys(TOKEN)
    driver.find_element(By.ID, "token-use").click()
    wait_for(driver, "document.getElementById('main').dataset.state === 'ready'")
    assert driver.execute_script("return localStorage.getItem('gg_token')") == TOKEN
    driver.execute_script("localStorage.removeItem('gg_token')")

    driver.get(f"{fixed}/#token={TOKEN}")
    wait_for(driver, "document.getElementById('main').dataset.state === 'ready'")
    wait_for(driver, "document.querySelector('[data-testid=sparkline]')")
    assert driver.current_url == f"{fixed}/"
    board = api(fixed, "/api/v1/institutions/demo-school/dashboard", TOKEN)
    compliance = api(fixed, "/api/v1/institutions/demo-school/compliance", TOKEN)
    live = api(fixed, "/api/v1/institutions/demo-school/dashboard/live", TOKEN)

    for item in compliance["items"]:
        for part, digits in (("ytd", 3), ("projected", 3), ("target", 3), ("points", 1)):
            assert text(driver, f"gauge-{item['key']}-{part}") == fmt(item[part], digits)
    assert text(driver, "score") == fmt(compliance["score"], 1)
    if compliance["score"] is None:  # too little data: said, not scored
        assert text(driver, "score-note") == "数据不足，暂不预测"
    assert text(driver, "coverage") == compliance["coverage"]["text_zh"]
    assert text(driver, "coverage").startswith("数据覆盖 ")
    assert text(driver, "energy-kgce") == fmt(compliance["energy_kgce"], 1)
    assert text(driver, "live-power") == fmt(live["power_w"] / 1000, 1) == "20.0"
    assert text(driver, "today-kwh") == fmt(board["energy_kwh_today"], 1)
    assert text(driver, "today-water") == fmt(board["water_m3_today"], 2)
    # The month's cost card (central/cost.py): the API's figure.
    assert board["cost"]["total_yuan"] > 0
    assert text(driver, "cost-month") == fmt(board["cost"]["total_yuan"], 2)
    for b in board["buildings"]:
        assert text(driver, f"bld-{b['id']}-today") == fmt(b["energy_kwh_today"], 1)
        assert text(driver, f"bld-{b['id']}-month") == fmt(b["energy_kwh_month"], 1)
    for i in board["month"]["items"]:
        assert text(driver, f"item-{i['code']}") == fmt(i["kwh"], 1)
    assert text(driver, "ac-share") == fmt(board["month"]["ac"]["share"] * 100, 1) == "75.0"
    assert text(driver, "after-hours-kwh") == fmt(board["month"]["after_hours"]
                                                  ["after_hours_kwh"], 1)
    co2 = board["carbon"]  # the 碳排放 section: the central's figures, "—" without data
    shown: dict[str, str] = dict(driver.execute_script(  # one script: no re-render between
        "const out = {};"
        "for (const id of arguments[0]) {"
        "  out[id] = document.querySelector(`[data-testid=\"${id}\"]`).textContent.trim(); }"
        "return out;", ["co2-month", "co2-ytd", "co2-per-m2", "co2-per-person", "carbon"]))
    for testid, value, digits in (("co2-month", co2["month"]["t_co2"], 2),
                                  ("co2-ytd", co2["ytd"]["t_co2"], 2),
                                  ("co2-per-m2", co2["ytd"]["kg_co2_per_m2"], 3),
                                  ("co2-per-person", co2["ytd"]["kg_co2_per_person"], 2)):
        assert shown[testid] == fmt(value, digits), testid
    assert co2["ytd"]["t_co2"] is not None
    assert "电力 0.5306 kgCO₂/kWh (全国, 2023-01-01 起)" in shown["carbon"]
    # The leak and a bin alarm raised a month ago and never cleared (central/alarms.py).
    assert text(driver, "alarms-count") == "2"
    alarm = driver.find_element(By.CSS_SELECTOR, '[data-testid="alarm"]')  # the newest
    assert alarm.get_attribute("data-kind") == "leak"
    assert "疑似漏水" in alarm.text
    wait_for(driver, "document.querySelector('[data-testid=notice]')")
    notice = driver.find_element(By.CSS_SELECTOR, '[data-testid="notice"]')
    assert notice.get_attribute("data-state") == "notified"
    assert "已通知" in notice.text
    assert "教学楼 101" in notice.text
    assert text(driver, "bin-bin-1") == "85"
    # No uploader has run: the 上传状态 panel stays hidden.
    wait_for(driver, "document.getElementById('upload-section').dataset.configured === 'false'")
    assert not driver.find_element(By.ID, "upload-section").is_displayed()
    assert text(driver, "clearances-count") == "2"
    # 规则节约（估算）: the month's estimate per rule, as `…/savings` says.
    wait_for(driver, "document.querySelector('[data-testid=savings-vacancy]')")
    savings = api(fixed, "/api/v1/institutions/demo-school/savings?period=2025-07", TOKEN)
    assert text(driver, "savings-vacancy-kwh") == fmt(savings["per_rule"]["vacancy"]["kwh"], 1)
    assert text(driver, "savings-total-kwh") == fmt(savings["total"]["kwh"], 1) == "8.8"
    assert text(driver, "edge-edge-1-state") == "在线"
    # No birth seen, but heard from 20 s ago: online, as `/edges` says (central/edgehealth.py).
    assert text(driver, "edge-edge-2-state") == "在线"
    # The ingest counters say what they count: a tooltip each and a help page.
    stored = driver.find_element(By.CSS_SELECTOR, '[data-testid="ingest-stored"]')
    assert stored.text == "新存记录 25"
    assert "新写入数据库的记录数" in (stored.get_attribute("title") or "")
    help_url = driver.find_element(By.CSS_SELECTOR, '[data-testid="ingest-help"]'
                                   ).get_attribute("href") or ""
    with urllib.request.urlopen(help_url, timeout=30) as r:
        assert "已经存过的记录再次到达" in r.read().decode()
    assert int(driver.find_element(By.CSS_SELECTOR, '[data-testid="sparkline"]')
               .get_attribute("data-points") or 0) == sum(
        1 for p in live["series"] if p["power_w"] is not None)
    only_same_origin(driver, fixed)
    # Every chart is an image with its figure in words; every control has a name.
    unlabelled = driver.execute_script(
        "return [...document.querySelectorAll('svg')].filter(s => s.getAttribute('role') !== "
        "'img' || !s.getAttribute('aria-label')).length")
    assert unlabelled == 0
    assert driver.execute_script("return document.documentElement.lang") == "zh-CN"
    assert all(b.text.strip() for b in driver.find_elements(By.TAG_NAME, "button")
               if b.is_displayed())
    screenshot(driver, "fixed-desktop-zh", DESKTOP)

    # The uploader's state file appears (one building accepted, one refused): the next poll
    # shows the panel with the API's figures.
    show_upload_status(driver, fixed, TOKEN, upload_state_path(FIXED_DB[0], "demo-school"))

    switch_to_english(driver)
    assert "Possible leak" in driver.find_element(By.CSS_SELECTOR, '[data-testid="alarm"]').text
    assert text(driver, "edge-edge-2-state") == "online"
    driver.set_window_size(*PHONE)
    no_horizontal_overflow(driver)
    screenshot(driver, "fixed-phone-en", PHONE)
    driver.set_window_size(*DESKTOP)

    # A refused token: the "rejected" state, and forgetting it.
    driver.get(f"{fixed}/#token=revoked")
    wait_for(driver, "document.getElementById('main').dataset.state === 'auth'")
    assert "refused" in driver.find_element(By.ID, "auth-text").text  # still in English
    driver.find_element(By.ID, "forget").click()
    assert driver.execute_script("return localStorage.getItem('gg_token')") is None
    assert "#token=" in driver.find_element(By.ID, "auth-text").text
    assert console_errors(driver) == []


def test_the_page_loads_nothing_from_elsewhere(fixed: str) -> None:
    """The shell carries no data and forbids other origins (no browser needed)."""
    with urllib.request.urlopen(f"{fixed}/", timeout=10) as r:
        page = r.read().decode()
        csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "connect-src 'self'" in csp
    assert "示范中学" not in page  # the institution's name comes with the data
    for asset in ("dashboard.js", "dashboard.css", "icon.svg"):
        with urllib.request.urlopen(f"{fixed}/assets/{asset}", timeout=10) as r:
            body = r.read().decode()
        assert "http://" not in body.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in body
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{fixed}/assets/..%2Fapi.py", timeout=10)
    assert refused.value.code == 404
    refused.value.close()



def test_api_docs_render_without_other_origins(fixed: str, browser: Browser) -> None:
    """/docs and /redoc on a closed network: they render, and every resource the browser
    fetched came from the central."""
    driver = browser()
    driver.get(f"{fixed}/docs")
    wait_for(driver, "document.querySelectorAll('.opblock').length > 0")
    only_same_origin(driver, fixed)
    driver.get(f"{fixed}/redoc")
    wait_for(driver, "document.querySelectorAll('[data-section-id]').length > 0")
    only_same_origin(driver, fixed)
    assert console_errors(driver) == []
