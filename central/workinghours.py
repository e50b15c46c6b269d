"""Working hours: one definition per institution and zone, read by every figure that splits
time into working time and the rest, and handed to the edge's rules.

Before this module the central's after-hours figures and the dashboard used the national
default (08:00–18:00, central/codes/policy.yaml) while the demo's edge rules switched AC
units off after 17:30: two definitions that disagreed. Now the institution config's
`working_hours` (optionally per zone) is the one source:

- the central's after-hours share, standby waste and the dashboard read `hours_for`;
- the edge's `calendar:` section (edge/rules/calendar.py) is `edge_calendar(institution)`,
  written into edge.yaml by the demo and printed for operators by
  `greenguard central edge-calendar` (docs/rules.md).

Without `working_hours` in the institution config the policy default applies everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from central import codes
from central.errors import ConfigError
from central.institution import InstitutionConfig


@dataclass(frozen=True)
class Hours:
    """A working window in minutes after local midnight."""

    start: str  # HH:MM
    end: str  # HH:MM, 24:00 at the latest

    @property
    def minutes(self) -> tuple[int, int]:
        return (int(self.start[:2]) * 60 + int(self.start[3:]),
                int(self.end[:2]) * 60 + int(self.end[3:]))

    @property
    def label(self) -> str:
        return f"{self.start}–{self.end}"

    @property
    def edge_text(self) -> str:
        """The edge config's spelling: `08:00-17:30`."""
        return f"{self.start}-{self.end}"


def hours_for(institution: InstitutionConfig, zone: str | None = None) -> Hours:
    """The working hours of a zone (a meter's or AC unit's `zone`), else the institution's,
    else the policy default."""
    cfg = institution.working_hours
    if cfg is None:
        default = codes.policy().working_hours
        return Hours(default.start, default.end)
    span = cfg.zones.get(zone) if zone is not None else None
    return Hours(span.start, span.end) if span is not None else Hours(cfg.start, cfg.end)


def edge_calendar(institution: InstitutionConfig) -> dict[str, Any]:
    """The `calendar:` section of the institution's edge.yaml: its time zone, working hours
    (per zone where they differ) and the operator's calendar edits, so that the edge's
    after-hours rules and the central's figures use the same working time."""
    base = hours_for(institution)
    zones = {z: {"working_hours": Hours(s.start, s.end).edge_text}
             for z, s in sorted(institution.working_hours.zones.items()
                                 if institution.working_hours else [])}
    doc: dict[str, Any] = {"timezone": institution.institution.timezone,
                           "working_hours": base.edge_text}
    if zones:
        doc["zones"] = zones
    if institution.calendar.workdays:
        doc["workdays"] = [d.isoformat() for d in institution.calendar.workdays]
    if institution.calendar.holidays:
        doc["holidays"] = [d.isoformat() for d in institution.calendar.holidays]
    return doc


def edge_calendar_yaml(institutions: Sequence[InstitutionConfig],
                       wanted: Sequence[str] | None = None) -> str:
    """`greenguard central edge-calendar`: each institution's `calendar:` section as YAML
    to paste into its edges' edge.yaml; `wanted` picks institutions by id."""
    ids = [i.institution.id for i in institutions]
    unknown = [w for w in wanted or () if w not in ids]
    if unknown:
        raise ConfigError("arguments", [("--institution", unknown[0],
                                         f"not one of {', '.join(ids)}")])
    out = []
    for inst in institutions:
        if wanted and inst.institution.id not in wanted:
            continue
        out.append(f"# {inst.institution.id}: the edge.yaml `calendar:` section "
                   "(greenguard central edge-calendar)\n"
                   + yaml.safe_dump({"calendar": edge_calendar(inst)}, allow_unicode=True,
                                    sort_keys=False))
    return "\n".join(out)
