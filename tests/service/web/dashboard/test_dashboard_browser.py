"""The dashboard in a real browser: log in, watch a failing host appear, retry its dead letter.

Uses Debian's Chromium through Playwright (no browser download). Screenshots land in
tests/artifacts/ for a human to look at (desktop and phone width).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from bench.harness.delivery_scenarios import (
    connect_queue,
    create_account,
    fast_settings,
    follow_from_fleet,
    note_activity,
    publish,
    trust_account_key,
    wait_until_finished,
)
from bench.harness.fleet import Fleet
from bench.harness.fleet_faults import Fault
from bench.harness.relay_harness import loopback_settings, running_api, running_worker
from federation.activitypub.urls import InstanceUrls
from service.db.engine import Database
from service.db.models import Delivery
from service.runtime.settings import Settings
from tests.conftest import ADMIN_TOKEN

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).parent / "artifacts"

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="Playwright for Python is not installed"
)
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="no Chromium installed (apt-get install chromium)"
    ),
]


async def delivery_state(database: Database, delivery_id: int) -> str:
    async with database.session() as session:
        return str(await session.scalar(select(Delivery.state).where(Delivery.id == delivery_id)))


async def test_an_operator_sees_a_failing_host_and_retries_its_dead_letter(
    database: Database, settings: Settings
) -> None:
    if database.url.startswith("postgresql"):
        pytest.skip("one backend is enough for the browser walk-through")
    ARTIFACTS.mkdir(exist_ok=True)
    settings = fast_settings(loopback_settings(settings), delivery_max_retries=1)
    urls = InstanceUrls(settings.base_url)
    account = await create_account(database)
    queue = await connect_queue(settings)

    async with (
        Fleet(hosts=3, followers=1) as fleet,
        running_api(settings) as base_url,
        running_worker(settings),
        playwright_api.async_playwright() as playwright,
    ):
        trust_account_key(fleet, account, urls)
        await follow_from_fleet(database, account, fleet)
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})

        # Log in: the dashboard sends a stranger to the login form.
        await page.goto(f"{base_url}/ops")
        assert page.url.endswith("/ops/login")
        await page.fill("#token", ADMIN_TOKEN)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base_url}/ops")
        assert await page.locator("#hosts .empty-state").inner_text() == "Every host is healthy."

        # One fleet server starts failing; a post fans out and its delivery there dies.
        broken = fleet.hosts[0]
        await fleet.inject(Fault.server_error(), hosts=[broken])
        document = note_activity(urls, account)
        published = await publish(database, account, document, queue)
        await wait_until_finished(database, published.activity_row_id, timeout=30)

        # The page refreshes itself: the failing host and its dead letter appear unprompted.
        host_row = page.locator(f'#hosts tr[data-host="{broken.domain}"]')
        await host_row.wait_for(timeout=30_000)
        assert "failing" in await host_row.inner_text()
        letter_row = page.locator("#dead-letters tr[data-delivery]")
        await letter_row.first.wait_for(timeout=30_000)
        delivery_id = int(await letter_row.first.get_attribute("data-delivery") or 0)
        assert await delivery_state(database, delivery_id) == "dead"
        await page.screenshot(
            path=str(ARTIFACTS / "dashboard-failing-host-desktop.png"), full_page=True
        )

        phone = await browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
        await phone.context.add_cookies(await page.context.cookies())
        await phone.goto(f"{base_url}/ops")
        await phone.screenshot(
            path=str(ARTIFACTS / "dashboard-failing-host-phone.png"), full_page=True
        )
        # No sideways scrolling of the whole page on a phone (wide tables scroll on their own).
        assert await phone.evaluate("document.documentElement.scrollWidth") <= 390 + 1

        # The server recovers; the operator presses Retry on the dead letter.
        await fleet.clear_faults([broken])
        await letter_row.first.locator("button", has_text="Retry").click()
        await page.wait_for_url(f"{base_url}/ops?done=retried&n=1#dead-letters")
        assert "queued for delivery again" in await page.locator(".notice.ok").inner_text()

        arrivals = await fleet.wait_for(document["id"], count=3, timeout=30)
        deadline = time.monotonic() + 30
        while await delivery_state(database, delivery_id) != "delivered":
            assert time.monotonic() < deadline, "the retried delivery was not delivered"
            await page.wait_for_timeout(100)
        await page.locator("#dead-letters .empty-state").wait_for(timeout=30_000)
        await host_row.wait_for(state="detached", timeout=30_000)
        await page.screenshot(
            path=str(ARTIFACTS / "dashboard-recovered-desktop.png"), full_page=True
        )

        # The post page tells where the post went.
        await page.goto(f"{base_url}/ops#posts")
        await browser.close()

    await queue.close()
    assert {arrival.host for arrival in arrivals} >= {broken.domain} or len(arrivals) == 3
    assert all(arrival.verified for arrival in arrivals)
