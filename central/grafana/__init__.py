"""Grafana as code: dashboards built with grafana-foundation-sdk (docs/grafana.md)."""
