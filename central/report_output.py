"""One entry point for every report in every format, shared by the CLI and the API."""

from __future__ import annotations

import json
from typing import Literal

from central.errors import ReportError
from central.institution import InstitutionConfig
from central.ledger import Ledger
from central.profile import CoefficientProfile
from central.reports import Kind, Lang, gather, render_html
from central.storeport import StoreReader

ReportName = Literal["monthly", "quarterly", "annual", "ledger", "scoring"]
Format = Literal["html", "pdf", "xlsx", "json"]
FORMATS: dict[str, tuple[str, ...]] = {
    "monthly": ("html", "pdf", "xlsx", "json"),
    "quarterly": ("html", "pdf", "json"),
    "annual": ("html", "pdf", "json"),
    "ledger": ("xlsx", "json"),
    "scoring": ("html", "json"),
}
MEDIA = {"html": "text/html; charset=utf-8", "pdf": "application/pdf",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         "json": "application/json"}


def produce(store: StoreReader, ledger: Ledger, institution: InstitutionConfig,
            profile: CoefficientProfile, *, report: str, fmt: str, year: int,
            number: int | None = None, lang: Lang = "zh", now: float
            ) -> tuple[bytes, str, str]:
    """(content, media type, file name) of one report; `ReportError` names a bad choice."""
    if report not in FORMATS:
        raise ReportError(f"report: must be one of {', '.join(FORMATS)} (got {report!r})")
    if fmt not in FORMATS[report]:
        raise ReportError(f"format: {report} comes as {', '.join(FORMATS[report])} "
                          f"(got {fmt!r})")
    kind: Kind = report if report in ("monthly", "quarterly") else "annual"  # type: ignore[assignment]
    data = gather(store, ledger, institution, profile, kind=kind, year=year,
                  number=number if kind != "annual" else None, now=now)
    stem = f"{institution.institution.id}-{report}-{data.period_label.replace(' ', '')}-{lang}"
    if fmt == "json":
        body = data.model_dump(mode="json")
        content = json.dumps(body if report != "scoring" else body["scoring"],
                             ensure_ascii=False, indent=1).encode()
    elif fmt == "html":
        content = render_html(data, lang, kind="scoring" if report == "scoring" else None
                              ).encode()
    elif fmt == "pdf":
        from central.report_pdf import render_pdf

        content = render_pdf(data, lang)
    else:
        from central.report_xlsx import render_xlsx

        content = render_xlsx(data, lang)
    return content, MEDIA[fmt], f"{stem}.{fmt}"
