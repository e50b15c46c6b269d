"""The one base of the central's read models: frozen pydantic models (a view is computed
from the stores and never edited after)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["View"]


class View(BaseModel):
    model_config = ConfigDict(frozen=True)
