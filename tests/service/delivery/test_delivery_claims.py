"""Claims: a job's due deliveries are taken a claim's worth at a time, walking from a cursor."""

from __future__ import annotations

from datetime import UTC, datetime

from service.accounts.store import AccountStore
from service.db.engine import Database
from service.delivery.store import ClaimedDelivery, claim_due_sync
from service.publishing.activity_records import publish_activity

INBOXES = [f"https://host{number}.example/inbox" for number in range(5)]


async def publish_two_activities(database: Database) -> list[int]:
    async with database.transaction() as session:
        account = await AccountStore(session).create("blog")
        activity_ids = []
        for number in (1, 2):
            published = await publish_activity(
                session,
                account,
                {"id": f"http://relay.test/activities/{number}", "type": "Create"},
                audience=INBOXES,
            )
            activity_ids.append(published.activity_row_id)
    return activity_ids


async def claim(
    database: Database, activity_ids: list[int], *, limit: int, after_id: int = 0
) -> list[ClaimedDelivery]:
    async with database.transaction() as session:
        return await session.run_sync(
            lambda sync: claim_due_sync(
                sync,
                activity_ids,
                limit=limit,
                lease_seconds=60,
                now=datetime.now(UTC),
                after_id=after_id,
            )
        )


async def test_claims_from_a_cursor_take_every_delivery_of_several_activities_once(
    database: Database,
) -> None:
    activity_ids = await publish_two_activities(database)

    claimed: list[ClaimedDelivery] = []
    while batch := await claim(
        database, activity_ids, limit=3, after_id=claimed[-1].id if claimed else 0
    ):
        claimed.extend(batch)

    ids = [delivery.id for delivery in claimed]
    assert ids == sorted(set(ids))
    assert len(ids) == 2 * len(INBOXES)
    assert {delivery.activity_id for delivery in claimed} == set(activity_ids)


async def test_a_claim_from_a_cursor_leaves_the_deliveries_before_it(
    database: Database,
) -> None:
    activity_ids = await publish_two_activities(database)
    first = await claim(database, activity_ids, limit=1)
    cursor = first[0].id + 3

    claimed = await claim(database, activity_ids, limit=100, after_id=cursor)

    assert claimed
    assert all(delivery.id > cursor for delivery in claimed)
    assert len(claimed) == 2 * len(INBOXES) - 4
