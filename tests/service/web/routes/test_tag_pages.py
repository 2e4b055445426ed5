"""Hashtag links in our posts lead to a page listing the posts with that tag."""

from __future__ import annotations

from datetime import UTC, datetime

from service.accounts.store import AccountStore
from service.db.models import Post

BROWSER = {"Accept": "text/html"}


async def add_post(database, source_id: str, tags: list[str], content: str) -> None:
    async with database.transaction() as session:
        store = AccountStore(session)
        account = await store.find("blog") or await store.create("blog")
        session.add(
            Post(
                account_id=account.id,
                object_uri=f"http://relay.test/objects/{source_id}",
                source="api",
                source_id=source_id,
                document={
                    "id": f"http://relay.test/objects/{source_id}",
                    "type": "Note",
                    "content": content,
                    "published": "2026-11-22T10:00:00Z",
                    "tag": [{"type": "Hashtag", "name": f"#{t}", "href": "x"} for t in tags],
                },
                state="published",
                published_at=datetime.now(UTC),
            )
        )


async def test_tag_page_lists_posts_with_the_tag(client, database):
    await add_post(database, "a", ["Release"], "<p>version 2</p>")
    await add_post(database, "b", ["Blog"], "<p>a story</p>")
    response = await client.get("/tags/release", headers=BROWSER)
    assert response.status_code == 200
    assert "version 2" in response.text
    assert "a story" not in response.text


async def test_tag_page_without_posts_says_so(client, database):
    response = await client.get("/tags/nothing", headers=BROWSER)
    assert response.status_code == 200
    assert "No posts with this tag yet." in response.text


async def test_tag_page_escapes_the_tag(client, database):
    response = await client.get("/tags/%3Cscript%3E", headers=BROWSER)
    assert "<script>" not in response.text
    assert "&lt;script&gt;" in response.text
