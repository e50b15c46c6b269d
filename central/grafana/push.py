"""`greenguard grafana push`: upload the dashboards to a Grafana server with grafana-client.

The dashboards go into one folder (created when missing) with `overwrite: true`, so a push
is idempotent: pushing twice leaves the same dashboards, one new version each. The token is
a Grafana service-account token read from an environment variable, never from a flag.

    GrafanaError       a push failed; `.status` is the HTTP status when there was one
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from central.errors import CentralError

FOLDER_UID = "greenguard"
FOLDER_TITLE = "greenguard 节能监管"


class GrafanaError(CentralError):
    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Pushed:
    slug: str
    uid: str
    version: int | None
    url: str | None


def push(url: str, token: str, dashboards: Mapping[str, Mapping[str, Any]], *,
         folder_uid: str = FOLDER_UID, folder_title: str = FOLDER_TITLE,
         timeout_s: float = 10.0) -> list[Pushed]:
    """Create the folder if needed, then create or overwrite every dashboard."""
    from grafana_client.api import GrafanaApi  # type: ignore[import-untyped]
    from grafana_client.client import (  # type: ignore[import-untyped]
        GrafanaClientError,
        GrafanaException,
    )

    api = GrafanaApi.from_url(url, credential=token, timeout=timeout_s)
    try:
        try:
            api.folder.get_folder(folder_uid)
        except GrafanaClientError as exc:
            if exc.status_code != 404:
                raise
            api.folder.create_folder(folder_title, uid=folder_uid)
        out = []
        for slug, dashboard in dashboards.items():
            answer = api.dashboard.update_dashboard({
                "dashboard": dict(dashboard), "folderUid": folder_uid, "overwrite": True,
                "message": "greenguard grafana push"})
            answer = answer if isinstance(answer, dict) else {}
            out.append(Pushed(slug, str(dashboard.get("uid")), answer.get("version"),
                              answer.get("url")))
        return out
    except GrafanaException as exc:
        raise GrafanaError(f"Grafana at {url} refused: HTTP {exc.status_code}: "
                           f"{exc.message}", exc.status_code) from exc
    except Exception as exc:  # connection refused, TLS, timeout: niquests' own errors
        raise GrafanaError(f"cannot reach Grafana at {url}: {exc}") from exc
