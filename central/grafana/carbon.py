"""The CO₂ panels of the compliance dashboard (docs/grafana.md, docs/carbon.md). They only
select the figures the central published (`figure.t_co2`, `kg_co2_per_m2`,
`kg_co2_per_person`, computed by central/carbon.py with the factors valid in each part of
the period): no panel multiplies a quantity by a factor, so Grafana, the API and the
reports cannot disagree when a factor changes."""

from __future__ import annotations

from grafana_foundation_sdk.models.common import BigValueColorMode, BigValueGraphMode

from central.grafana.sdk import InfluxQL, datasource_ref, stat, timeseries

_DAYS = "GROUP BY time(1d) fill(none) tz('Asia/Shanghai')"


def carbon_panels(ytd: str) -> list[stat.Panel | timeseries.Panel]:
    """`ytd`: the WHERE clause of the institution's year-to-date figures."""
    return [
        stat.Panel().title("碳排放 CO₂ year to date").description(
            "Year-to-date CO₂ of all energy (tCO₂), per floor area (kgCO₂/m²) and per "
            "person (kgCO₂/person), as the central computes them: quantities × the emission "
            "factor valid in each part of the year. Empty where there is no data (never 0).")
        .with_target(InfluxQL(
            'SELECT last("t_co2") AS "tCO₂", last("kg_co2_per_m2") AS "kgCO₂/m²", '
            f'last("kg_co2_per_person") AS "kgCO₂/人" FROM "figure" WHERE {ytd}'))
        .datasource(datasource_ref()).decimals(3).no_value("—")
        .graph_mode(BigValueGraphMode.NONE).color_mode(BigValueColorMode.VALUE)
        .height(6).span(8),
        timeseries.Panel().title("碳排放 年累计趋势").description(
            "Year-to-date tCO₂ at the end of each day.")
        .with_target(InfluxQL(
            f'SELECT last("t_co2") AS "tCO₂ 年累计" FROM "figure" WHERE {ytd} {_DAYS}'))
        .datasource(datasource_ref()).decimals(3).fill_opacity(10).height(6).span(16),
    ]
