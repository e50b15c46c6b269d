"""A period of local time: [start, end) in POSIX seconds of one institution's time zone.

Every figure of central/ is "over a period": a day, a month, a quarter, a year, or a free
window from the API. The local calendar arithmetic (where a local day, month or year
starts, which local days a window touches, how it is written in a filed report) lives here
once, so metrics, compliance, reports and the dashboard cannot disagree about where
"March" ends on a DST zone or whether a bill's last day is included.

Invariants: `start <= end`; `end` is exclusive; a local day is [00:00, next 00:00) of the
zone (so days are 23–25 h long where a zone shifts); `first_day`…`last_day` are the local
days the window touches, both inclusive (`last_day` is the day holding `end - 1 ms`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


def local_midnight(day: date, tz: ZoneInfo) -> float:
    """Start of local `day` as POSIX seconds."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


@dataclass(frozen=True, slots=True)
class Period:
    start: float
    end: float
    tz: ZoneInfo

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"period end {self.end} is before its start {self.start}")

    # -- construction ---------------------------------------------------------------

    @classmethod
    def day(cls, day: date, tz: ZoneInfo) -> Period:
        return cls(local_midnight(day, tz), local_midnight(day + timedelta(days=1), tz), tz)

    @classmethod
    def days(cls, first: date, last: date, tz: ZoneInfo) -> Period:
        """Local days first…last, both inclusive (a bill's period)."""
        return cls(local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz), tz)

    @classmethod
    def month(cls, year: int, month: int, tz: ZoneInfo) -> Period:
        return cls.months(year, month, month, tz)

    @classmethod
    def months(cls, year: int, first: int, last: int, tz: ZoneInfo) -> Period:
        """Local months first…last (1-based, inclusive) of `year`."""
        nxt = date(year + 1, 1, 1) if last == 12 else date(year, last + 1, 1)
        return cls(local_midnight(date(year, first, 1), tz), local_midnight(nxt, tz), tz)

    @classmethod
    def quarter(cls, year: int, number: int, tz: ZoneInfo) -> Period:
        return cls.months(year, 3 * number - 2, 3 * number, tz)

    @classmethod
    def year(cls, year: int, tz: ZoneInfo) -> Period:
        return cls.months(year, 1, 12, tz)

    # -- views ----------------------------------------------------------------------

    @property
    def bounds(self) -> tuple[float, float]:
        return self.start, self.end

    @property
    def start_ms(self) -> int:
        return int(self.start * 1000)

    @property
    def end_ms(self) -> int:
        return int(self.end * 1000)

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def empty(self) -> bool:
        return self.end <= self.start

    @property
    def first_day(self) -> date:
        return datetime.fromtimestamp(self.start, self.tz).date()

    @property
    def last_day(self) -> date:
        """The local day holding the period's last instant (`first_day` when empty)."""
        return datetime.fromtimestamp(max(self.start, self.end - 1e-3), self.tz).date()

    @property
    def day_count(self) -> int:
        """Local days the period touches (a partial day counts)."""
        return 0 if self.empty else (self.last_day - self.first_day).days + 1

    def local_days(self) -> Iterator[date]:
        if self.empty:
            return
        day, last = self.first_day, self.last_day
        while day <= last:
            yield day
            day += timedelta(days=1)

    def local_start(self) -> datetime:
        return datetime.fromtimestamp(self.start, self.tz)

    def local_end(self) -> datetime:
        return datetime.fromtimestamp(self.end, self.tz)

    def until(self, moment: float) -> Period:
        """The part before `moment` (empty when `moment` is before the start)."""
        return Period(self.start, min(self.end, max(self.start, moment)), self.tz)

    def overlap_s(self, other: Period) -> float:
        return max(0.0, min(self.end, other.end) - max(self.start, other.start))

    def fraction_of(self, other: Period) -> float:
        """The share of `other`'s length that lies inside this period, 0…1."""
        return self.overlap_s(other) / other.seconds if other.seconds > 0 else 0.0

    def month_periods(self) -> list[Period]:
        """The local months the period touches, each clipped to the period."""
        out: list[Period] = []
        if self.empty:
            return out
        first = self.first_day
        year, month = first.year, first.month
        while True:
            m = Period.month(year, month, self.tz)
            if m.start >= self.end:
                break
            out.append(Period(max(m.start, self.start), min(m.end, self.end), self.tz))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return out

    def label(self, lang: str = "zh") -> str:
        """As a filed report writes it, both ends included: 2026年1月1日至2026年12月31日."""
        a, b = self.first_day, self.last_day
        if lang == "zh":
            return f"{a.year}年{a.month}月{a.day}日至{b.year}年{b.month}月{b.day}日"
        return f"{a:%d %b %Y} – {b:%d %b %Y}"
