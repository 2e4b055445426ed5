"""The CMS webhook's `pinned` flag pins a post to the profile's featured posts, or unpins it."""

from __future__ import annotations

import pytest

from bench.harness.webhook_senders import (
    cms_body,
    create_account,
    posts,
    process_received,
    send_cms,
    with_webhook_secrets,
)
from service.runtime.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_webhook_secrets(settings)


async def test_a_post_published_with_pinned_is_featured(client, database, settings):
    await create_account(database, "blog", followers=0)
    await send_cms(client, cms_body(accounts=["blog"], pinned=True))
    await process_received(database, settings)
    [post] = await posts(database)
    assert post.pinned_at is not None


async def test_an_update_with_pinned_false_unpins(client, database, settings):
    await create_account(database, "blog", followers=0)
    await send_cms(client, cms_body(accounts=["blog"], pinned=True))
    await send_cms(client, cms_body(event="updated", accounts=["blog"], pinned=False))
    await process_received(database, settings)
    [post] = await posts(database)
    assert post.pinned_at is None


async def test_a_post_without_the_flag_is_not_pinned(client, database, settings):
    await create_account(database, "blog", followers=0)
    await send_cms(client, cms_body(accounts=["blog"]))
    await process_received(database, settings)
    [post] = await posts(database)
    assert post.pinned_at is None
