"""Admin routes: which model serves, and swapping it without downtime.

::

    GET  /v1/admin/models/xray     the serving model's metadata
    POST /v1/admin/models/xray     {"model_dir": "..."}: load, warm up, switch, drain, unload

A swap answers when the new model serves and the old one has finished every
request it had queued; a model directory that cannot be loaded (missing, not a
model, a path the file system refuses or the server may not read) answers 404 /
422 naming ``model_dir``, and the old model keeps serving.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from cv.errors import CustomsVisionError
from cv.inference_server.api_health import model_metadata
from cv.inference_server.deps import Admin, ServicesDep
from cv.inference_server.modelhost import SERVED_NAME

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class SwapRequest(BaseModel):
    """Which model directory to serve next."""

    model_dir: str = Field(
        min_length=1, max_length=4096, description="Model directory on the server's disk"
    )


@router.get(f"/models/{SERVED_NAME}")
def serving_model(services: ServicesDep, principal: Admin) -> dict[str, Any]:
    """The model that serves requests now."""
    return model_metadata(services.models.active)


@router.post(f"/models/{SERVED_NAME}")
async def swap_model(body: SwapRequest, services: ServicesDep, principal: Admin) -> dict[str, Any]:
    """Loads ``model_dir``, warms it up, switches to it, drains and unloads the old model."""
    try:
        loaded = await services.models.load(Path(body.model_dir))
    except CustomsVisionError as exc:
        # The answer's `field` names the request's field when the error names no other
        # (a missing directory names only its path).
        exc.field = exc.field or "model_dir"
        raise
    return model_metadata(loaded)
