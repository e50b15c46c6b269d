"""Who is calling, and the institutions the token may see."""

from __future__ import annotations

from fastapi import APIRouter

from central.api.deps import PrincipalDep, SettingsDep, Tenant, TenantDep
from central.api.models import BuildingOut, InstitutionDetail, InstitutionSummary, WhoAmI

router = APIRouter(prefix="/api/v1", tags=["institutions"])


@router.get("/whoami", tags=["auth"])
def whoami(principal: PrincipalDep) -> WhoAmI:
    """The calling token: its role and the institutions it may see."""
    return WhoAmI(token_id=principal.token_id, name=principal.name, role=principal.role,
                  institutions=None if principal.institutions is None
                  else sorted(principal.institutions))


@router.get("/institutions")
def list_institutions(settings: SettingsDep, principal: PrincipalDep
                      ) -> list[InstitutionSummary]:
    """The institutions the token may see."""
    return [InstitutionSummary(
        id=t.id, name=t.config.institution.name, type=t.config.institution.type.value,
        timezone=t.config.institution.timezone, buildings=len(t.config.buildings),
        meters=len(t.config.meters)) for t in settings.tenants.values() if principal.sees(t.id)]


def building_out(t: Tenant) -> list[BuildingOut]:
    return [BuildingOut(id=b.id, name=b.name, floor_area_m2=b.floor_area_m2,
                        quota_class=b.quota_class,
                        meters=sum(1 for m in t.config.meters if m.building == b.id))
            for b in t.config.buildings]


@router.get("/institutions/{iid}")
def get_institution(t: TenantDep) -> InstitutionDetail:
    info = t.config.institution
    return InstitutionDetail(
        id=info.id, name=info.name, type=info.type.value, timezone=info.timezone,
        coefficient_profile=info.coefficient_profile, buildings=building_out(t),
        energy_users=t.config.energy_users,
        targets={str(y): v.model_dump() for y, v in t.config.targets.items()})


@router.get("/institutions/{iid}/buildings")
def get_buildings(t: TenantDep) -> list[BuildingOut]:
    return building_out(t)
