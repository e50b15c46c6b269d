"""Simulated CJ/T 188 water meters on a multi-drop line (serve with `SerialLineServer`).

Cumulative volume is the exact integral of a flow profile at the meter's resolution of
0.01 m³; the status carries the valve state and a low-battery flag settable by tests.
Faults: `silent`, `error` (an error reply), `garble`, `delay_s`.
"""

from __future__ import annotations

import collections

from protocols import cjt188
from protocols.errors import FrameError
from simulators.meters import TimeSource
from simulators.profile import LoadProfile
from simulators.serial_bus import Answer


class SimulatedWaterMeter:
    def __init__(self, *, address: str, profile: LoadProfile, clock: TimeSource,
                 start: float, initial_m3: float = 0.0) -> None:
        cjt188.address_bytes(address)
        self.address = address
        self.profile = profile
        self.clock = clock
        self.start = float(start)
        self.initial_m3 = float(initial_m3)
        self.valve_open = True
        self.battery_low = False
        self.silent = False
        self.garble = False
        self.error = False
        self.delay_s = 0.0
        self.reads = 0

    def consumed(self, t0: float, t1: float) -> float:
        return self.profile.integral(t0, t1)

    def volume_at(self, t: float) -> float:
        return self.initial_m3 + self.profile.integral(self.start, t)

    def register_volume(self, t: float) -> float:
        """What the edge decodes: BCD with two decimals, truncated like a meter counter."""
        return int(self.volume_at(t) * 100) / 100


class Cjt188Responder:
    def __init__(self, meters: list[SimulatedWaterMeter], *, log_size: int = 10_000) -> None:
        self.meters = {m.address: m for m in meters}
        self.requests: collections.deque[tuple[str, int]] = collections.deque(maxlen=log_size)

    def take(self, buffer: bytes) -> tuple[int, Answer | None]:
        try:
            frame, used = cjt188.scan_frame(buffer)
        except FrameError:
            return len(buffer), None
        if frame is None:
            return 0, None
        self.requests.append((frame.address, frame.control))
        if frame.control == cjt188.Control.READ_ADDRESS and not frame.is_reply:
            if frame.address != cjt188.BROADCAST or len(self.meters) != 1:
                return used, None  # several meters would collide; none is heard
            only = next(iter(self.meters.values()))
            if only.silent:
                return used, None
            ser = frame.data[2] if len(frame.data) > 2 else 0
            return used, Answer(cjt188.encode_address_reply(only.address, ser=ser),
                                only.delay_s, only.garble)
        meter = self.meters.get(frame.address)
        if frame.is_reply or meter is None or meter.silent:
            return used, None
        if frame.control != cjt188.Control.READ_DATA or len(frame.data) < 3:
            return used, None
        meter.reads += 1
        ser = frame.data[2]
        if meter.error:
            return used, Answer(cjt188.encode_error_reply(meter.address, ser=ser),
                                meter.delay_s, meter.garble)
        swapped = frame.data[:2] == b"\x1f\x90"
        data = cjt188.encode_read_reply(
            meter.address, cumulative_m3=meter.register_volume(meter.clock.now()),
            settlement_m3=0.0, meter_type=frame.meter_type, ser=ser,
            valve_open=meter.valve_open, battery_low=meter.battery_low, di_swapped=swapped)
        return used, Answer(data, meter.delay_s, meter.garble)
