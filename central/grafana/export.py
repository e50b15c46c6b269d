"""Dashboard JSON for file provisioning: `greenguard grafana export` writes it, a golden
test checks that the committed files in deploy/grafana/dashboards/ are what the code builds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from central.grafana.dashboards import DASHBOARDS, DEFAULT_BUCKET
from central.grafana.sdk import to_json

DEFAULT_DIR = Path("deploy/grafana/dashboards")


def dashboards(bucket: str = DEFAULT_BUCKET) -> dict[str, dict[str, Any]]:
    """slug → dashboard JSON (classic schema, as `/api/dashboards/db` and provisioning take)."""
    return {spec.slug: to_json(spec.build(bucket)) for spec in DASHBOARDS}


def render(data: dict[str, Any]) -> str:
    """Stable text for a dashboard file: UTF-8 Chinese as is, two-space indent."""
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def export(directory: Path = DEFAULT_DIR, bucket: str = DEFAULT_BUCKET) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for slug, data in dashboards(bucket).items():
        path = directory / f"{slug}.json"
        path.write_text(render(data), encoding="utf-8")
        written.append(path)
    return written


def stale(directory: Path = DEFAULT_DIR, bucket: str = DEFAULT_BUCKET) -> list[str]:
    """Files in `directory` that differ from what the code builds (or are missing/extra)."""
    expected = {f"{slug}.json": render(data) for slug, data in dashboards(bucket).items()}
    present = {p.name for p in directory.glob("*.json")} if directory.is_dir() else set()
    out = sorted(present - expected.keys())
    for name, text in expected.items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            out.append(name)
    return sorted(out)
