"""The XML messages of the platform link and their dispatch (STANDARDS.md §4).

Every message is `<root><common>…</common><ELEMENT operation="…">…</ELEMENT></root>`; the
receiver dispatches on the element name plus `operation`, never on `<common><type>` (cities
fill `type` inconsistently; we send the operation there, as most do).

    id_validate  request (collector) · sequence (platform) · md5 (collector) · result
    heart_beat   notify (collector) · time (platform, yyyyMMddHHmmss: clock sync)
    data         report / continuous (collector: current / backlog, 断点续传) · reply,
                 report_ack, continuous_ack (platform answers; `<ack>` OK or pass is
                 acceptance; anything else a refusal)

`encode_xml` writes compact XML (no whitespace between elements) so that a frame is the
same bytes every time; `decode_xml` accepts any whitespace, refuses DOCTYPE/ENTITY
declarations and raises `WireError` naming the element or attribute that is wrong.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

from protocols.errors import WireError

IdOperation = Literal["request", "sequence", "md5", "result"]
BeatOperation = Literal["notify", "time"]
DataOperation = Literal["report", "continuous", "reply", "report_ack", "continuous_ack"]
_DATA_OPS: dict[str, DataOperation] = {o: o for o in (
    "report", "continuous", "reply", "report_ack", "continuous_ack")}
ACCEPTED = frozenset({"ok", "pass", "true", "1", "success"})
_TIME = re.compile(r"^[0-9]{14}$")
_CODE = re.compile(r"^[0-9]{2}[0-9A-Z]{3}$")


@dataclass(frozen=True)
class Common:
    building_id: str
    gateway_id: str
    type: str = ""


@dataclass(frozen=True)
class IdValidate:
    operation: IdOperation
    sequence: str | None = None
    md5: str | None = None
    result: str | None = None  # pass | fail


@dataclass(frozen=True)
class HeartBeat:
    operation: BeatOperation
    time: str | None = None  # yyyyMMddHHmmss, the platform's clock


@dataclass(frozen=True)
class EnergyItem:
    code: str  # 分项 code, e.g. 01000, 01A00
    value: float


@dataclass(frozen=True)
class MeterFunction:
    id: str
    coding: str
    value: float
    error: str | None = None


@dataclass(frozen=True)
class MeterReading:
    id: str
    name: str
    functions: tuple[MeterFunction, ...] = ()


@dataclass(frozen=True)
class DataMessage:
    operation: DataOperation
    sequence: str = ""
    parser: str | None = None  # yes: the values are already parsed into items
    time: str | None = None  # yyyyMMddHHmmss, the period's start
    energy_items: tuple[EnergyItem, ...] = ()
    meters: tuple[MeterReading, ...] = ()
    ack: str | None = None  # the platform's answer

    @property
    def accepted(self) -> bool:
        return self.ack is not None and self.ack.strip().lower() in ACCEPTED


Body = IdValidate | HeartBeat | DataMessage


@dataclass(frozen=True)
class Message:
    common: Common
    body: Body = field(default_factory=lambda: IdValidate("request"))

    @property
    def element(self) -> str:
        return element_of(self.body)

    @property
    def operation(self) -> str:
        return self.body.operation


def element_of(body: Body) -> str:
    if isinstance(body, IdValidate):
        return "id_validate"
    if isinstance(body, HeartBeat):
        return "heart_beat"
    return "data"


def _num(value: float, decimals: int) -> str:
    if not math.isfinite(value):
        raise WireError("energy_item", value, "a value must be a finite number")
    text = f"{value:.{decimals}f}"
    return "0" if decimals == 0 and text == "-0" else text


def _el(tag: str, text: str | None) -> str:
    return "" if text is None else f"<{tag}>{escape(text)}</{tag}>"


def encode_xml(message: Message, *, encoding: str = "utf-8", decimals: int = 2) -> bytes:
    c, b = message.common, message.body
    common = (f"<common>{_el('building_id', c.building_id)}{_el('gateway_id', c.gateway_id)}"
              f"{_el('type', c.type or b.operation)}</common>")
    op = f"operation={quoteattr(b.operation)}"
    if isinstance(b, IdValidate):
        inner = _el("sequence", b.sequence) + _el("md5", b.md5) + _el("result", b.result)
    elif isinstance(b, HeartBeat):
        inner = _el("time", b.time)
    else:
        parts = [_el("sequence", b.sequence), _el("parser", b.parser), _el("time", b.time)]
        if b.energy_items:
            parts.append("<energy_items>" + "".join(
                f"<energy_item code={quoteattr(i.code)}>{_num(i.value, decimals)}"
                "</energy_item>" for i in b.energy_items) + "</energy_items>")
        if b.meters:
            ms = []
            for m in b.meters:
                fs = "".join(
                    f"<function id={quoteattr(f.id)} coding={quoteattr(f.coding)}"
                    + ("" if f.error is None else f" error={quoteattr(f.error)}")
                    + f">{_num(f.value, decimals)}</function>" for f in m.functions)
                ms.append(f"<meter id={quoteattr(m.id)} name={quoteattr(m.name)}>{fs}</meter>")
            parts.append(f'<meters total="{len(b.meters)}">' + "".join(ms) + "</meters>")
        parts.append(_el("ack", b.ack))
        inner = "".join(parts)
    el = element_of(b)
    body = f"<{el} {op}/>" if not inner else f"<{el} {op}>{inner}</{el}>"
    text = (f'<?xml version="1.0" encoding="{encoding}"?>'
            f"<root>{common}{body}</root>")
    return text.encode(encoding)


_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.S)


def decode_xml(data: bytes, *, encoding: str = "utf-8") -> Message:
    """The message in `data`; `WireError` naming what is missing or wrong."""
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise WireError("xml", data[:40], f"not {encoding} text: {exc}") from exc
    text = _DECL.sub("", text.lstrip("\ufeff"), count=1)
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise WireError("xml", text[:40], "DOCTYPE and ENTITY declarations are refused")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise WireError("xml", text[:60], f"not well-formed XML: {exc}") from exc
    if root.tag != "root":
        raise WireError("xml", root.tag, "the document element must be <root>")
    c = root.find("common")
    if c is None:
        raise WireError("common", None, "missing <common>")
    common = Common(building_id=_text(c, "building_id", "common") or "",
                    gateway_id=_text(c, "gateway_id", "common") or "",
                    type=_text(c, "type", "common") or "")
    bodies = [e for e in root if e.tag != "common"]
    if len(bodies) != 1:
        raise WireError("root", [e.tag for e in bodies], "exactly one message element "
                        "beside <common>")
    return Message(common, _body(bodies[0]))


def _text(parent: ET.Element, tag: str, where: str) -> str | None:
    el = parent.find(tag)
    return None if el is None else (el.text or "").strip()


def _need(parent: ET.Element, tag: str, where: str) -> str:
    value = _text(parent, tag, where)
    if not value:
        raise WireError(f"{where}.{tag}", value, "missing or empty")
    return value


def _float(text: str | None, where: str) -> float:
    try:
        value = float((text or "").strip())
    except ValueError:
        raise WireError(where, text, "not a number") from None
    if not math.isfinite(value):
        raise WireError(where, text, "not a finite number")
    return value


def _body(el: ET.Element) -> Body:
    op = el.get("operation")
    where = f"{el.tag}[operation={op}]"
    if el.tag == "id_validate":
        if op == "request":
            return IdValidate("request")
        if op == "sequence":
            return IdValidate("sequence", sequence=_need(el, "sequence", where))
        if op == "md5":
            md5 = _need(el, "md5", where)
            if not re.fullmatch(r"[0-9a-fA-F]{32}", md5):
                raise WireError(f"{where}.md5", md5, "must be 32 hex digits")
            return IdValidate("md5", md5=md5)
        if op == "result":
            return IdValidate("result", result=_need(el, "result", where))
    elif el.tag == "heart_beat":
        if op == "notify":
            return HeartBeat("notify")
        if op == "time":
            t = _need(el, "time", where)
            if not _TIME.fullmatch(t):
                raise WireError(f"{where}.time", t, "must be yyyyMMddHHmmss")
            return HeartBeat("time", time=t)
    elif el.tag == "data":
        data_op = _DATA_OPS.get(op or "")
        if data_op is not None:
            return _data(el, data_op, where)
    else:
        raise WireError("root", el.tag, "unknown message element (id_validate, heart_beat "
                        "or data)")
    raise WireError(f"{el.tag}.operation", op, "unknown operation for this element")


def _data(el: ET.Element, op: DataOperation, where: str) -> DataMessage:
    t = _text(el, "time", where)
    if t and not _TIME.fullmatch(t):
        raise WireError(f"{where}.time", t, "must be yyyyMMddHHmmss")
    items: list[EnergyItem] = []
    box = el.find("energy_items")
    for i, item in enumerate(box.findall("energy_item") if box is not None else []):
        code = item.get("code") or ""
        if not _CODE.fullmatch(code):
            raise WireError(f"{where}.energy_items[{i}].code", code,
                            "a 分项 code is 5 characters such as 01000 or 01A10")
        items.append(EnergyItem(code, _float(item.text, f"{where}.energy_items[{i}]")))
    meters: list[MeterReading] = []
    mbox = el.find("meters")
    for i, m in enumerate(mbox.findall("meter") if mbox is not None else []):
        fs = tuple(MeterFunction(id=f.get("id") or "", coding=f.get("coding") or "",
                                 value=_float(f.text, f"{where}.meters[{i}].function[{j}]"),
                                 error=f.get("error"))
                   for j, f in enumerate(m.findall("function")))
        meters.append(MeterReading(id=m.get("id") or "", name=m.get("name") or "",
                                   functions=fs))
    if mbox is not None and mbox.get("total") not in (None, str(len(meters))):
        raise WireError(f"{where}.meters.total", mbox.get("total"),
                        f"says a different count than the {len(meters)} meters sent")
    return DataMessage(operation=op, sequence=_text(el, "sequence", where) or "",
                       parser=_text(el, "parser", where), time=t or None,
                       energy_items=tuple(items), meters=tuple(meters),
                       ack=_text(el, "ack", where))
