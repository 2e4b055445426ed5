"""Looking up stored keys for many requests at once.

A burst of first contacts asks the database for dozens of keys within a millisecond; one
query per request would check out a pooled connection each (spilling past the pool) and
pay a round trip each. Lookups that arrive while a query runs wait for the next one, which
asks for all of them: the batch grows with the load, as the inbox writer's commits do.
"""

from __future__ import annotations

import asyncio

from service.db.engine import Database
from service.remote.actors import stored_keys

StoredKey = tuple[str, str]


class BatchedKeyLookups:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._waiting: dict[str, list[asyncio.Future[StoredKey | None]]] = {}
        self._runner: asyncio.Task[None] | None = None

    async def get(self, key_id: str) -> StoredKey | None:
        """(owner, PEM) of the key if it was recorded, else None."""
        answer: asyncio.Future[StoredKey | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key_id, []).append(answer)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        return await answer

    async def _run(self) -> None:
        # One turn of the event loop lets the requests that arrived together join.
        await asyncio.sleep(0)
        while self._waiting:
            batch, self._waiting = self._waiting, {}
            try:
                async with self._database.session() as session:
                    found = await stored_keys(session, list(batch))
            except Exception as error:  # each waiting request answers for itself (a 503)
                for answers in batch.values():
                    for answer in answers:
                        if not answer.done():
                            answer.set_exception(error)
                continue
            for key_id, answers in batch.items():
                for answer in answers:
                    if not answer.done():
                        answer.set_result(found.get(key_id))
