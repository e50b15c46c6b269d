"""Simulated DL/T 645-2007 meters on a multi-drop line (serve with `SerialLineServer`).

Each meter has a 12-digit address and a load profile; forward active energy is the exact
integral of the profile (like `SimulatedMeter`), so the central's figures can be checked
against ground truth. The meters answer read-data (11H) for the data items of
`protocols.dlt645.DATA_ITEMS` with an error reply "no requested data" for anything else,
read-address (13H) to the broadcast address when alone on the line, and ignore broadcast
time sync (08H). Faults per meter: `silent`, `error_code` (every read answered with that
error byte), `garble`, `delay_s`.
"""

from __future__ import annotations

import collections
import math

from protocols import dlt645
from protocols.errors import FrameError
from simulators.meters import TimeSource
from simulators.profile import LoadProfile, unit_noise
from simulators.serial_bus import Answer


class SimulatedDlt645Meter:
    def __init__(self, *, address: str, profile: LoadProfile, clock: TimeSource,
                 start: float, initial_kwh: float = 0.0, phases: int = 1) -> None:
        dlt645.address_bytes(address)  # validates
        self.address = address
        self.profile = profile
        self.clock = clock
        self.start = float(start)
        self.initial_kwh = float(initial_kwh)
        self.phases = phases
        self.silent = False
        self.garble = False
        self.delay_s = 0.0
        self.error_code: int | None = None
        self.reads = 0

    def consumed(self, t0: float, t1: float) -> float:
        return self.profile.integral(t0, t1)

    def energy_at(self, t: float) -> float:
        return self.initial_kwh + self.profile.integral(self.start, t)

    def value(self, item: dlt645.DataItem, t: float) -> float:
        minute = math.floor(t / 60)
        seed = self.profile.params.seed
        power = self.profile.value_at(t)
        voltage = 225.0 + 5.0 * unit_noise(seed, minute, 1)
        pf = 0.95 + 0.02 * unit_noise(seed, minute, 2)
        current = power / (voltage * pf * self.phases)
        values = {
            "energy_total_kwh": self.energy_at(t), "energy_import_kwh": self.energy_at(t),
            "energy_export_kwh": 0.0, "power_w": power, "power_factor": pf,
            "frequency_hz": 50.0 + 0.02 * unit_noise(seed, minute, 3),
        }
        for phase in (1, 2, 3):
            values[f"voltage_l{phase}_v"] = voltage
            values[f"current_l{phase}_a"] = current
        return values[item.point]

    def register_value(self, item: dlt645.DataItem, t: float) -> float:
        """What the edge will decode: the value at the register's resolution."""
        raw = dlt645.encode_value(item, self.value(item, t))
        return dlt645.decode_value(item, raw)


class Dlt645Responder:
    """The meters of one line, by address."""

    def __init__(self, meters: list[SimulatedDlt645Meter], *, log_size: int = 10_000) -> None:
        self.meters = {m.address: m for m in meters}
        self.requests: collections.deque[tuple[str, int, bytes]] = collections.deque(
            maxlen=log_size)

    def take(self, buffer: bytes) -> tuple[int, Answer | None]:
        try:
            frame, used = dlt645.scan_frame(buffer)
        except FrameError:
            return len(buffer), None  # noise on the line: nobody answers
        if frame is None:
            return 0, None
        self.requests.append((frame.address, frame.control, frame.data))
        if frame.is_reply:
            return used, None
        if frame.control == dlt645.Control.READ_ADDRESS:
            if frame.address != dlt645.BROADCAST_READ_ADDRESS or len(self.meters) != 1:
                return used, None  # several meters would collide; none is heard
            only = next(iter(self.meters.values()))
            if only.silent:
                return used, None
            return used, Answer(dlt645.encode_address_reply(only.address), only.delay_s,
                                only.garble)
        meter = self.meters.get(frame.address)
        if meter is None or meter.silent or frame.control != dlt645.Control.READ_DATA:
            return used, None
        meter.reads += 1
        if meter.error_code is not None:
            return used, Answer(dlt645.encode_error_reply(meter.address,
                                                          dlt645.Control.READ_DATA,
                                                          meter.error_code),
                                meter.delay_s, meter.garble)
        di = int.from_bytes(frame.data[:4], "little")
        item = dlt645.DATA_ITEMS.get(di)
        if item is None:
            return used, Answer(dlt645.encode_error_reply(meter.address,
                                                          dlt645.Control.READ_DATA, 0x02),
                                meter.delay_s, meter.garble)
        data = dlt645.encode_read_reply(meter.address, di,
                                        meter.value(item, meter.clock.now()))
        return used, Answer(data, meter.delay_s, meter.garble)
