"""The configuration files a scenario implies: the edge's `edge.yaml` and the central's
`institution.yaml`. The demo writes them out so that what runs is exactly what a user would
write by hand (docs/configuration.md shows the same files)."""

from __future__ import annotations

from typing import Any

from central.institution import parse_institution
from central.workinghours import edge_calendar
from simulators.classrooms import AC_MODEL, WORKING_HOURS, vacation_days
from simulators.scenario import MeterKind, Scenario

EDGE_ID = "edge-1"


def edge_config(scenario: Scenario, *, modbus_host: str, modbus_port: int, mqtt_host: str,
                mqtt_port: int, poll_interval_s: float = 60.0, interval_s: int = 900,
                mqtt_protocol: str = "5", ac_port: int | None = None,
                central_public_key: str | None = None, mqtt_username: str | None = None,
                mqtt_password: str | None = None) -> dict[str, Any]:
    """One edge reading every meter of the scenario through one Modbus TCP gateway. With
    `ac_port`, also the scenario's AC units through a second gateway on that port, and the
    local rules that clamp their setpoints and switch them off after hours (the demo);
    without it, the meters only (`greenguard sim` serves no AC units). With
    `central_public_key`, the edge acts only on acks and commands the central signed; with
    `mqtt_username`/`mqtt_password`, it logs in to a broker that refuses anonymous clients."""
    doc: dict[str, Any] = {
        "edge_id": EDGE_ID,
        "site": scenario.institution.id,
        "interval_s": interval_s,
        "mqtt": {"host": mqtt_host, "port": mqtt_port, "protocol": mqtt_protocol,
                 **({"username": mqtt_username, "password": mqtt_password}
                    if mqtt_username is not None else {}),
                 **({"central_public_key": central_public_key}
                    if central_public_key is not None else {})},
        "outbox": {"path": "outbox.sqlite"},
        "devices": [
            {
                "id": meter.id,
                "driver": "modbus_tcp",
                "host": modbus_host,
                "port": modbus_port,
                "device_id": meter.device_id,
                "model": meter.model,
                "poll_interval_s": poll_interval_s,
                "timeout_s": min(2.0, poll_interval_s / 2),
                "building": meter.building,
            }
            for meter in scenario.meters
        ],
    }
    if not scenario.ac_units or ac_port is None:
        return doc
    doc["devices"] += [
        {
            "id": ac.id,
            "driver": "modbus_tcp",
            "host": modbus_host,
            "port": ac_port,
            "device_id": ac.device_id,
            "model": AC_MODEL,
            "poll_interval_s": poll_interval_s,
            "timeout_s": min(2.0, poll_interval_s / 2),
            "building": ac.building,
            **({"zone": ac.zone} if ac.zone else {}),
        }
        for ac in scenario.ac_units
    ]
    # The institution's one definition of working time (central/workinghours.py), so the
    # edge's after-hours rules and the central's after-hours figures agree.
    doc["calendar"] = edge_calendar(parse_institution(institution_config(scenario)))
    doc["rules"] = {
        "tick_s": poll_interval_s, "tick_offset_s": min(5.0, poll_interval_s / 4),
        "rules": [{"id": "ac-26", "type": "setpoint_limits"},
                  {"id": "after-hours", "type": "after_hours_off", "warning_min": 10}],
    }
    return doc


def institution_config(scenario: Scenario) -> dict[str, Any]:
    """The central's view: buildings, 用能人数, targets, and which meter measures what."""
    inst = scenario.institution
    start, end = WORKING_HOURS.split("-")
    return {
        "institution": {"id": inst.id, "name": inst.name, "type": inst.type.value,
                        "timezone": "Asia/Shanghai", "coefficient_profile": "national"},
        "buildings": [{"id": b.id, "name": b.name, "floor_area_m2": b.floor_area_m2}
                      for b in scenario.buildings],
        "headcount": {"staff": inst.staff, "students_daily_avg": inst.students_daily_average},
        "targets": {year: {"kgce_per_m2": t.kgce_per_m2, "kgce_per_person": t.kgce_per_person,
                           "water_m3_per_person": t.water_m3_per_person}
                    for year, t in inst.targets.items()},
        "meters": [
            {"edge": EDGE_ID, "device": meter.id, "building": meter.building,
             "energy": "electricity" if meter.kind is MeterKind.ELECTRICITY else "water",
             "role": "main"}
            for meter in scenario.meters
        ],
        "ac_units": [
            {"edge": EDGE_ID, "device": ac.id, "building": ac.building,
             **({"zone": ac.zone} if ac.zone else {})}
            for ac in scenario.ac_units
        ],
        # Working hours and the school's vacations as days off: read by the central's
        # after-hours figures and, through `edge_calendar`, by the edge's rules.
        "working_hours": {"start": start, "end": end},
        "calendar": {"holidays": [d.isoformat() for d in vacation_days(scenario)]},
    }
