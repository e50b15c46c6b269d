"""The slice of grafana-foundation-sdk 0.0.21 the dashboards use, plus an InfluxQL query type.

Why this module exists:

- The SDK ships no InfluxDB query builder, so `InfluxQLQuery` is one: a `Dataquery` with
  `refId`, a raw `query`, `resultFormat` and the datasource, registered with the SDK's
  runtime under the `influxdb` datasource type so that `Dashboard.from_json` gives
  `InfluxQLQuery` objects back (a round trip, not an `UnknownDataquery` bag).
- The SDK's classic `dashboard` module warns at import time (class bodies call
  `warnings.warn(... DeprecationWarning)` to recommend the v2 schema). Grafana's file
  provisioning and `/api/dashboards/db` take the classic schema, which is what is built
  here, so the warning is silenced for that import only.
"""

from __future__ import annotations

import warnings
from typing import Any, Self

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from grafana_foundation_sdk.builders import (
        bargauge,
        gauge,
        piechart,
        stat,
        table,
        timeseries,
    )
    from grafana_foundation_sdk.builders import dashboard as dashboard_builders
    from grafana_foundation_sdk.models import dashboard as dashboard_models

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import DataSourceRef

DATASOURCE_TYPE = "influxdb"
DATASOURCE_UID = "greenguard-influxdb"  # deploy/grafana/provisioning/datasources/


def datasource_ref() -> DataSourceRef:
    return DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


class InfluxQLQuery(cogvariants.Dataquery):
    """A raw InfluxQL query of Grafana's InfluxDB datasource (query language InfluxQL):
    runs on InfluxDB 1.8+, on 2.x through a DBRP mapping and natively on 3.x."""

    def __init__(self, ref_id: str = "A", query: str = "", result_format: str = "time_series",
                 alias: str | None = None, hide: bool | None = None,
                 datasource: DataSourceRef | None = None) -> None:
        self.ref_id = ref_id
        self.query = query
        self.result_format = result_format
        self.alias = alias
        self.hide = hide
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {"refId": self.ref_id, "query": self.query,
                                      "rawQuery": True, "resultFormat": self.result_format}
        if self.alias is not None:
            payload["alias"] = self.alias
        if self.hide is not None:
            payload["hide"] = self.hide
        if self.datasource is not None:
            payload["datasource"] = self.datasource.to_json()
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        ds = data.get("datasource")
        alias = data.get("alias")
        return cls(ref_id=str(data.get("refId", "A")), query=str(data.get("query", "")),
                   result_format=str(data.get("resultFormat", "time_series")),
                   alias=None if alias is None else str(alias), hide=data.get("hide"),
                   datasource=DataSourceRef.from_json(ds) if isinstance(ds, dict) else None)


class InfluxQL(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder of an `InfluxQLQuery`, in the SDK's builder style. `table=True` asks Grafana
    for a table (one row per series) instead of time series."""

    def __init__(self, query: str, ref_id: str = "A", *, table: bool = False,
                 alias: str | None = None) -> None:
        self._internal = InfluxQLQuery(ref_id=ref_id, query=query,
                                       result_format="table" if table else "time_series",
                                       alias=alias, datasource=datasource_ref())

    def build(self) -> InfluxQLQuery:
        return self._internal


def _register() -> None:
    cogruntime.register_dataquery_variant(cogruntime.DataqueryConfig(
        identifier=DATASOURCE_TYPE, from_json_hook=InfluxQLQuery.from_json))


_register()


def to_json(obj: Any) -> Any:
    """The SDK object as plain JSON data (dicts, lists, strings, numbers)."""
    import json

    return json.loads(json.dumps(obj, cls=JSONEncoder))


Dashboard = dashboard_builders.Dashboard
Row = dashboard_builders.Row
ThresholdsConfig = dashboard_builders.ThresholdsConfig
TextBoxVariable = dashboard_builders.TextBoxVariable
ConstantVariable = dashboard_builders.ConstantVariable
QueryVariable = dashboard_builders.QueryVariable
DashboardModel = dashboard_models.Dashboard
Threshold = dashboard_models.Threshold
ThresholdsMode = dashboard_models.ThresholdsMode
VariableHide = dashboard_models.VariableHide

__all__ = ["ConstantVariable", "Dashboard", "DashboardModel", "InfluxQL", "InfluxQLQuery",
           "QueryVariable", "Row", "TextBoxVariable", "Threshold", "ThresholdsConfig",
           "ThresholdsMode", "VariableHide", "bargauge", "datasource_ref", "gauge", "piechart",
           "stat", "table", "timeseries", "to_json"]
