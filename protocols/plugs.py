"""Smart plugs over MQTT, following the conventions of the real firmware.

**Tasmota** (topic `<t>` is the device's `Topic`, default FullTopic `%prefix%/%topic%/`):

- `tele/<t>/SENSOR` every TelePeriod: `{"Time": …, "ENERGY": {"Total": kWh, "Power": W,
  "Voltage": V, "Current": A, "Factor": …, …}}`; `tele/<t>/STATE` carries `"POWER": "ON"`;
  `tele/<t>/LWT` is `Online`/`Offline` (retained).
- `cmnd/<t>/POWER` with `ON` or `OFF` switches (we never send `TOGGLE`: absolute writes
  only); an empty payload asks for the state. The answer is `stat/<t>/RESULT`
  `{"POWER": "ON"}` (and `stat/<t>/POWER` `ON`). Multi-relay devices use `POWER1`, `POWER2`.
- `cmnd/<t>/STATUS` with `10` asks for the sensors now: `stat/<t>/STATUS10`
  `{"StatusSNS": {…same as SENSOR…}}` (Status 8 on firmware before 9.x).

**Shelly Gen2** (Plus/Pro) RPC over MQTT, `<id>` the device's MQTT prefix:

- request on `<id>/rpc`: `{"id": 7, "src": "<reply prefix>", "method": "Switch.GetStatus",
  "params": {"id": 0}}`; the answer comes on `<reply prefix>/rpc` with the same id and
  either `"result"` or `"error": {"code", "message"}`;
- `Switch.GetStatus` gives `output` (relay), `apower` W, `voltage`, `current`, `pf`,
  `aenergy.total` **in Wh**; `Switch.Set {"id": 0, "on": true}` switches absolutely;
- `<id>/online` is `true`/`false` (retained), `<id>/events/rpc` carries NotifyStatus.

Parsers raise `FrameError` (malformed payload) or `DeviceReplyError` (an RPC error),
never anything else; every number is checked to be finite.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from protocols.errors import DeviceReplyError, FrameError

TASMOTA = "tasmota"
SHELLY = "shelly"


@dataclass(frozen=True, slots=True)
class PlugReading:
    """What a plug reports; None where the firmware did not say."""

    on: bool | None = None
    power_w: float | None = None
    energy_import_kwh: float | None = None
    voltage_v: float | None = None
    current_a: float | None = None
    power_factor: float | None = None

    def values(self) -> dict[str, float | bool]:
        out: dict[str, float | bool] = {}
        for name in ("on", "power_w", "energy_import_kwh", "voltage_v", "current_a",
                     "power_factor"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    def merged(self, other: PlugReading) -> PlugReading:
        """Fields of `other` where it has them, else ours."""
        return PlugReading(*(b if b is not None else a
                             for a, b in zip(self._fields(), other._fields(), strict=True)))

    def _fields(self) -> tuple[Any, ...]:
        return (self.on, self.power_w, self.energy_import_kwh, self.voltage_v,
                self.current_a, self.power_factor)


UNITS = {"on": "", "power_w": "W", "energy_import_kwh": "kWh", "voltage_v": "V",
         "current_a": "A", "power_factor": "1"}
CUMULATIVE = frozenset({"energy_import_kwh"})


def _json(protocol: str, payload: bytes | str) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        shown = payload if isinstance(payload, str) else payload[:60].decode("utf-8", "replace")
        raise FrameError(protocol, f"not JSON: {exc}", shown) from None


def _finite(protocol: str, obj: dict[str, Any], key: str, *, divisor: float = 1.0,
            where: str = "") -> float | None:
    if key not in obj:
        return None
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FrameError(protocol, f"{where}{key} must be a number, got {value!r}")
    number = float(value) / divisor
    if not math.isfinite(number):
        raise FrameError(protocol, f"{where}{key} must be finite, got {value!r}")
    return number


# -- Tasmota --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TasmotaTopics:
    topic: str

    @property
    def sensor(self) -> str:
        return f"tele/{self.topic}/SENSOR"

    @property
    def state(self) -> str:
        return f"tele/{self.topic}/STATE"

    @property
    def lwt(self) -> str:
        return f"tele/{self.topic}/LWT"

    @property
    def power_command(self) -> str:
        return f"cmnd/{self.topic}/POWER"

    @property
    def status_command(self) -> str:
        return f"cmnd/{self.topic}/STATUS"

    @property
    def result(self) -> str:
        return f"stat/{self.topic}/RESULT"

    @property
    def status10(self) -> str:
        return f"stat/{self.topic}/STATUS10"

    @property
    def subscriptions(self) -> tuple[str, ...]:
        return (f"tele/{self.topic}/+", f"stat/{self.topic}/+")


def tasmota_power_key(relay: int | None) -> str:
    return "POWER" if relay is None else f"POWER{relay}"


def tasmota_power_payload(on: bool) -> bytes:
    """The absolute command: `ON` or `OFF`, never `TOGGLE`."""
    return b"ON" if on else b"OFF"


def _on_off(value: Any, where: str) -> bool:
    if isinstance(value, str) and value.upper() in ("ON", "OFF"):
        return value.upper() == "ON"
    raise FrameError(TASMOTA, f"{where} must be ON or OFF, got {value!r}")


def parse_tasmota_energy(obj: Any, where: str = "ENERGY") -> PlugReading:
    """The `ENERGY` object of SENSOR / StatusSNS."""
    if not isinstance(obj, dict):
        raise FrameError(TASMOTA, f"{where} must be an object, got {obj!r}")
    reading = PlugReading(
        power_w=_finite(TASMOTA, obj, "Power", where=f"{where}."),
        energy_import_kwh=_finite(TASMOTA, obj, "Total", where=f"{where}."),
        voltage_v=_finite(TASMOTA, obj, "Voltage", where=f"{where}."),
        current_a=_finite(TASMOTA, obj, "Current", where=f"{where}."),
        power_factor=_finite(TASMOTA, obj, "Factor", where=f"{where}."),
    )
    if reading.energy_import_kwh is not None and reading.energy_import_kwh < 0:
        raise FrameError(TASMOTA, f"{where}.Total must not be negative")
    return reading


def parse_tasmota_sensor(payload: bytes | str) -> PlugReading:
    """`tele/<t>/SENSOR`, or `stat/<t>/STATUS10` (whose content sits in `StatusSNS`)."""
    obj = _json(TASMOTA, payload)
    if not isinstance(obj, dict):
        raise FrameError(TASMOTA, "SENSOR payload must be an object", str(obj)[:60])
    if "StatusSNS" in obj:
        obj = obj["StatusSNS"]
        if not isinstance(obj, dict):
            raise FrameError(TASMOTA, "StatusSNS must be an object")
    if "ENERGY" not in obj:
        raise FrameError(TASMOTA, "no ENERGY object (is this a metering plug?)")
    return parse_tasmota_energy(obj["ENERGY"])


def parse_tasmota_power(payload: bytes | str, *, relay: int | None = None) -> bool | None:
    """Relay state from `stat/<t>/RESULT`, `tele/<t>/STATE` (JSON with `POWER`) or a bare
    `stat/<t>/POWER` payload. None when the message is about something else."""
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    stripped = text.strip()
    if stripped.upper() in ("ON", "OFF"):
        return stripped.upper() == "ON"
    obj = _json(TASMOTA, text)
    if not isinstance(obj, dict):
        raise FrameError(TASMOTA, "RESULT/STATE payload must be an object", text[:60])
    key = tasmota_power_key(relay)
    if key not in obj and relay == 1 and "POWER" in obj:
        key = "POWER"
    if key not in obj:
        return None
    return _on_off(obj[key], key)


def tasmota_sensor_payload(reading: PlugReading, *, time: str) -> bytes:
    """What Tasmota publishes on `tele/<t>/SENSOR` (for simulators and tests)."""
    energy: dict[str, Any] = {}
    for key, value in (("Total", reading.energy_import_kwh), ("Power", reading.power_w),
                       ("Factor", reading.power_factor), ("Voltage", reading.voltage_v),
                       ("Current", reading.current_a)):
        if value is not None:
            energy[key] = value
    return json.dumps({"Time": time, "ENERGY": energy}, separators=(",", ":")).encode()


# -- Shelly Gen2 ----------------------------------------------------------------------


def shelly_request(method: str, params: dict[str, Any], *, request_id: int, src: str) -> bytes:
    return json.dumps({"id": request_id, "src": src, "method": method, "params": params},
                      separators=(",", ":")).encode()


def shelly_switch_set(*, on: bool, switch: int = 0) -> tuple[str, dict[str, Any]]:
    return "Switch.Set", {"id": switch, "on": on}


def shelly_switch_get_status(*, switch: int = 0) -> tuple[str, dict[str, Any]]:
    return "Switch.GetStatus", {"id": switch}


@dataclass(frozen=True, slots=True)
class ShellyResponse:
    id: int
    src: str
    result: dict[str, Any]


def shelly_answer_id(payload: bytes | str) -> int | None:
    """The `id` of an RPC answer, or None if the payload has none (cheap pre-check that
    lets a waiter ignore answers to other requests)."""
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    rid = obj.get("id") if isinstance(obj, dict) else None
    return rid if type(rid) is int else None


def parse_shelly_response(payload: bytes | str) -> ShellyResponse:
    """An RPC answer; `DeviceReplyError` carries the device's error code (e.g. -103 for
    invalid arguments, -105 for a missing component)."""
    obj = _json(SHELLY, payload)
    if not isinstance(obj, dict):
        raise FrameError(SHELLY, "RPC answer must be an object")
    rid = obj.get("id")
    if type(rid) is not int:
        raise FrameError(SHELLY, f"RPC answer id must be an integer, got {rid!r}")
    src = obj.get("src", "")
    if not isinstance(src, str):
        raise FrameError(SHELLY, f"src must be a string, got {src!r}")
    if "error" in obj:
        err = obj["error"]
        code = err.get("code") if isinstance(err, dict) else None
        message = err.get("message", "") if isinstance(err, dict) else ""
        if type(code) is not int:
            raise FrameError(SHELLY, f"error.code must be an integer, got {code!r}")
        raise DeviceReplyError(SHELLY, code, f"RPC error {code}: {message}")
    result = obj.get("result")
    if not isinstance(result, dict):
        raise FrameError(SHELLY, f"result must be an object, got {result!r}")
    return ShellyResponse(rid, src, result)


def parse_shelly_switch_status(result: dict[str, Any]) -> PlugReading:
    """`Switch.GetStatus` result (also the `switch:N` part of NotifyStatus)."""
    output = result.get("output")
    if output is not None and not isinstance(output, bool):
        raise FrameError(SHELLY, f"output must be true or false, got {output!r}")
    total_kwh = None
    if "aenergy" in result:
        aenergy = result["aenergy"]
        if not isinstance(aenergy, dict):
            raise FrameError(SHELLY, "aenergy must be an object")
        total_kwh = _finite(SHELLY, aenergy, "total", divisor=1000.0, where="aenergy.")
        if total_kwh is not None and total_kwh < 0:
            raise FrameError(SHELLY, "aenergy.total must not be negative")
    return PlugReading(
        on=output,
        power_w=_finite(SHELLY, result, "apower"),
        energy_import_kwh=total_kwh,
        voltage_v=_finite(SHELLY, result, "voltage"),
        current_a=_finite(SHELLY, result, "current"),
        power_factor=_finite(SHELLY, result, "pf"),
    )


def shelly_response(request_id: int, *, src: str, dst: str,
                    result: dict[str, Any] | None = None,
                    error: tuple[int, str] | None = None) -> bytes:
    """An RPC answer as the device sends it (for simulators and tests)."""
    body: dict[str, Any] = {"id": request_id, "src": src, "dst": dst}
    if error is not None:
        body["error"] = {"code": error[0], "message": error[1]}
    else:
        body["result"] = result or {}
    return json.dumps(body, separators=(",", ":")).encode()
