"""The instance actor's key, created once and shared by every API and worker process."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from federation.activitypub.instance_actor import instance_key_id
from federation.activitypub.urls import InstanceUrls
from federation.signatures.keys import generate_rsa_key_pair
from service.db.engine import Database
from service.db.models import InstanceKey
from service.remote.documents import FetchSigner

INSTANCE_KEY_ROW = 1


async def instance_key(database: Database) -> InstanceKey:
    """The key row, created on first use; concurrent first uses agree on one key."""
    async with database.session() as session:
        key = await session.get(InstanceKey, INSTANCE_KEY_ROW)
        if key is not None:
            return key
    pair = generate_rsa_key_pair()
    try:
        async with database.transaction() as session:
            session.add(
                InstanceKey(
                    id=INSTANCE_KEY_ROW, private_pem=pair.private_pem, public_pem=pair.public_pem
                )
            )
    except IntegrityError:
        pass  # another process created it first; use theirs
    async with database.session() as session:
        key = await session.scalar(select(InstanceKey).where(InstanceKey.id == INSTANCE_KEY_ROW))
        assert key is not None
        return key


async def instance_signer(database: Database, urls: InstanceUrls) -> FetchSigner:
    key = await instance_key(database)
    return FetchSigner(instance_key_id(urls), key.private_pem)
