"""RSS 2.0 and Atom 1.0 feeds of an account's published posts."""

from __future__ import annotations

from datetime import UTC, datetime
from xml.etree import ElementTree

import httpx
from sqlalchemy import update

from federation.rendering.account_feeds import FeedChannel, FeedItem, build_atom, build_rss
from federation.sources.feed_parsing import parse_feed
from service.db.engine import Database
from service.db.models import Post
from service.runtime.settings import Settings
from tests.federation_peers import create_account, create_post

ATOM = "{http://www.w3.org/2005/Atom}"
HOSTILE = 'Q&A <script>alert("x")</script> \x01\x0b end'


def _channel(*items: FeedItem) -> FeedChannel:
    return FeedChannel(
        title="News & <Updates>",
        description="All the news",
        page_url="https://relay.example/@news",
        feed_url="https://relay.example/@news.rss",
        author="News (@news@relay.example)",
        items=items,
    )


def _item(**changes: object) -> FeedItem:
    values: dict[str, object] = {
        "item_id": "https://relay.example/objects/1",
        "url": "https://blog.example/a?x=1&y=2",
        "title": "First",
        "content_html": "<p>Hello &amp; welcome</p>",
        "published": datetime(2024, 5, 1, 12, tzinfo=UTC),
        "tags": ("release",),
    }
    values.update(changes)
    return FeedItem(**values)  # type: ignore[arg-type]


def test_rss_escapes_markup_and_drops_characters_xml_cannot_carry():
    body = build_rss(_channel(_item(title=HOSTILE, content_html=HOSTILE)))
    root = ElementTree.fromstring(body)
    item = root.find("channel/item")
    assert item is not None
    assert item.findtext("title") == 'Q&A <script>alert("x")</script>  end'
    assert item.findtext("description") == 'Q&A <script>alert("x")</script>  end'
    assert b"<script>" not in body


def test_rss_item_carries_guid_link_date_and_categories():
    root = ElementTree.fromstring(build_rss(_channel(_item())))
    item = root.find("channel/item")
    assert item is not None
    assert item.findtext("guid") == "https://relay.example/objects/1"
    assert item.find("guid").get("isPermaLink") == "false"  # type: ignore[union-attr]
    assert item.findtext("link") == "https://blog.example/a?x=1&y=2"
    assert item.findtext("pubDate") == "Wed, 01 May 2024 12:00:00 GMT"
    assert [c.text for c in item.findall("category")] == ["release"]
    assert root.find(f"channel/{ATOM}link").get("rel") == "self"  # type: ignore[union-attr]


def test_atom_is_namespaced_and_has_the_required_elements():
    root = ElementTree.fromstring(build_atom(_channel(_item(title=HOSTILE))))
    assert root.tag == f"{ATOM}feed"
    assert root.findtext(f"{ATOM}id") == "https://relay.example/@news.rss"
    assert root.findtext(f"{ATOM}updated") == "2024-05-01T12:00:00Z"
    entry = root.find(f"{ATOM}entry")
    assert entry is not None
    assert entry.findtext(f"{ATOM}title") == 'Q&A <script>alert("x")</script>  end'
    assert entry.find(f"{ATOM}content").get("type") == "html"  # type: ignore[union-attr]
    assert entry.find(f"{ATOM}link").get("href") == "https://blog.example/a?x=1&y=2"  # type: ignore[union-attr]


def test_an_empty_atom_feed_is_still_valid():
    root = ElementTree.fromstring(build_atom(_channel()))
    assert root.findtext(f"{ATOM}updated") == "1970-01-01T00:00:00Z"
    assert root.find(f"{ATOM}entry") is None


def test_built_feeds_read_back_through_the_feed_parser():
    for body in (build_rss(_channel(_item())), build_atom(_channel(_item()))):
        parsed = parse_feed(body)
        assert [e.entry_id for e in parsed.entries] == ["https://relay.example/objects/1"]
        assert parsed.entries[0].content_html == "<p>Hello &amp; welcome</p>"
        assert parsed.entries[0].tags == ("release",)


async def test_account_rss_lists_published_posts_only(
    client: httpx.AsyncClient, database: Database, settings: Settings
):
    account = await create_account(database, "news", display_name="News & Co")
    published = await create_post(database, settings, account)
    deleted = await create_post(database, settings, account, state="deleted")
    response = await client.get("/@news.rss")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/rss+xml")
    root = ElementTree.fromstring(response.content)
    assert root.findtext("channel/title") == "News & Co"
    guids = [item.findtext("guid") for item in root.iter("item")]
    assert guids == [published.object_uri]
    assert deleted.object_uri not in response.text


async def test_account_atom_marks_edited_posts_updated(
    client: httpx.AsyncClient, database: Database, settings: Settings
):
    account = await create_account(database, "news")
    post = await create_post(database, settings, account)
    edited = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with database.transaction() as session:
        await session.execute(update(Post).where(Post.id == post.id).values(edited_at=edited))
    response = await client.get("/@news.atom")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    root = ElementTree.fromstring(response.content)
    assert root.findtext(f"{ATOM}id") == f"{settings.base_url}/@news.atom"
    entry = root.find(f"{ATOM}entry")
    assert entry is not None
    assert entry.findtext(f"{ATOM}updated") == "2030-01-02T03:04:05Z"
    assert entry.findtext(f"{ATOM}published") == "2024-05-01T12:00:00Z"


async def test_feed_of_an_unknown_account_is_a_404_problem(
    client: httpx.AsyncClient, database: Database
):
    response = await client.get("/@nobody.rss")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_profile_page_still_answers_beside_the_feeds(
    client: httpx.AsyncClient, database: Database
):
    await create_account(database, "news")
    response = await client.get("/@news")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
