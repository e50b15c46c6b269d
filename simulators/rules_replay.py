"""`greenguard rules replay`: try a rule pack on recorded data before an office approves it.

    greenguard rules replay --pack winter-18.yaml --from 2026-01-05 --to 2026-02-01 \\
        --config institution.yaml --db central.sqlite [--json]

The pack is the edge config's `rules:` section (edge/rules/config.py, docs/rules.md), with
an optional `calendar:` section (default: the institution's, `edge_calendar`). For each edge
of the institution, the central's recorded samples are replayed on a virtual clock
(`protocols.clock.VirtualClock`), one tick every `tick_s` as on the edge, through the SAME
pure `evaluate`, built-in rules and `Arbiter` as the edge (and the edge's `History` of
recent readings): nothing here re-implements a rule.

What a replayed write changes is kept as an overlay on the recording, because the recorded
samples were taken without it: a switch-off holds until the savings estimator's hold ends
(`central.savings.hold_end` in counterfactual mode: the next working start, the zone seen
occupied, the recording changing, the cap), a clamp until the unit's next write or the
recording changes. The report lists every write the pack would have made, the switch-offs
that would have hit an occupied room (the zone's recorded occupancy at the write), and the
energy avoided from the same estimator as the API's savings (central/savings.py), in kWh,
kgce, cost (the institution's `tariff:`, "—" without one) and CO₂ (its emission factors).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import json
import math
import statistics
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import ValidationError

from central.backend import open_reader
from central.config import load_settings
from central.energy import EnergyType
from central.errors import CentralError, ConfigError
from central.institution import InstitutionConfig, MeterKey, load_institutions
from central.profile import load_profile
from central.reader import scoped
from central.savings import (
    AuditWrite,
    Avoided,
    EmissionFactors,
    Kind,
    Mode,
    SavingsReport,
    Series,
    TariffBook,
    Unit,
    WorkingTime,
    estimate,
    hold_end,
    item_dict,
    pricing,
    roll_up,
    units_of,
)
from central.savingsconfig import SavingsConfig
from central.storeport import StoreReader
from central.workinghours import edge_calendar
from edge.rules.arbiter import Arbiter
from edge.rules.calendar import CalendarConfig, InstitutionCalendar
from edge.rules.config import RulesConfig
from edge.rules.engine import evaluate
from edge.rules.model import DeviceKind, DeviceView, SiteState
from edge.rules.runtime import History, history_window_s
from protocols.clock import VirtualClock
from protocols.registermap import PointValue


class ReplayError(Exception):
    """A pack, period or argument that cannot be replayed; the message names the field."""


# -- the pack ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pack:
    rules: RulesConfig
    calendar: CalendarConfig | None


def _where(exc: ValidationError, prefix: str) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(x) for x in first["loc"])
    got = f" (got {first['input']!r})" if "input" in first and not isinstance(
        first["input"], dict | list) else ""
    return f"{prefix}{'.' + loc if loc else ''}: {first['msg']}{got}"


def parse_pack(data: Any, source: str = "pack") -> Pack:
    """A pack document: `rules:` (the edge's rules section) and optionally `calendar:`."""
    if not isinstance(data, dict) or "rules" not in data:
        raise ReplayError(f"{source}: must be a mapping with a rules: section "
                          "(the edge config's), got {!r}".format(
                              type(data).__name__ if not isinstance(data, dict)
                              else sorted(data)))
    unknown = sorted(set(data) - {"rules", "calendar"})
    if unknown:
        raise ReplayError(f"{source}: unknown key {unknown[0]!r} (a pack has rules: and "
                          "optionally calendar:)")
    try:
        rules = RulesConfig.model_validate(data["rules"])
    except ValidationError as exc:
        raise ReplayError(_where(exc, f"{source}: rules")) from None
    calendar = None
    if data.get("calendar") is not None:
        try:
            calendar = CalendarConfig.model_validate(data["calendar"])
        except ValidationError as exc:
            raise ReplayError(_where(exc, f"{source}: calendar")) from None
    if not rules.enabled:
        raise ReplayError(f"{source}: rules.enabled: the pack's rules are switched off "
                          "(got false)")
    if not rules.rules:
        raise ReplayError(f"{source}: rules.rules: the pack has no rules")
    return Pack(rules, calendar)


def load_pack(path: Path) -> Pack:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReplayError(f"--pack: cannot read {path}: {exc.strerror}") from None
    except (yaml.YAMLError, ValueError) as exc:
        raise ReplayError(f"--pack: {path} is not valid YAML: {exc}") from None
    return parse_pack(data, str(path))


# -- the recording -------------------------------------------------------------------------


@dataclass
class Recorded:
    """One device of one edge as the central recorded it."""

    edge: str
    id: str
    kind: DeviceKind
    zone: str | None
    points: dict[str, Series]
    stale_s: float
    read_ts: list[float] = field(default_factory=list)  # every sample time, sorted

    def read_at(self, t: float) -> float | None:
        i = bisect.bisect_right(self.read_ts, t) - 1
        return self.read_ts[i] if i >= 0 else None


def _kind(points: Iterable[str], role: DeviceKind | None, configured: DeviceKind | None
          ) -> DeviceKind:
    if role is not None:
        return role
    if configured is not None:
        return configured
    names = set(points)
    if "occupied" in names:
        return DeviceKind.OCCUPANCY
    if "setpoint_c" in names:
        return DeviceKind.AC
    if "fill_pct" in names:
        return DeviceKind.BIN
    if "water_m3" in names or "flow_m3h" in names:
        return DeviceKind.WATER
    if "on" in names and "power_w" in names:
        return DeviceKind.PLUG
    return DeviceKind.METER


def read_recording(reader: StoreReader, institution: InstitutionConfig, pack: Pack,
                   start: float, end: float, edges: Sequence[str] | None
                   ) -> dict[str, dict[str, Recorded]]:
    """edge → device → its recorded points over [start − history, end)."""
    before = history_window_s(pack.rules) + 4 * 3600.0
    s_ms, e_ms = round((start - before) * 1000), round(end * 1000)
    keys = sorted(reader.latest_samples())
    configured: dict[tuple[str, str], DeviceKind] = {}
    for a in institution.ac_units:
        configured[(a.edge, a.device)] = DeviceKind.AC
    for p in institution.plugs:
        configured[(p.edge, p.device)] = DeviceKind.PLUG
    for o in institution.savings.occupancy:
        configured[(o.edge, o.device)] = DeviceKind.OCCUPANCY
    zones = {k: z for k, (_, z) in units_of(institution).items() if z is not None}
    zones.update({(o.edge, o.device): o.zone for o in institution.savings.occupancy})
    zones.update({(s.edge, s.device): s.zone for s in institution.savings.loads
                  if s.zone is not None})
    out: dict[str, dict[str, Recorded]] = {}
    by_device: dict[tuple[str, str], list[MeterKey]] = {}
    for key in keys:
        if edges is None or key.edge in edges:
            by_device.setdefault((key.edge, key.device), []).append(key)
    for (edge, device), dkeys in sorted(by_device.items()):
        points = {k.point: Series.from_ms(reader.sample_series(k, s_ms, e_ms)) for k in dkeys}
        points = {p: s for p, s in points.items() if s}
        if not points:
            continue
        stamps = sorted({t for s in points.values() for t in s.ts})
        gaps = [b - a for a, b in itertools.pairwise(stamps) if b > a]
        stale = pack.rules.stale_after_s or 3 * max(60.0, statistics.median(gaps) if gaps
                                                    else 600.0)
        role = pack.rules.devices.get(device)
        zone = (role.zone if role is not None and role.zone is not None
                else zones.get((edge, device)))
        kind = _kind(points, role.kind if role is not None else None,
                     configured.get((edge, device)))
        out.setdefault(edge, {})[device] = Recorded(edge, device, kind, zone, points, stale,
                                                     stamps)
    return out


def _occupancy(devices: Mapping[str, Recorded]) -> dict[str, Series]:
    """zone → occupied samples of every occupancy sensor of the zone."""
    rows: dict[str, list[tuple[float, PointValue]]] = {}
    for d in devices.values():
        if d.kind is DeviceKind.OCCUPANCY and d.zone is not None and "occupied" in d.points:
            s = d.points["occupied"]
            rows.setdefault(d.zone, []).extend((t, v is True) for t, v in zip(s.ts, s.values,
                                                                               strict=True))
    return {z: Series.of(r) for z, r in rows.items()}


# -- the replay ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayedWrite:
    write: AuditWrite
    occupied: bool | None  # a switch-off into a room its sensors saw occupied (None: unknown)


@dataclass
class Replay:
    writes: list[ReplayedWrite]
    held: int
    report: SavingsReport
    edges: list[str]
    devices: int
    ticks: int


@dataclass
class _Overlay:
    value: PointValue
    until: float
    kind: Kind | None


async def _replay_edge(edge: str, devices: Mapping[str, Recorded], pack: Pack,
                       calendar: InstitutionCalendar, hours: WorkingTime,
                       settings: SavingsConfig, clock: VirtualClock, start: float, end: float
                       ) -> tuple[list[ReplayedWrite], int, int]:
    """Tick through [start, end) on `clock` as the edge's rules runtime does."""
    cfg = pack.rules
    protected = set(cfg.protected) | {d.id for d in devices.values()
                                      if d.zone is not None and d.zone in cfg.protected_zones}
    arbiter = Arbiter(cfg.arbiter_settings(), protected)
    history = History(history_window_s(cfg), calendar.tz)
    occupancy = _occupancy(devices)
    overlay: dict[tuple[str, str], _Overlay] = {}
    writes: list[ReplayedWrite] = []
    held = ticks = 0
    tick, offset = cfg.tick_s, cfg.tick_offset_s
    # Warm the history up as a running edge would have it (not a fresh start).
    when = math.floor((start - history.keep_s - offset) / tick + 1 + 1e-9) * tick + offset
    clock.register()
    try:
        while when < end:
            await clock.sleep_until(when)
            now = clock.now()
            views: dict[str, DeviceView] = {}
            read_at: dict[str, float] = {}
            for d in devices.values():
                values: dict[str, PointValue] = {}
                for point, series in d.points.items():
                    v = series.at(now, math.inf)
                    if v is not None:
                        values[point] = v
                for (dev, point), o in list(overlay.items()):
                    if dev == d.id:
                        if o.until <= now:
                            del overlay[(dev, point)]
                        else:
                            values[point] = o.value
                seen = d.read_at(now)
                fresh = seen is not None and now - seen <= d.stale_s
                views[d.id] = DeviceView(d.id, d.kind, d.zone, values, fresh)
                if seen is not None:
                    read_at[d.id] = seen
            history.record(views, read_at, now)
            state = SiteState(views, {k: tuple(q) for k, q in history.series.items()},
                              {k: dict(n) for k, n in history.nightly.items()}, True,
                              start - history.keep_s)
            out = evaluate(cfg.rules, state, now, calendar)
            arbiter.observe(state.devices, now)
            decisions = arbiter.decide(state.devices, out.proposals, [], out.bounds, now)
            if now >= start:
                ticks += 1
                held += len(decisions.held)
            for w in decisions.writes:
                d = devices[w.device]
                audit = AuditWrite(edge, w.device, now, w.rule, w.source, w.reason, w.point,
                                   w.before, w.value, cfg.dry_run)
                kind = audit.kind
                unit = Unit(zone=d.zone, points=d.points)
                until, _ = hold_end(audit, kind, unit, occupancy.get(d.zone or ""), hours,
                                    settings, Mode.COUNTERFACTUAL, None) if kind is not None \
                    else (now + settings.max_hold_h * 3600, "cap")
                if w.point == "on" and w.value is False:  # a clamp ends at the next write
                    overlay.pop((w.device, "setpoint_c"), None)
                if not cfg.dry_run:
                    overlay[(w.device, w.point)] = _Overlay(w.value, until, kind)
                if now >= start:
                    occupied = state.occupied(d.zone) if w.point == "on" else None
                    writes.append(ReplayedWrite(audit, occupied))
            when = math.floor((max(when, clock.now()) - offset) / tick + 1 + 1e-9) * tick \
                + offset
    finally:
        clock.unregister()
    return writes, held, ticks


def replay(reader: StoreReader, institution: InstitutionConfig, pack: Pack, start: float,
           end: float, *, edges: Sequence[str] | None = None,
           tariff: TariffBook | None = None, carbon: EmissionFactors | None = None) -> Replay:
    """Replay `pack` over the institution's recorded samples in [start, end)."""
    return asyncio.run(replay_async(reader, institution, pack, start, end, edges=edges,
                                    tariff=tariff, carbon=carbon))


async def replay_async(reader: StoreReader, institution: InstitutionConfig, pack: Pack,
                       start: float, end: float, *, edges: Sequence[str] | None = None,
                       tariff: TariffBook | None = None,
                       carbon: EmissionFactors | None = None) -> Replay:
    """`replay` inside a running event loop (each edge on its own virtual clock)."""
    if end <= start:
        raise ReplayError(f"--to: must be after --from, got {end - start:+.0f} s")
    calendar = (pack.calendar or CalendarConfig.model_validate(edge_calendar(institution))
                ).build()
    hours = WorkingTime.of(institution)
    settings = institution.savings
    recording = read_recording(scoped(reader, institution), institution, pack, start, end,
                               edges)
    if not recording:
        raise ReplayError("no recorded samples for the institution's edges"
                          + (f" {', '.join(edges)}" if edges else "") + " in the period")
    results = []
    for edge, devices in recording.items():
        clock = VirtualClock(start - history_window_s(pack.rules) - 2 * pack.rules.tick_s)
        task = asyncio.create_task(_replay_edge(edge, devices, pack, calendar, hours,
                                                settings, clock, start, end))
        runner = asyncio.create_task(clock.run(until=end))
        results.append(await task)
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    writes = [w for r in results for w in r[0]]
    units: dict[tuple[str, str], Unit] = {}
    placed = units_of(institution)
    plugs = {(p.edge, p.device): p.power_point for p in institution.plugs}
    for edge, devices in recording.items():
        for d in devices.values():
            source = settings.load_of(edge, d.id)
            meter = devices.get(source.meter) if source.meter is not None else d
            point = source.point if source.meter is not None else plugs.get(
                (edge, d.id), source.point)
            load = meter.points.get(point) if meter is not None else None
            units[(edge, d.id)] = Unit(placed.get((edge, d.id), (None, None))[0], d.zone,
                                       load, source.rated_w, d.points)
    occupancy = {(edge, z): s for edge, devices in recording.items()
                 for z, s in _occupancy(devices).items()}
    items = estimate([w.write for w in writes], units, occupancy, hours, settings,
                     Mode.COUNTERFACTUAL)
    profile = load_profile(institution.institution.coefficient_profile)
    own_tariff, own_carbon = pricing(institution)  # the institution's tariff and factors
    tariff = tariff or own_tariff
    carbon = carbon or own_carbon
    report = roll_up(items, kgce_per_kwh=profile.kgce_per_unit(EnergyType.ELECTRICITY, "kWh"),
                     tz=institution.institution.tz, tariff=tariff, carbon=carbon)
    return Replay(writes, sum(r[1] for r in results), report, sorted(recording),
                  sum(len(d) for d in recording.values()), sum(r[2] for r in results))


# -- output --------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def as_json(result: Replay, tz: ZoneInfo) -> dict[str, Any]:
    by_write = {id(a.write): a for a in result.report.items}
    rows = []
    for rw in result.writes:
        a: Avoided | None = by_write.get(id(rw.write))
        w = rw.write
        rows.append({"time": datetime.fromtimestamp(w.ts, tz).isoformat(), "edge": w.edge,
                     "device": w.device, "rule": w.rule, "point": w.point,
                     "before": w.before, "after": w.after, "reason": w.reason,
                     "occupied": rw.occupied,
                     "estimate": None if a is None else item_dict(a)})
    return {"edges": result.edges, "devices": result.devices, "ticks": result.ticks,
            "held": result.held, "writes": rows,
            "occupied_switch_offs": sum(1 for w in result.writes if w.occupied is True),
            "savings": result.report.as_dict()}


def as_table(result: Replay, tz: ZoneInfo) -> str:
    lines = [f"replayed {result.ticks} ticks over {result.devices} devices of edge(s) "
             f"{', '.join(result.edges)}; {len(result.writes)} writes, {result.held} held",
             "", f"{'time':<17} {'edge/device':<24} {'rule':<14} {'write':<22} occupied  "
             "est. kWh"]
    by_write = {id(a.write): a for a in result.report.items}
    for rw in result.writes:
        w = rw.write
        a = by_write.get(id(w))
        occ = {True: "YES", False: "no", None: "—"}[rw.occupied]
        lines.append(f"{datetime.fromtimestamp(w.ts, tz):%Y-%m-%d %H:%M} "
                     f"{w.edge + '/' + w.device:<24} {w.rule:<14} "
                     f"{f'{w.point} {w.before}→{w.after}':<22} {occ:<9} "
                     f"{_fmt(a.kwh if a else None, 2)}")
    hits = sum(1 for w in result.writes if w.occupied is True)
    lines += ["", f"switch-offs into occupied rooms: {hits}", "",
              "estimated savings (估算, docs/savings.md):",
              f"{'rule':<18} {'writes':>6} {'kWh':>10} {'kgce':>10} {'cost':>10} "
              f"{'CO₂ kg':>10}"]
    report = result.report
    for name, t in [*sorted(report.per_rule.items()), ("total", report.total)]:
        some = t.estimated > 0
        lines.append(f"{name:<18} {t.writes:>6} {_fmt(t.kwh if some else None):>10} "
                     f"{_fmt(t.kgce if some else None, 2):>10} {_fmt(t.cost, 2):>10} "
                     f"{_fmt(t.co2_kg):>10}")
    if report.total.without_load:
        lines.append(f"({report.total.without_load} writes without a measured or rated "
                     "load: no figure)")
    if report.dry_run.writes:
        lines.append(f"(the pack is dry_run: {report.dry_run.writes} writes, not in totals)")
    return "\n".join(lines) + "\n"


# -- the command ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    p = sub.add_parser("replay", help="run a rule pack over the central's recorded samples",
                       description="Run a rule pack over the central's recorded samples on a "
                                   "virtual clock with the edge's rules and arbiter; report "
                                   "the writes and the estimated savings (docs/savings.md).")
    p.add_argument("--pack", type=Path, required=True, metavar="PACK.yaml",
                   help="the edge config's rules: section (and optionally calendar:)")
    p.add_argument("--from", dest="start", required=True, metavar="WHEN",
                   help="local date or time, e.g. 2026-06-15 or 2026-06-15T08:00")
    p.add_argument("--to", dest="end", required=True, metavar="WHEN",
                   help="local date or time (exclusive)")
    p.add_argument("--config", "-c", dest="institution_config", type=Path,
                   help="institution YAML (or a directory of them); default from settings")
    p.add_argument("--institution", metavar="ID", help="which institution of a directory")
    p.add_argument("--edge", action="append", metavar="ID",
                   help="only this edge (repeatable); default: every edge of the institution")
    p.add_argument("--db", "--database", dest="database", type=Path, metavar="PATH",
                   help="the central's SQLite store")
    p.add_argument("--store", choices=("sqlite", "postgres"), help="default: sqlite")
    p.add_argument("--postgres-dsn", metavar="DSN")
    p.add_argument("--postgres-password-file", type=Path, metavar="PATH")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")


def parse_when(text: str, tz: ZoneInfo, flag: str) -> float:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ReplayError(f"{flag}: not a date or time (2026-06-15 or 2026-06-15T08:00), "
                          f"got {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.timestamp()


def _choose(institutions: list[InstitutionConfig], wanted: str | None) -> InstitutionConfig:
    ids = [i.institution.id for i in institutions]
    if wanted is None and len(institutions) == 1:
        return institutions[0]
    for i in institutions:
        if i.institution.id == wanted:
            return i
    raise ReplayError(f"--institution: {'not one of' if wanted else 'name one of'} "
                      f"{', '.join(ids)}" + (f", got {wanted!r}" if wanted else ""))


def run(args: argparse.Namespace) -> int:
    try:
        pack = load_pack(args.pack)
        settings = load_settings(institution_config=args.institution_config,
                                 database=args.database, store=args.store,
                                 postgres_dsn=args.postgres_dsn,
                                 postgres_password_file=args.postgres_password_file)
        institution = _choose(load_institutions(settings.institution_config),
                              args.institution)
        tz = institution.institution.tz
        start = parse_when(args.start, tz, "--from")
        end = parse_when(args.end, tz, "--to")
        if settings.store == "sqlite" and not Path(settings.database).exists():
            raise ReplayError(f"--db: no store at {settings.database}")
        with open_reader(settings) as store:
            result = replay(store, institution, pack, start, end, edges=args.edge)
    except (ReplayError, CentralError) as exc:
        kind = "configuration error" if isinstance(exc, ConfigError) else "error"
        print(f"{kind}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(json.dumps(as_json(result, tz), ensure_ascii=False, indent=2) + "\n")
    else:
        sys.stdout.write(as_table(result, tz))
    return 0
