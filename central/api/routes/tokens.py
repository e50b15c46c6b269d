"""Token management: an admin of every institution only."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi import Path as PathParam

from central.api.deps import SettingsDep
from central.api.models import TokenCreated, TokenOut, TokenRequest
from central.auth import Authenticator, require_all_institutions

router = APIRouter(prefix="/api/v1/tokens", tags=["auth"],
                   dependencies=[Depends(require_all_institutions)])


def _auth(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


AuthDep = Annotated[Authenticator, Depends(_auth)]


@router.get("")
def list_tokens(auth: AuthDep) -> list[TokenOut]:
    """Every token (never its secret form). Needs an admin of every institution."""
    return [TokenOut(**i.as_dict()) for i in auth.tokens.all()]


@router.post("", status_code=201)
def create_token(request: TokenRequest, auth: AuthDep, settings: SettingsDep
                 ) -> TokenCreated:
    """Create a token; the response holds the bearer token, shown only this once."""
    if request.institutions is not None:
        unknown = sorted(set(request.institutions) - set(settings.tenants))
        if unknown:
            raise HTTPException(status_code=422, detail=f"institutions: unknown "
                                f"institution {unknown[0]!r}")
    info, raw = auth.issue(request.name, request.role, request.institutions,
                           ttl_s=request.ttl_s)
    return TokenCreated(**info.as_dict(), token=raw)


@router.delete("/{token_id}")
def revoke_token(token_id: Annotated[str, PathParam(pattern=r"^[0-9a-f]{1,64}$")],
                 auth: AuthDep) -> TokenOut:
    """Revoke a token; it is refused from the next request on."""
    if not auth.tokens.revoke(token_id, now=time.time()):
        raise HTTPException(status_code=404, detail=f"token_id: no token {token_id!r}")
    info = auth.tokens.get(token_id)
    assert info is not None
    return TokenOut(**info.as_dict())
