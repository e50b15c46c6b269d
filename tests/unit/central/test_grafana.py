"""Grafana as code: golden dashboard JSON, `from_json` round trips, provisioning files, and
`greenguard grafana push` against a loopback HTTP server that records every request."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import yaml

from central import codes
from central.grafana.alerts import RULES, provisioning
from central.grafana.dashboards import DASHBOARDS
from central.grafana.export import ALERTS_FILE, dashboards, export, render, stale
from central.grafana.push import GrafanaError, push
from central.grafana.sdk import DATASOURCE_UID, DashboardModel, InfluxQLQuery, to_json
from simulators.cli import main
from tests.httpstub import serving

ROOT = Path(__file__).resolve().parents[3]
COMMITTED = ROOT / "deploy" / "grafana" / "dashboards"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"


def _panels(data: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in data.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


# -- golden and round trip -------------------------------------------------------------------


def test_committed_dashboards_are_what_the_code_builds() -> None:
    """Golden: regenerate with `greenguard grafana export` after changing the dashboards."""
    assert stale(COMMITTED) == []
    assert sorted(p.name for p in COMMITTED.glob("*.json")) == sorted(
        f"{spec.slug}.json" for spec in DASHBOARDS)


def test_stale_files_are_reported(tmp_path: Path) -> None:
    tmp_path = tmp_path / "dashboards"
    export(tmp_path)
    assert stale(tmp_path) == []
    (tmp_path / "waste.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "old.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "alarms.json").unlink()
    (tmp_path.parent / ALERTS_FILE).write_text("groups: []\n", encoding="utf-8")
    assert stale(tmp_path) == ["alarms.json", "old.json", str(ALERTS_FILE), "waste.json"]


@pytest.mark.parametrize("spec", DASHBOARDS, ids=lambda s: s.slug)
def test_from_json_round_trip_keeps_every_field(spec: Any) -> None:
    data = to_json(spec.build())
    model = DashboardModel.from_json(json.loads(json.dumps(data)))
    assert to_json(model) == data
    targets = [t for panel in model.panels or [] for t in getattr(panel, "targets", None) or []]
    assert targets, "every dashboard has queries"
    assert all(isinstance(t, InfluxQLQuery) for t in targets)


def test_the_committed_files_load_back_into_the_sdk() -> None:
    for path in sorted(COMMITTED.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert render(to_json(DashboardModel.from_json(data))) == path.read_text(
            encoding="utf-8"), path.name


# -- what the dashboards contain -------------------------------------------------------------


def test_the_views_of_issue_7_and_the_compliance_dashboard_are_all_there() -> None:
    built = dashboards()
    assert next(iter(built)) == "compliance"  # 考核总览 first
    assert set(built) == {"compliance", "overview", "energy", "ac-compliance", "after-hours",
                          "alarms", "waste", "edge-health", "district"}
    uids = [d["uid"] for d in built.values()]
    assert len(set(uids)) == len(uids)
    queries = {slug: "\n".join(t["query"] for p in _panels(d) for t in p.get("targets", []))
               for slug, d in built.items()}
    for key in ("kgce_per_m2", "kgce_per_person", "water_m3_per_person"):
        assert f'last("prorated_target_{key}")' in queries["compliance"]
        assert f'last("projected_{key}")' in queries["compliance"]
    assert 'last("score")' in queries["compliance"]
    assert 'last("coverage_days")' in queries["compliance"]
    assert """"point" = 'power_w'""" in queries["overview"]
    assert '"figure_item"' in queries["energy"]
    assert """"point" = 'setpoint_c'""" in queries["ac-compliance"]
    # after-hours figures are the central's (working calendar), not weekday arithmetic
    assert 'sum("after_hours_kwh")' in queries["after-hours"]
    assert '"sample"' not in queries["after-hours"]
    for name in ("alarm.leak", "alarm.lights_on", "alarm.bin_full"):
        assert f""""name" = '{name}'""" in queries["alarms"]
    assert """"point" = 'fill_pct'""" in queries["waste"]
    assert '"status"' in queries["edge-health"]
    # the district ranking filters on the figures' type and district tags
    assert '"type" =~ /^$type$/' in queries["district"]
    assert '"district" =~ /^$district$/' in queries["district"]


MEASUREMENTS = {"sample", "interval", "event", "figure", "figure_energy", "figure_item",
                "status"}


@pytest.mark.parametrize("slug", [s.slug for s in DASHBOARDS])
def test_panels_query_the_schema_through_the_provisioned_datasource(slug: str) -> None:
    data = dashboards()[slug]
    assert re.search(r"[\u4e00-\u9fff]", data["title"])  # zh-CN title
    names = {v["name"] for v in data["templating"]["list"]}
    for panel in _panels(data):
        assert panel["title"], panel
        assert panel.get("description"), panel
        assert panel["datasource"] == {"type": "influxdb", "uid": DATASOURCE_UID}
        for target in panel["targets"]:
            q = target["query"]
            assert target["datasource"]["uid"] == DATASOURCE_UID
            assert target["rawQuery"] is True
            assert "$timeFilter" in q
            assert set(re.findall(r'FROM "(\w+)"', q)) <= MEASUREMENTS
            if '"site"' in q:
                assert '"site" =~ /^$site$/' in q
                assert "site" in names
            if '"figure' in q or '"status"' in q:
                assert '"institution" =~ /^$institution$/' in q
                assert "institution" in names
            assert q.count("(") == q.count(")")
            assert "from(bucket" not in q  # no Flux left


def test_limits_come_from_the_code_tables() -> None:
    ac = dashboards()["ac-compliance"]
    policy = codes.policy()
    assert f"summer ≥ {policy.ac.summer_min_setpoint_c:g} °C" in ac["description"]
    steps = next(p for p in ac["panels"] if p["title"] == "空调设定温度")[
        "fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps][1:] == [policy.ac.winter_max_setpoint_c,
                                               policy.ac.summer_min_setpoint_c]


# -- alert rules ---------------------------------------------------------------------------


def test_alert_rules_are_provisioned_beside_the_dashboards() -> None:
    committed = yaml.safe_load((PROVISIONING / "alerting" / "greenguard.yaml").read_text(
        "utf-8"))
    assert committed == provisioning()
    (group,) = committed["groups"]
    assert {r["uid"] for r in group["rules"]} == {
        "gg-leak-open", "gg-edge-offline", "gg-meter-silent", "gg-projection-over-target"}
    for rule in group["rules"]:
        query, reduce_, threshold = rule["data"]
        assert query["datasourceUid"] == DATASOURCE_UID
        assert "$timeFilter" in query["model"]["query"]
        assert reduce_["model"]["expression"] == "A"
        assert threshold["model"]["expression"] == "B"
        assert rule["condition"] == "C"
    assert len(RULES) == len(group["rules"])


# -- provisioning ----------------------------------------------------------------------------


def test_datasource_provisioning_reads_everything_from_the_environment() -> None:
    text = (PROVISIONING / "datasources" / "greenguard-influxdb.yaml").read_text("utf-8")
    (ds,) = yaml.safe_load(text)["datasources"]
    assert ds["uid"] == DATASOURCE_UID
    assert ds["type"] == "influxdb"
    assert ds["jsonData"]["version"] == "InfluxQL"
    env_ref = re.compile(r"^(Token )?\$\{[A-Z_][A-Z0-9_]*\}$")
    for value in (ds["url"], ds["jsonData"]["dbName"], ds["secureJsonData"]["httpHeaderValue1"]):
        assert env_ref.match(value), value
    assert ds["jsonData"]["httpHeaderName1"] == "Authorization"


def test_dashboard_provider_points_at_a_folder_of_json_files() -> None:
    (provider,) = yaml.safe_load(
        (PROVISIONING / "dashboards" / "greenguard.yaml").read_text("utf-8"))["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/")
    assert provider["allowUiUpdates"] is False


# -- push ------------------------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    auth: str | None
    body: Any


@dataclass
class FakeGrafana:
    folder_exists: bool = False
    dashboard_status: int = 200
    requests: list[Recorded] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    state = FakeGrafana()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length) if length else b""
            state.requests.append(Recorded(self.command, self.path,
                                           self.headers.get("Authorization"),
                                           json.loads(raw) if raw else None))
            if self.command == "GET" and self.path == "/api/folders/greenguard":
                if state.folder_exists:
                    self._reply(200, {"uid": "greenguard", "title": "greenguard"})
                else:
                    self._reply(404, {"message": "folder not found"})
            elif self.command == "POST" and self.path == "/api/folders":
                self._reply(200, {"uid": "greenguard", "title": "greenguard", "id": 7})
            elif self.command == "POST" and self.path == "/api/dashboards/db":
                if state.dashboard_status != 200:
                    self._reply(state.dashboard_status, {"message": "invalid API key"})
                    return
                uid = state.requests[-1].body["dashboard"]["uid"]
                self._reply(200, {"status": "success", "uid": uid, "version": 3,
                                  "url": f"/d/{uid}/x", "id": 1})
            else:
                self._reply(404, {"message": "not found"})

        do_GET = do_POST = _handle  # noqa: N815 - http.server's naming

        def log_message(self, format: str, *args: Any) -> None:
            return

    with serving(Handler, "fake-grafana") as state.port:
        yield state


def test_push_creates_the_folder_then_every_dashboard(grafana: FakeGrafana) -> None:
    built = dashboards()
    pushed = push(grafana.url, "glsa_test", built)
    assert [(r.method, r.path) for r in grafana.requests] == [
        ("GET", "/api/folders/greenguard"), ("POST", "/api/folders"),
        *[("POST", "/api/dashboards/db")] * len(built)]
    assert {r.auth for r in grafana.requests} == {"Bearer glsa_test"}
    assert grafana.requests[1].body == {"title": "greenguard 节能监管", "uid": "greenguard"}
    bodies = [r.body for r in grafana.requests[2:]]
    assert [b["dashboard"] for b in bodies] == list(built.values())
    assert {(b["folderUid"], b["overwrite"]) for b in bodies} == {("greenguard", True)}
    assert [(p.slug, p.uid, p.version) for p in pushed] == [
        (slug, d["uid"], 3) for slug, d in built.items()]


def test_push_into_an_existing_folder_creates_no_folder(grafana: FakeGrafana) -> None:
    grafana.folder_exists = True
    push(grafana.url, "t", {"waste": dashboards()["waste"]})
    assert [(r.method, r.path) for r in grafana.requests] == [
        ("GET", "/api/folders/greenguard"), ("POST", "/api/dashboards/db")]


def test_a_refused_push_raises_with_the_status(grafana: FakeGrafana) -> None:
    grafana.dashboard_status = 401
    with pytest.raises(GrafanaError, match="HTTP 401") as err:
        push(grafana.url, "wrong", dashboards())
    assert err.value.status == 401
    assert len(grafana.requests) == 3  # stopped at the first refused dashboard


def test_cli_push_reads_the_token_from_the_named_variable(
        grafana: FakeGrafana, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MY_GRAFANA_TOKEN", "glsa_from_env")
    assert main(["grafana", "push", "--url", grafana.url, "--token-env",
                 "MY_GRAFANA_TOKEN"]) == 0
    assert {r.auth for r in grafana.requests} == {"Bearer glsa_from_env"}
    assert "overview: uid gg-overview version 3" in capsys.readouterr().out
    monkeypatch.delenv("MY_GRAFANA_TOKEN")
    assert main(["grafana", "push", "--url", grafana.url, "--token-env",
                 "MY_GRAFANA_TOKEN"]) == 2
    assert "MY_GRAFANA_TOKEN is not set" in capsys.readouterr().err
    grafana.dashboard_status = 403
    monkeypatch.setenv("GRAFANA_TOKEN", "t")
    assert main(["grafana", "push", "--url", grafana.url]) == 1
    assert "HTTP 403" in capsys.readouterr().err


def test_cli_export_writes_and_checks(tmp_path: Path) -> None:
    out = tmp_path / "dashboards"
    assert main(["grafana", "export", "--out", str(out)]) == 0
    for spec in DASHBOARDS:
        assert (out / f"{spec.slug}.json").read_text("utf-8") == (
            COMMITTED / f"{spec.slug}.json").read_text("utf-8")
    assert (tmp_path / ALERTS_FILE).read_text("utf-8") == (
        PROVISIONING / "alerting" / "greenguard.yaml").read_text("utf-8")
    assert main(["grafana", "export", "--out", str(out), "--check"]) == 0
    (out / "energy.json").write_text("{}\n", encoding="utf-8")
    assert main(["grafana", "export", "--out", str(out), "--check"]) == 1


def test_the_docs_list_every_dashboard_panel_query_and_rule() -> None:
    doc = (ROOT / "docs" / "grafana.md").read_text("utf-8")
    for slug, data in dashboards().items():
        assert f"`{slug}.json`" in doc
        for panel in _panels(data):
            assert f"**{panel['title']}**" in doc, panel["title"]
            for target in panel["targets"]:
                assert target["query"] in doc, target["query"]
    for rule in RULES:
        assert f"`{rule.uid}`" in doc


def test_cli_push_into_a_named_folder(grafana: FakeGrafana,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/grafana.md: `--folder-uid` and `--timeout`."""
    monkeypatch.setenv("GRAFANA_TOKEN", "t")
    assert main(["grafana", "push", "--url", grafana.url, "--folder-uid", "ops",
                 "--timeout", "5"]) == 0
    assert [(r.method, r.path) for r in grafana.requests[:2]] == [
        ("GET", "/api/folders/ops"), ("POST", "/api/folders")]
    assert grafana.requests[1].body["uid"] == "ops"
    assert {r.body["folderUid"] for r in grafana.requests[2:]} == {"ops"}
