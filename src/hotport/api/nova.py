"""Nova-compatible `/v2.1` facade (being written: see issue 5)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v2.1", tags=["nova"])
