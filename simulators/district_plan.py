"""A district of institutions, generated from a seed: the institution files the central
serves and what each institution's lean edge publishes (`simulators.district`).

Deterministic: the same seed and size give the same institutions, buildings, meters,
calendars and load levels, so a run can be repeated and a failing institution found again.
Types are schools (primary, middle; with vacations as days off) and government offices
(agencies); each institution lies in one of a city's districts with its 行政区划代码.
Every edge signs its uplink (`edge_keys`), as a hardened production edge does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from protocols.signing import generate_private_key_pem, public_key_text

# A prefecture-level city's districts (Wenzhou's, as in seed 001's logistics plan).
DISTRICTS: tuple[tuple[str, str], ...] = (
    ("鹿城区", "330302"), ("龙湾区", "330303"), ("瓯海区", "330304"), ("洞头区", "330305"),
    ("瑞安市", "330381"), ("乐清市", "330382"))
KINDS: tuple[tuple[str, str, float], ...] = (  # (type, name suffix, share)
    ("school", "小学", 0.45), ("school", "中学", 0.25), ("agency", "机关", 0.30))
POLL_S = 60  # a meter read once a minute, as the edges are configured in the field
INTERVAL_S = 900  # quarter-hour interval records, the central's accounting grain


@dataclass(frozen=True, slots=True)
class SimMeter:
    device: str
    building: str
    energy: str  # electricity | water
    base: float  # kW (electricity) or m³/h (water) outside working hours
    peak: float  # the same during working hours of a working day


@dataclass(frozen=True, slots=True)
class SimInstitution:
    id: str
    name: str
    type: str
    district: str
    region_code: str
    edge: str
    key_pem: bytes  # the edge's uplink signing key
    meters: tuple[SimMeter, ...]
    config: dict[str, Any]  # the institution file, as the central reads it
    leak_at: float | None  # fraction of the run at which a leak alarm is raised, if any


def _vacations(year: int) -> list[date]:
    """Winter and summer vacation days of a school (a working day off for the school)."""
    spans = ((date(year, 1, 20), date(year, 2, 17)), (date(year, 7, 5), date(year, 8, 31)))
    return [a + timedelta(days=i) for a, b in spans for i in range((b - a).days + 1)]


def plan_district(count: int, *, seed: int = 1, year: int | None = None
                  ) -> list[SimInstitution]:
    """`count` institutions, ids `d001-…`; `year` sets the targets' and vacations' year."""
    if count < 1:
        raise ValueError(f"institutions: {count} (must be ≥ 1)")
    rnd = random.Random(seed)
    year = year if year is not None else date.today().year
    out = []
    for n in range(1, count + 1):
        kind, suffix, _ = rnd.choices(KINDS, weights=[k[2] for k in KINDS])[0]
        district, region = DISTRICTS[rnd.randrange(len(DISTRICTS))]
        iid = f"d{n:03d}-{kind}"
        edge = f"edge-{iid}"
        name = f"{district}第{n}{suffix}"
        school = kind == "school"
        buildings: list[dict[str, Any]] = []
        meters = []
        areas: list[float] = []
        for b in range(1, rnd.randint(1, 3) + 1):
            bid = f"b{b}"
            area = round(rnd.uniform(2500, 12000) if school else rnd.uniform(1500, 9000))
            areas.append(area)
            buildings.append({"id": bid, "name": f"{b}号楼", "floor_area_m2": area})
            kw = area * rnd.uniform(0.004, 0.009)  # working-hours demand, kW
            meters.append(SimMeter(f"{bid}-elec", bid, "electricity", round(kw * 0.2, 2),
                                   round(kw, 2)))
            if b == 1:
                meters.append(SimMeter(f"{bid}-water", bid, "water", 0.05,
                                       round(area * rnd.uniform(0.0003, 0.0008), 3)))
        staff = rnd.randint(40, 160) if school else rnd.randint(60, 400)
        students = float(rnd.randint(300, 2400)) if school else 0.0
        people = staff + students
        area_sum = sum(areas)
        key = generate_private_key_pem()
        config: dict[str, Any] = {
            "institution": {"id": iid, "name": name,
                            "type": "school" if school else "agency",
                            "timezone": "Asia/Shanghai", "coefficient_profile": "national",
                            "region_code": region, "district": district},
            "buildings": buildings,
            "headcount": {"staff": staff, "students_daily_avg": students},
            "targets": {year: {
                "kgce_per_m2": round(rnd.uniform(4.0, 9.0) if school
                                     else rnd.uniform(7.0, 14.0), 2),
                "kgce_per_person": round(rnd.uniform(60, 120) * area_sum / people / 100, 2),
                "water_m3_per_person": round(rnd.uniform(8, 20) if school
                                             else rnd.uniform(12, 30), 2)}},
            "meters": [{"edge": edge, "device": m.device, "building": m.building,
                        "energy": m.energy, "role": "main"} for m in meters],
            "working_hours": {"start": "07:30" if school else "08:30",
                              "end": "17:00" if school else "17:30"},
            "calendar": {"holidays": [d.isoformat() for d in _vacations(year)]
                         if school else []},
            "edge_keys": {edge: public_key_text(key)},
        }
        out.append(SimInstitution(
            id=iid, name=name, type=config["institution"]["type"], district=district,
            region_code=region, edge=edge, key_pem=key, meters=tuple(meters), config=config,
            leak_at=rnd.uniform(0.1, 0.6) if rnd.random() < 0.1 else None))
    return out
