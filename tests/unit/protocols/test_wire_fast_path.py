"""The fast sample decoder must agree with the full validator on every input: it either
builds exactly the Sample `record_from_dict` builds, or declines (None) and leaves the
verdict, and the error naming the field, to the full validator."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from protocols import wire
from protocols.errors import WireError

_ANY_SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2**63 - 1, 2**63, 253402300799999, 253402300800000,
                     float("nan"), float("inf"), -0.0, 1.5, "", "W", "kWh", "℃", "\ud800",
                     "m-1", "-m", "a" * 64, "a" * 65, "Power", "power_w", ["x"], {"a": 1}]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=70))
_GOOD = {"kind": "sample", "seq": 7, "ts": 1_750_000_000_000, "device": "m-1",
         "point": "power_w", "value": 12.5, "unit": "W"}


@st.composite
def sample_dicts(draw: st.DrawFn) -> dict[str, Any]:
    raw: dict[str, Any] = dict(_GOOD)
    for key in draw(st.sets(st.sampled_from([*_GOOD, "synced"]))):
        if draw(st.booleans()):
            raw.pop(key, None)
        else:
            raw[key] = draw(_ANY_SCALAR)
    return raw


def _full(raw: dict[str, Any]) -> wire.Record | WireError:
    try:
        return wire.record_from_dict(raw, "records[0].")
    except WireError as exc:
        return exc


@settings(max_examples=600)
@given(sample_dicts())
@example({**_GOOD, "value": float("nan")})
@example({**_GOOD, "value": float("inf")})
@example({**_GOOD, "value": True})
@example({**_GOOD, "value": "℃"})
@example({**_GOOD, "unit": "x" * 17})
@example({**_GOOD, "device": "-bad"})
@example({**_GOOD, "seq": 0})
@example({**_GOOD, "ts": -1})
@example({**_GOOD, "synced": 1})
def test_fast_path_agrees_with_the_full_validator(raw: dict[str, Any]) -> None:
    fast = wire._fast_sample(raw)
    full = _full(raw)
    if fast is not None:
        assert fast == full
        assert type(fast.value) is type(full.value)  # type: ignore[union-attr]


@settings(max_examples=200)
@given(sample_dicts())
def test_decode_names_the_same_field_with_or_without_orjson(raw: dict[str, Any]) -> None:
    payload = json.dumps({"v": 1, "type": "batch", "stream": {"edge": "e1", "epoch": 1},
                          "seq": 7, "after": 0, "sent": 0, "synced": True,
                          "records": [raw]}).encode()
    try:
        expected: Any = wire.from_dict(json.loads(payload))
    except WireError as exc:
        expected = str(exc)
    try:
        got: Any = wire.decode(payload)
    except WireError as exc:
        got = str(exc)
    assert got == expected


def test_the_fast_path_is_taken_for_an_ordinary_sample() -> None:
    assert wire._fast_sample(dict(_GOOD)) == wire.Sample(7, 1_750_000_000_000, "m-1",
                                                         "power_w", 12.5, "W")


def _one_sample_batch(value: int) -> bytes:
    return ('{"v":1,"type":"batch","stream":{"edge":"e1","epoch":1},"seq":7,"after":0,'
            '"sent":0,"synced":true,"records":[{"kind":"sample","seq":7,"ts":0,'
            f'"device":"m","point":"p","value":{value},"unit":"W"}}]}}').encode()


@pytest.mark.parametrize("value", [2**63 - 1, -(2**63), 2**53 + 1])
def test_integers_within_64_bits_stay_exact(value: int) -> None:
    # orjson would read some of these as floats; the stdlib path keeps the integer.
    batch = wire.decode(_one_sample_batch(value))
    assert isinstance(batch, wire.Batch)
    assert batch.records[0].value == value  # type: ignore[union-attr]
    assert type(batch.records[0].value) is int  # type: ignore[union-attr]


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 2**64, 2**70, -(2**70), 10**400])
def test_integers_beyond_64_bits_are_refused_naming_the_field(value: int) -> None:
    # Judged exactly (not as the float orjson would make of it), refused by every path.
    with pytest.raises(WireError) as info:
        wire.decode(_one_sample_batch(value))
    assert info.value.field == "records[0].value"
    assert "64 bits" in str(info.value)
    assert str(value)[:20] in str(info.value)
    raw = {"kind": "sample", "seq": 7, "ts": 0, "device": "m", "point": "p", "value": value,
           "unit": "W"}
    assert wire._fast_sample(raw) is None
    assert wire._sample_columns([raw], 0) is None
    with pytest.raises(WireError):
        wire.record_from_dict(raw)


@pytest.mark.parametrize("others", [[1.5, 2], ["on", 2], [True, 3]])
def test_a_huge_integer_among_ordinary_samples_is_refused_by_the_columns(
        others: list[Any]) -> None:
    raws = [{"kind": "sample", "seq": i + 1, "ts": 0, "device": "m", "point": "p",
             "value": v, "unit": "W"} for i, v in enumerate([others[0], 2**70, others[1]])]
    assert wire._sample_columns(raws, 0) is None
    with pytest.raises(WireError) as info:
        wire.from_dict(_batch(raws))
    assert info.value.field == "records[1].value"


def _batch(records: list[Any], after: Any = 0) -> dict[str, Any]:
    return {"v": 1, "type": "batch", "stream": {"edge": "e1", "epoch": 1},
            "seq": records[-1].get("seq", 1) if isinstance(records[-1], dict) else 1,
            "after": after, "sent": 0, "synced": True, "records": records}


def _verdict(obj: dict[str, Any]) -> Any:
    try:
        msg = wire.from_dict(obj)
    except WireError as exc:
        return str(exc)
    assert isinstance(msg, wire.Batch)
    # tuple() materialises the columns; the types keep True apart from 1
    return msg.stream, msg.after, [(r, type(getattr(r, "value", None)))
                                   for r in tuple(msg.records)]


@settings(max_examples=300)
@given(st.lists(sample_dicts(), min_size=1, max_size=6), st.sampled_from([0, 3, 7, -1, True]),
       st.booleans())
@example([dict(_GOOD), {**_GOOD, "seq": 8, "value": True}], 0, True)
@example([dict(_GOOD), {**_GOOD, "seq": 7}], 0, True)  # seqs not increasing
@example([dict(_GOOD), {**_GOOD, "seq": 8, "value": "℃"}], 0, True)
@example([dict(_GOOD), {**_GOOD, "seq": 8, "value": 10**400}], 0, True)
def test_columns_agree_with_the_per_record_path(raws: list[dict[str, Any]], after: Any,
                                                renumber: bool) -> None:
    """A batch decoded column by column is the batch the per-record path builds, or the
    columns decline and that path gives its verdict (and error) unchanged."""
    if renumber:  # mostly valid chains, so the columns are taken often
        raws = [{**r, "seq": i + 8} if "seq" in r else r for i, r in enumerate(raws)]
    obj = _batch(raws, after)
    columnar = _verdict(obj)
    original = wire._sample_columns
    try:
        wire._sample_columns = lambda raw, after: None  # type: ignore[assignment]
        per_record = _verdict(obj)
    finally:
        wire._sample_columns = original
    assert columnar == per_record


@pytest.mark.parametrize("field", ["kind", "device", "point", "unit", "value", "seq", "ts"])
@pytest.mark.parametrize("bad", [["x"], {"a": 1}])
def test_an_unhashable_field_is_a_wire_error(field: str, bad: Any) -> None:
    """Regression: the column checks took a set of the values themselves, and a list or an
    object in a string field raised TypeError instead of the validator's WireError."""
    raws = [dict(_GOOD), {**_GOOD, "seq": 8, field: bad}]
    with pytest.raises(WireError, match=rf"records\[1\]\.{field}"):
        wire.decode(json.dumps(_batch(raws)).encode())


def test_an_ordinary_batch_is_decoded_as_columns() -> None:
    raws = [{**_GOOD, "seq": s, "device": f"m{s % 3}"} for s in range(1, 6)]
    batch = wire.decode(json.dumps(_batch(raws)).encode())
    assert isinstance(batch, wire.Batch)
    assert isinstance(batch.records, wire.SampleColumns)
    assert batch.records.device == ("m1", "m2", "m0", "m1", "m2")
    assert list(batch.records) == [wire._fast_sample(r) for r in raws]
    # a record with an extra field, an unsynced one or an interval: the per-record path
    for odd in ({**_GOOD, "seq": 6, "note": "x"}, {**_GOOD, "seq": 6, "synced": False}):
        again = wire.decode(json.dumps(_batch([*raws, odd])).encode())
        assert isinstance(again, wire.Batch)
        assert isinstance(again.records, tuple)
