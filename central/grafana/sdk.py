"""The slice of grafana-foundation-sdk 0.0.21 the dashboards use, plus a Flux query type.

Why this module exists:

- The SDK ships no InfluxDB query builder, so `FluxQuery` is one: a `Dataquery` with
  `refId`, `query` and the datasource, registered with the SDK's runtime under the
  `influxdb` datasource type so that `Dashboard.from_json` gives `FluxQuery` objects back
  (a round trip, not an `UnknownDataquery` bag).
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
    from grafana_foundation_sdk.builders import bargauge, piechart, stat, table, timeseries
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


class FluxQuery(cogvariants.Dataquery):
    """A Flux query of Grafana's InfluxDB datasource (query language Flux)."""

    def __init__(self, ref_id: str = "A", query: str = "", hide: bool | None = None,
                 datasource: DataSourceRef | None = None) -> None:
        self.ref_id = ref_id
        self.query = query
        self.hide = hide
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {"refId": self.ref_id, "query": self.query}
        if self.hide is not None:
            payload["hide"] = self.hide
        if self.datasource is not None:
            payload["datasource"] = self.datasource.to_json()
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        ds = data.get("datasource")
        return cls(ref_id=str(data.get("refId", "A")), query=str(data.get("query", "")),
                   hide=data.get("hide"),
                   datasource=DataSourceRef.from_json(ds) if isinstance(ds, dict) else None)


class Flux(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder of a `FluxQuery`, in the SDK's builder style."""

    def __init__(self, query: str, ref_id: str = "A") -> None:
        self._internal = FluxQuery(ref_id=ref_id, query=query, datasource=datasource_ref())

    def build(self) -> FluxQuery:
        return self._internal


def _register() -> None:
    cogruntime.register_dataquery_variant(cogruntime.DataqueryConfig(
        identifier=DATASOURCE_TYPE, from_json_hook=FluxQuery.from_json))


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

__all__ = ["ConstantVariable", "Dashboard", "DashboardModel", "Flux", "FluxQuery",
           "QueryVariable", "Row", "TextBoxVariable", "Threshold", "ThresholdsConfig",
           "ThresholdsMode", "VariableHide", "bargauge", "datasource_ref", "piechart", "stat",
           "table", "timeseries", "to_json"]
