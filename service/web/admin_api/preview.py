"""POST /api/preview: what an event would publish on each account, without publishing."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from service.publishing.preview import preview_events
from service.web.dependencies import AdminDep, SessionDep, UrlsDep
from service.webhooks.schemas import PostRequest, source_event_of

router = APIRouter(prefix="/api", tags=["admin: posts"], dependencies=[AdminDep])


class PreviewRequest(PostRequest):
    source: Literal["cms", "ghost", "api"] = Field(
        "cms", description="Route as if this source sent it (when `accounts` is empty)."
    )
    event: Literal["published", "updated", "unpublished"] = "published"


class PreviewAnswer(BaseModel):
    status: str = "dry_run"
    previews: list[dict[str, Any]] = Field(
        description="Per account: the activity and object, plain text, length and limit."
    )


@router.post("/preview", response_model=PreviewAnswer)
async def preview(body: PreviewRequest, session: SessionDep, urls: UrlsDep) -> PreviewAnswer:
    event = source_event_of(body, source=body.source, action=body.event, source_id=body.source_id)
    return PreviewAnswer(previews=await preview_events(session, urls, [event]))
