"""The system programs some tests need, found in one place, and the one policy for their absence.

A bare machine with nothing but Python passes `make test`: a test that needs a missing
component skips, and the run ends with one line naming them all and `make system-deps`, which
installs them. Under CI=true (.ci/run installs everything) a missing component fails the test.

GREENGUARD_TEST_WITHOUT=mosquitto,chromium (or `all`) hides installed components, to try the
bare-machine path (the embedded amqtt broker, the skips) on a machine that has them.
"""

from __future__ import annotations

import glob
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest


def _which(*names: str, also: tuple[str, ...] = ()) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return next((p for p in also if Path(p).exists()), None)


def _postgres() -> str | None:
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                         key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit()
                         else 0, reverse=True):
        if Path(bindir, "initdb").exists() and Path(bindir, "pg_ctl").exists():
            return bindir
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return str(Path(os.path.realpath(initdb)).parent)
    return None


def _chromium() -> str | None:
    browser = _which("chromium", "chromium-browser")
    driver = _which("chromedriver", also=("/usr/lib/chromium/chromedriver",))
    return browser if browser and driver else None


def _poppler() -> str | None:
    return _which("pdftoppm") if _which("pdftotext") else None


@dataclass(frozen=True)
class Component:
    name: str
    debian: tuple[str, ...]  # the packages `make system-deps` installs for it
    find: Callable[[], str | None]


COMPONENTS: dict[str, Component] = {c.name: c for c in (
    Component("mosquitto", ("mosquitto",),
              lambda: _which("mosquitto", also=("/usr/sbin/mosquitto",))),
    Component("mosquitto-clients", ("mosquitto-clients",), lambda: _which("mosquitto_sub")),
    Component("chromium", ("chromium", "chromium-driver"), _chromium),
    Component("poppler-utils", ("poppler-utils",), _poppler),
    Component("postgresql", ("postgresql",), _postgres),
    Component("victoria-metrics", ("victoria-metrics",),
              lambda: _which("victoria-metrics", also=("/usr/bin/victoria-metrics",))),
    Component("systemd-analyze", ("systemd",), lambda: _which("systemd-analyze")),
    Component("influxdb", ("influxdb",),
              lambda: _which("influxd", also=("/usr/bin/influxd",))),
)}

SKIP_PREFIX = "system component missing: "


def hidden() -> set[str]:
    names = {n.strip() for n in os.environ.get("GREENGUARD_TEST_WITHOUT", "").split(",")}
    return set(COMPONENTS) if "all" in names else names & set(COMPONENTS)


def find(name: str) -> str | None:
    """Path of the component's program (a directory for postgresql), or None when absent."""
    if name in hidden():
        return None
    return COMPONENTS[name].find()


def require(name: str) -> str:
    """The component's path; skips the test when it is absent, fails it under CI=true."""
    found = find(name)
    if found is not None:
        return found
    packages = " ".join(COMPONENTS[name].debian)
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} is not installed; .ci/run (make system-deps) must install "
                    f"Debian's {packages}")
    pytest.skip(f"{SKIP_PREFIX}{name}")


def missing_component(report: pytest.TestReport) -> str | None:
    """The component a skipped test's report names, if it was skipped by `require`."""
    if not report.skipped or not isinstance(report.longrepr, tuple):
        return None
    reason = str(report.longrepr[2])
    if reason.startswith("Skipped: "):
        reason = reason[len("Skipped: "):]
    return reason[len(SKIP_PREFIX):] if reason.startswith(SKIP_PREFIX) else None
