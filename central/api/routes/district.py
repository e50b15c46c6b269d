"""The district view (central/district.py): every institution the token sees, ranked.

One route for the bureau's admin and dashboards. A token of some institutions gets those
institutions' rows only, ranked among themselves; a token of every institution gets them
all. Rows are kept for a minute (`RowCache`): each costs an institution's year-to-date
compliance. The page's district view and Grafana's district dashboard show the same
figures."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from central.api.deps import DistrictDep, SettingsDep
from central.district import DistrictView, RowCache, SortKey, build_district
from central.institution import InstitutionType

router = APIRouter(prefix="/api/v1", tags=["district"])


@router.get("/district", summary="All institutions the token sees, ranked")
def get_district(
    request: Request, members: DistrictDep, settings: SettingsDep,
    institution_type: Annotated[InstitutionType | None, Query(
        alias="type", description="only institutions of this type")] = None,
    region: Annotated[str | None, Query(
        min_length=1, max_length=100, description="a district name (institution.district) "
        "or a region code or its prefix (institution.region_code)",
        examples=["鹿城区", "3303"])] = None,
    sort: Annotated[SortKey, Query(description="the ranking: score and coverage high "
                                   "first, the figures low first; nulls last")] = "score",
    year: Annotated[int | None, Query(ge=2000, le=2100,
                                      description="default: the current year")] = None,
) -> DistrictView:
    cache: RowCache | None = getattr(request.app.state, "district_rows", None)
    if cache is None:  # one per app: rows up to a minute old (central/district.py RowCache)
        cache = request.app.state.district_rows = RowCache()
    return build_district(members, now=settings.clock.now(), year=year, sort=sort,
                          type_=institution_type, region=region, row=cache.row)
