"""The edge-health panel's ingest counters say what they count: a tooltip per counter in
both languages, and a help page (served with the dashboard) and docs/dashboard.md that
explain the same labels."""

from __future__ import annotations

import re
from pathlib import Path

from central.page import ASSETS, read_asset

COUNTERS = ("received", "stored", "duplicates", "dead_letters", "store_errors")
DOCS = Path(__file__).resolve().parents[3] / "docs" / "dashboard.md"


def _texts(js: str, lang: str) -> dict[str, str]:
    start = js.index(f"    {lang}: {{")
    end = js.index("\n    }", start)
    return dict(re.findall(r'(?:^|[{,\s])([a-z_]+):\s*"([^"]*)"', js[start + 8:end], re.M))


def test_every_counter_has_a_label_a_tooltip_and_an_explanation() -> None:
    js = read_asset("dashboard.js").decode()
    help_page = read_asset("counters.html").decode()
    docs = DOCS.read_text(encoding="utf-8")
    assert "counters.html" in ASSETS
    assert 'href="assets/counters.html"' in js
    for lang in ("zh", "en"):
        texts = _texts(js, lang)
        for key in COUNTERS:
            label, tip = texts[key], texts[f"{key}_tip"]
            assert len(tip) > len(label) + 10, (lang, key)  # says more than the label
            assert f"<dt>{label}</dt>" in help_page, (lang, label)
            assert label in docs, (lang, label)
    # The words that made "已存储 1,206 · 重复 1,206" unreadable are explained.
    assert "重发" in _texts(js, "zh")["duplicates"]
    assert "resen" in _texts(js, "en")["duplicates_tip"]
