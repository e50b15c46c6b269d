"""The central's HTTP API v1 and the built-in page's shell (FastAPI).

One central serves several institutions; every institution-scoped route has the
institution id in its path (`/api/v1/institutions/{iid}/...`) and is mounted behind
`central.auth.authorize()`: bearer token, institution scope (404 for an institution outside
the token's list, the same answer as for one that does not exist) and role (viewer reads,
engineer writes, admin manages tokens). Public: the page's HTML shell at `/` (no data in
it), `/healthz`, the OpenAPI schema and its viewers, and `/metrics` (the central's own
counters; the edges only when the operator enables it).

A route reads only through the `TenantReader` of its path's institution
(`central.reader`): another institution's rows are out of its reach by construction.

Routes are plain `def`, so FastAPI runs them in its thread pool and a slow year-to-date
query never stalls MQTT ingest on the event loop. "Now", "today" and "this year" come from
the injected clock, never from the wall clock, so a simulated institution shows simulated
days. Token expiry is wall-clock time.

Layout: `app` (the factory: wiring only), `deps` (the shared `Annotated` dependencies),
`models` (request and response models), `params` (time parameters, downsampling),
`routes/` (one module per resource, each with a module-level `router`).
"""

from central.api.app import API_VERSION, PREFIX, create_app
from central.api.deps import ApiSettings, ReaderDep, Tenant, TenantDep

__all__ = ["API_VERSION", "PREFIX", "ApiSettings", "ReaderDep", "Tenant", "TenantDep",
           "create_app"]
