"""Admin API of the delivery engine: the delivery record, dead letters, retry and discard."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select

from service.db.models import Activity, Delivery, Post
from service.delivery.hosts import set_host_paused
from service.delivery.operator_actions import (
    DISCARDABLE_STATES,
    RETRYABLE_STATES,
    Selection,
    activity_record,
    discard_deliveries,
    list_dead_letters,
    queue_status,
    retry_deliveries,
    wake_activities,
)
from service.web.dependencies import (
    AdminDep,
    DatabaseDep,
    OptionalRowIdQuery,
    QueueDep,
    RowId,
    SessionDep,
)
from service.web.problems import Problem

router = APIRouter(prefix="/api/admin", tags=["admin: deliveries"], dependencies=[AdminDep])


class BulkSelection(BaseModel):
    """Exactly one of: `host` (its dead and parked deliveries) or `all: true` (every dead
    letter)."""

    host: str | None = Field(None, min_length=1, max_length=255)
    all: bool = False

    @model_validator(mode="after")
    def _exactly_one(self) -> BulkSelection:
        if (self.host is None) == (not self.all):
            raise ValueError("give either host or all=true")
        return self

    def selection(self) -> Selection:
        return Selection(host=self.host, all_dead=self.all)


@router.get("/deliveries/status", summary="Deliveries by state, what is due, troubled hosts")
async def status(session: SessionDep) -> dict[str, Any]:
    return await queue_status(session)


@router.get("/deliveries/dead", summary="Dead letters, newest first, with their attempts")
async def dead_letters(
    session: SessionDep,
    account: Annotated[str | None, Query(max_length=64)] = None,
    activity_id: OptionalRowIdQuery = None,
    post_id: OptionalRowIdQuery = None,
    host: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before_id: OptionalRowIdQuery = None,
) -> list[dict[str, Any]]:
    return await list_dead_letters(
        session,
        account_handle=account,
        activity_id=activity_id,
        post_id=post_id,
        host=host,
        limit=limit,
        before_id=before_id,
    )


async def _one(session: SessionDep, delivery_id: RowId) -> Delivery:
    delivery = await session.get(Delivery, delivery_id)
    if delivery is None:
        raise Problem(404, f"no delivery {delivery_id}", type_="not-found")
    return delivery


@router.post("/deliveries/{delivery_id}/retry", summary="Try one delivery again from scratch")
async def retry_one(delivery_id: RowId, database: DatabaseDep, queue: QueueDep) -> dict[str, Any]:
    async with database.transaction() as session:
        delivery = await _one(session, delivery_id)
        if delivery.state not in RETRYABLE_STATES:
            raise Problem(
                409, f"delivery is {delivery.state}", type_="delivery-state", state=delivery.state
            )
        woken = await retry_deliveries(session, Selection(delivery_ids=[delivery_id]))
    await wake_activities(queue, woken)
    return {"retried": 1}


@router.post("/deliveries/{delivery_id}/discard", summary="Give up on one delivery")
async def discard_one(delivery_id: RowId, database: DatabaseDep) -> dict[str, Any]:
    async with database.transaction() as session:
        delivery = await _one(session, delivery_id)
        if delivery.state not in DISCARDABLE_STATES:
            raise Problem(
                409, f"delivery is {delivery.state}", type_="delivery-state", state=delivery.state
            )
        await discard_deliveries(session, Selection(delivery_ids=[delivery_id]))
    return {"discarded": 1}


@router.post("/deliveries/retry", summary="Retry a host's dead and parked deliveries, or all dead")
async def retry_many(body: BulkSelection, database: DatabaseDep, queue: QueueDep) -> dict[str, Any]:
    async with database.transaction() as session:
        woken = await retry_deliveries(session, body.selection())
    await wake_activities(queue, woken)
    return {"activities": len(woken)}


@router.post(
    "/deliveries/discard", summary="Discard a host's dead and parked deliveries, or all dead"
)
async def discard_many(body: BulkSelection, database: DatabaseDep) -> dict[str, Any]:
    async with database.transaction() as session:
        count = await discard_deliveries(session, body.selection())
    return {"discarded": count}


@router.post("/hosts/{host}/pause", summary="Hold every delivery to a host (nothing fails)")
async def pause_host(host: str, database: DatabaseDep, queue: QueueDep) -> dict[str, Any]:
    async with database.transaction() as session:
        await set_host_paused(session, host, True)
    return {"host": host.lower(), "paused": True}


@router.post("/hosts/{host}/resume", summary="Release a paused host's deliveries")
async def resume_host(host: str, database: DatabaseDep, queue: QueueDep) -> dict[str, Any]:
    async with database.transaction() as session:
        woken = await set_host_paused(session, host, False)
    await wake_activities(queue, woken)
    return {"host": host.lower(), "paused": False, "activities": len(woken)}


@router.get("/activities/{activity_id}/deliveries", summary="Per-inbox delivery record")
async def activity_deliveries(activity_id: RowId, session: SessionDep) -> dict[str, Any]:
    activity = await session.get(Activity, activity_id)
    if activity is None:
        raise Problem(404, f"no activity {activity_id}", type_="not-found")
    return await activity_record(session, activity)


@router.get("/posts/{post_id}/deliveries", summary="Delivery record of every activity of a post")
async def post_deliveries(post_id: RowId, session: SessionDep) -> dict[str, Any]:
    post = await session.get(Post, post_id)
    if post is None:
        raise Problem(404, f"no post {post_id}", type_="not-found")
    activities = (
        await session.scalars(
            select(Activity).where(Activity.post_id == post_id).order_by(Activity.id)
        )
    ).all()
    return {
        "post_id": post_id,
        "object_uri": post.object_uri,
        "activities": [await activity_record(session, activity) for activity in activities],
    }
