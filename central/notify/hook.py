"""From stored uplink batches to `AlarmSignal`s: the one place ingest meets the notifier.

`AlarmFeed(notifier, institutions)` is a callable `(batches) -> None` for `Ingestor`'s
`on_stored` hook. Ingest calls it after the store committed and before it acknowledges, so
an alarm the central stored is either in the notification queue or not yet acknowledged
(the edge resends it; the queue's keys make the second time a no-op). A failure of the
notification file is a `StoreError`, which ingest treats like a failed store write.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from central.institution import InstitutionConfig
from central.notify.notifier import AlarmSignal, Notifier
from central.triage import StoreBatch
from protocols.wire import Event


@dataclass(frozen=True, slots=True)
class Place:
    institution: str
    building: str | None  # the building's name
    room: str | None
    building_id: str | None = None


class Places:
    """Where each (edge, device) is, from the institution files: meters, AC units, plugs
    and bins name a building (and a zone for meters and AC units)."""

    def __init__(self, institutions: Iterable[InstitutionConfig]) -> None:
        self.by_device: dict[tuple[str, str], Place] = {}
        self.by_edge: dict[str, str] = {}
        for cfg in institutions:
            iid = cfg.institution.id
            names = {b.id: b.name for b in cfg.buildings}
            for edge, device, building, room in cfg.placed_devices():
                self.by_edge.setdefault(edge, iid)
                self.by_device.setdefault((edge, device), Place(
                    iid, names.get(building, building), room, building))

    def signals(self, batches: Sequence[StoreBatch]) -> list[AlarmSignal]:
        out = []
        for b in batches:
            edge = b.stream.edge
            for r in b.records:
                if not isinstance(r, Event) or not r.name.startswith("alarm."):
                    continue
                state = r.data.get("state")
                if state not in ("raised", "cleared"):
                    continue
                device = r.device or ""
                place = self.by_device.get((edge, device))
                institution = place.institution if place else self.by_edge.get(edge)
                if institution is None:
                    continue  # an edge no institution claims: nobody to tell
                zone = r.data.get("zone")
                out.append(AlarmSignal(
                    institution=institution, edge=edge, device=device,
                    kind=r.name.removeprefix("alarm."), state=str(state), ts_ms=r.ts,
                    rule=str(r.data.get("rule", "")), point=str(r.data.get("point", "")),
                    severity=r.severity.value, building=place.building if place else None,
                    room=(str(zone) if zone else None) or (place.room if place else None),
                    data={**r.data, **({"building_id": place.building_id}
                                       if place and place.building_id else {})}))
        return out


class AlarmFeed:
    """The `on_stored` hook for ingest."""

    def __init__(self, notifier: Notifier, institutions: Iterable[InstitutionConfig]) -> None:
        self.notifier = notifier
        self.places = Places(institutions)

    def __call__(self, batches: Sequence[StoreBatch]) -> None:
        signals = self.places.signals(batches)
        if signals:
            self.notifier.observe(signals)
