"""AccountStore: accounts and their keys, the one place that creates, changes or deletes them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from federation.activitypub.handles import validate_handle
from federation.signatures.keys import generate_ed25519_key_pair, generate_rsa_key_pair
from service.db.models import Account, AccountKey, Follower, Post

RSA = "rsa"
ED25519 = "ed25519"


class AccountExists(Exception):
    pass


class AccountNotFound(Exception):
    pass


def active_key(account: Account, kind: str) -> AccountKey:
    for key in account.keys:
        if key.kind == kind and key.retired_at is None:
            return key
    raise LookupError(f"account {account.handle} has no active {kind} key")


class AccountStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, handle: str, **profile: Any) -> Account:
        validate_handle(handle)
        account = Account(handle=handle, **profile)
        account.keys = [self._new_key(RSA), self._new_key(ED25519)]
        self.session.add(account)
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise AccountExists(handle) from exc
        return account

    async def get(self, handle: str, *, fresh: bool = False) -> Account:
        account = await self.find(handle, fresh=fresh)
        if account is None:
            raise AccountNotFound(handle)
        return account

    async def find(self, handle: str, *, fresh: bool = False) -> Account | None:
        """With `fresh`, the row and its keys are read again even if the session holds them
        (values the database set on flush included), in one go: a second read could find
        the account deleted by a concurrent request in between."""
        statement = select(Account).where(Account.handle == handle)
        if fresh:
            statement = statement.execution_options(populate_existing=True)
        result = await self.session.execute(statement)
        return result.scalar_one_or_none()

    async def list(self) -> Sequence[Account]:
        result = await self.session.execute(select(Account).order_by(Account.handle))
        return result.scalars().all()

    async def _locked(self, handle: str) -> Account:
        """The account, its row locked until the transaction ends, read afresh with its
        keys (no later read can find it gone: SQLite reads outside the lock). Every
        change to an account takes this lock first, so concurrent changes (a key rotation
        and a deletion, say) take turns on PostgreSQL instead of deadlocking over the key
        rows; SQLite has a single writer anyway."""
        result = await self.session.execute(
            select(Account)
            .where(Account.handle == handle)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        account = result.scalar_one_or_none()
        if account is None:
            raise AccountNotFound(handle)
        return account

    async def update(self, handle: str, **changes: Any) -> Account:
        account = await self._locked(handle)
        for name, value in changes.items():
            setattr(account, name, value)
        account.updated_at = datetime.now(UTC)
        await self.session.flush()
        return account

    async def delete(self, handle: str) -> None:
        account = await self._locked(handle)
        await self.session.delete(account)
        await self.session.flush()

    async def rotate_keys(self, handle: str, kinds: Sequence[str] = (RSA, ED25519)) -> Account:
        """Retire the active keys of the given kinds and issue new ones; ids stay the same,
        so remote servers pick the new key up when they re-fetch the actor."""
        account = await self._locked(handle)
        now = datetime.now(UTC)
        for key in account.keys:
            if key.kind in kinds and key.retired_at is None:
                key.retired_at = now
        for kind in kinds:
            account.keys.append(self._new_key(kind))
        account.updated_at = now
        await self.session.flush()
        return account

    async def count(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(Account)) or 0)

    async def follower_count(self, account: Account) -> int:
        query = select(func.count()).where(
            Follower.account_id == account.id, Follower.state == "accepted"
        )
        return int(await self.session.scalar(query) or 0)

    async def published_post_count(self, account: Account | None = None) -> int:
        query = select(func.count()).select_from(Post).where(Post.state == "published")
        if account is not None:
            query = query.where(Post.account_id == account.id)
        return int(await self.session.scalar(query) or 0)

    @staticmethod
    def _new_key(kind: str) -> AccountKey:
        pair = generate_rsa_key_pair() if kind == RSA else generate_ed25519_key_pair()
        return AccountKey(kind=kind, private_pem=pair.private_pem, public_pem=pair.public_pem)
