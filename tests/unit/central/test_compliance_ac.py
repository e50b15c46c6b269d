"""AC setpoint compliance judges only running time."""

from __future__ import annotations

from central.metrics import ac_compliance
from tests.unit.central.central_helpers import local_ms


def test_ac_switched_off_in_cool_mode_is_not_judged() -> None:
    """Regression: a unit switched off with mode cool and 24 °C counted as non-compliant
    running time; the on point now decides whether it runs."""
    t0 = local_ms(2025, 7, 1, 8, 0)
    half = 1_800_000
    setpoints = [(t0 + i * half, 24.0) for i in range(4)]
    modes = [(t0 + i * half, "cool") for i in range(4)]
    ons = [(t0 + i * half, i < 1) for i in range(4)]  # on for the first 30 min only
    r = ac_compliance({"ac-101": (setpoints, modes, ons)}, t0, t0 + 4 * half,
                      summer_min=26.0, winter_max=20.0, cooling=["cool"], heating=["heat"],
                      max_hold_ms=half, units=1, exempt=0)
    assert (r.judged_s, r.compliant_s) == (1800.0, 0.0)
    # Without on samples the mode alone decides, as before.
    r = ac_compliance({"ac-101": (setpoints, modes, [])}, t0, t0 + 4 * half,
                      summer_min=26.0, winter_max=20.0, cooling=["cool"], heating=["heat"],
                      max_hold_ms=half, units=1, exempt=0)
    assert r.judged_s == 4 * 1800.0
