"""The /ops dashboard: login and session cookie, CSRF, security headers, pages and actions."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from bench.harness.relay_harness import asgi_client
from service.accounts.store import AccountStore
from service.app import create_app
from service.db.engine import Database
from service.db.models import Account, Activity, DestinationHost, Follower, Post
from service.runtime.settings import Settings
from service.web.dashboard.charts import Series, horizontal_bars, line_chart, stacked_bars
from service.web.dashboard.session import SESSION_COOKIE, issue_session, read_session
from tests.conftest import ADMIN_TOKEN

NOW = datetime.now(UTC)
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


async def log_in(client: httpx.AsyncClient, token: str = ADMIN_TOKEN) -> httpx.Response:
    page = await client.get("/ops/login")
    return await client.post("/ops/login", data={"token": token, "csrf": csrf_of(page.text)})


async def dashboard_csrf(client: httpx.AsyncClient) -> str:
    page = await client.get("/ops")
    assert page.status_code == 200
    return csrf_of(page.text)


async def add_account(database: Database, handle: str = "news") -> Account:
    async with database.transaction() as session:
        return await AccountStore(session).create(handle)


async def add_scheduled_post(database: Database, account: Account) -> Post:
    async with database.transaction() as session:
        post = Post(
            account_id=account.id,
            object_uri=f"http://relay.test/objects/{uuid.uuid4()}",
            source="api",
            source_id=str(uuid.uuid4()),
            document={"type": "Note", "name": "Launch <b>day</b>"},
            state="scheduled",
            scheduled_at=NOW + timedelta(days=1),
        )
        session.add(post)
    return post


async def test_the_dashboard_sends_strangers_to_the_login_form(client: httpx.AsyncClient) -> None:
    response = await client.get("/ops")

    assert response.status_code == 303
    assert response.headers["location"] == "/ops/login"


async def test_login_sets_a_signed_httponly_strict_cookie_not_the_token(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    response = await log_in(client)

    assert response.status_code == 303 and response.headers["location"] == "/ops"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    value = client.cookies[SESSION_COOKIE]
    assert ADMIN_TOKEN not in value
    assert read_session(settings, value) is not None
    assert (await client.get("/ops")).status_code == 200


async def test_cookies_are_secure_when_the_relay_is_served_over_https(settings: Settings) -> None:
    settings = settings.model_copy(update={"base_url": "https://relay.example"})
    app = create_app(settings)
    async with app.router.lifespan_context(app), asgi_client(app, settings.base_url) as http:
        response = await log_in(http)

    assert "Secure" in response.headers["set-cookie"]


async def test_a_wrong_token_is_refused(client: httpx.AsyncClient) -> None:
    response = await log_in(client, token="not-the-token")
    page = await client.get(response.headers["location"])

    assert response.headers["location"] == "/ops/login?failed=true"
    assert SESSION_COOKIE not in client.cookies
    assert page.status_code == 401 and "not right" in page.text


async def test_login_without_its_csrf_token_is_forbidden(client: httpx.AsyncClient) -> None:
    await client.get("/ops/login")
    response = await client.post("/ops/login", data={"token": ADMIN_TOKEN, "csrf": "forged"})

    assert response.status_code == 403
    assert response.json()["type"].endswith("/csrf")


async def test_a_tampered_or_expired_session_is_sent_to_login(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    genuine = issue_session(settings)
    tampered = genuine[:-1] + ("0" if genuine[-1] != "0" else "1")
    expired = issue_session(settings, now=NOW.timestamp() - 13 * 3600)

    for value in (tampered, expired, ADMIN_TOKEN):
        client.cookies.set(SESSION_COOKIE, value)
        assert (await client.get("/ops")).status_code == 303


async def test_changing_the_admin_token_ends_every_session(settings: Settings) -> None:
    value = issue_session(settings)
    rotated = settings.model_copy(update={"admin_token": "another-token-9876543210"})

    assert read_session(settings, value) is not None
    assert read_session(rotated, value) is None


async def test_a_session_may_read_the_admin_api_but_not_change_it(
    client: httpx.AsyncClient,
) -> None:
    await log_in(client)

    read = await client.get("/api/admin/monitoring/queue")
    write = await client.post("/api/admin/accounts", json={"handle": "sneaky"})

    assert read.status_code == 200
    assert write.status_code == 401


async def test_pages_carry_a_strict_content_security_policy_and_no_external_assets(
    client: httpx.AsyncClient,
) -> None:
    await log_in(client)
    for path in ("/ops/login", "/ops"):
        response = await client.get(path)
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        assert not re.search(r'(src|href)="(https?:)?//', response.text)
        assert "<style" not in response.text and " style=" not in response.text
        assert "<script>" not in response.text


async def test_static_assets_are_served_from_the_relay_itself(client: httpx.AsyncClient) -> None:
    css = await client.get("/ops/static/ops.css")
    script = await client.get("/ops/static/ops.js")
    missing = await client.get("/ops/static/../settings.py")

    assert css.headers["content-type"].startswith("text/css")
    assert script.headers["content-type"].startswith("text/javascript")
    assert not re.search(r"https?://", script.text + css.text)
    assert missing.status_code == 404


async def test_the_overview_shows_hosts_dead_letters_schedule_and_charts_escaped(
    client: httpx.AsyncClient, database: Database
) -> None:
    account = await add_account(database)
    await add_scheduled_post(database, account)
    async with database.transaction() as session:
        session.add(
            DestinationHost(
                host="broken.example",
                health="failing",
                failing_since=NOW - timedelta(hours=5),
                consecutive_failures=12,
                last_error="<script>alert(1)</script>",
            )
        )
    await log_in(client)

    page = (await client.get("/ops")).text

    assert "broken.example" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "Launch &lt;b&gt;day&lt;/b&gt;" in page
    assert page.count("<svg") == 2  # interactions appear once a post has some
    assert 'action="/ops/actions/hosts/broken.example/pause"' in page
    assert "1 destination host(s) failing" in page


async def test_actions_without_the_csrf_token_are_refused(
    client: httpx.AsyncClient, database: Database
) -> None:
    await add_account(database)
    await log_in(client)

    response = await client.post("/ops/actions/accounts/news/pause", data={"csrf": "nope"})

    assert response.status_code == 403
    async with database.session() as session:
        assert (await session.scalar(select(Account.paused))) is False


async def test_actions_from_another_origin_are_refused(
    client: httpx.AsyncClient, database: Database
) -> None:
    await add_account(database)
    await log_in(client)
    csrf = await dashboard_csrf(client)

    response = await client.post(
        "/ops/actions/accounts/news/pause",
        data={"csrf": csrf},
        headers={"Origin": "https://evil.example"},
    )

    assert response.status_code == 403


async def test_pausing_and_resuming_an_account(
    client: httpx.AsyncClient, database: Database
) -> None:
    await add_account(database)
    await log_in(client)
    csrf = await dashboard_csrf(client)

    paused = await client.post("/ops/actions/accounts/news/pause", data={"csrf": csrf})
    async with database.session() as session:
        state_after_pause = await session.scalar(select(Account.paused))
    page = (await client.get(paused.headers["location"])).text
    await client.post("/ops/actions/accounts/news/resume", data={"csrf": csrf})
    async with database.session() as session:
        state_after_resume = await session.scalar(select(Account.paused))

    assert paused.status_code == 303
    assert (state_after_pause, state_after_resume) == (True, False)
    assert "Account paused" in page


async def test_cancelling_and_rescheduling_a_scheduled_post(
    client: httpx.AsyncClient, database: Database
) -> None:
    account = await add_account(database)
    moved = await add_scheduled_post(database, account)
    dropped = await add_scheduled_post(database, account)
    await log_in(client)
    csrf = await dashboard_csrf(client)

    await client.post(
        f"/ops/actions/scheduled/{moved.id}/reschedule",
        data={"csrf": csrf, "when": "2031-05-04T09:30"},
    )
    cancel = await client.post(f"/ops/actions/scheduled/{dropped.id}/cancel", data={"csrf": csrf})
    again = await client.post(f"/ops/actions/scheduled/{dropped.id}/cancel", data={"csrf": csrf})

    async with database.session() as session:
        rows = {post.id: post for post in (await session.scalars(select(Post))).all()}
    assert rows[moved.id].scheduled_at == datetime(2031, 5, 4, 9, 30, tzinfo=UTC)
    assert rows[dropped.id].state == "cancelled"
    assert "done=cancelled" in cancel.headers["location"]
    assert "done=failed" in again.headers["location"]


async def test_a_bad_reschedule_time_is_reported_not_crashed(
    client: httpx.AsyncClient, database: Database
) -> None:
    account = await add_account(database)
    post = await add_scheduled_post(database, account)
    await log_in(client)
    csrf = await dashboard_csrf(client)

    response = await client.post(
        f"/ops/actions/scheduled/{post.id}/reschedule", data={"csrf": csrf, "when": "soon"}
    )
    page = (await client.get(response.headers["location"])).text

    assert "could not be done" in page and "YYYY-MM-DDTHH:MM" in page


@pytest.mark.parametrize("answer", ["approve", "reject"])
async def test_answering_a_follow_request_publishes_the_answer(
    client: httpx.AsyncClient, database: Database, answer: str
) -> None:
    account = await add_account(database)
    async with database.transaction() as session:
        follower = Follower(
            account_id=account.id,
            actor_uri="https://remote.example/users/ana",
            host="remote.example",
            inbox="https://remote.example/users/ana/inbox",
            state="pending",
            follow_activity_id="https://remote.example/follows/1",
        )
        session.add(follower)
    await log_in(client)
    csrf = await dashboard_csrf(client)

    response = await client.post(
        f"/ops/actions/follows/{follower.id}/{answer}", data={"csrf": csrf}
    )

    async with database.session() as session:
        states = (await session.scalars(select(Follower.state))).all()
        kinds = (await session.scalars(select(Activity.activity_type))).all()
    assert response.status_code == 303
    assert states == (["accepted"] if answer == "approve" else [])
    assert kinds == ["Accept" if answer == "approve" else "Reject"]


async def test_the_post_page_explains_a_post_without_followers(
    client: httpx.AsyncClient, database: Database
) -> None:
    account = await add_account(database)
    async with database.transaction() as session:
        post = Post(
            account_id=account.id,
            object_uri="http://relay.test/objects/1",
            source="api",
            source_id="1",
            document={"type": "Note"},
            state="published",
            published_at=NOW,
        )
        session.add(post)
        await session.flush()
        session.add(
            Activity(
                activity_uri="http://relay.test/activities/1",
                account_id=account.id,
                post_id=post.id,
                activity_type="Create",
                document={},
            )
        )
    await log_in(client)

    page = await client.get(f"/ops/posts/{post.id}")
    missing = await client.get("/ops/posts/999")

    assert page.status_code == 200
    assert "no accepted followers" in page.text
    assert missing.status_code == 404
    async with database.session() as session:
        assert await session.scalar(select(func.count()).select_from(Activity)) == 1


def test_charts_escape_their_labels_and_draw_one_mark_per_value() -> None:
    bars = stacked_bars(
        "t", ["<a>", "b"], [Series("ok", [1, 2], "ok"), Series("bad", [0, 1], "bad")]
    )
    line = line_chart("followers", ["d1", "d2", "d3"], [1, 5, 3])
    rows = horizontal_bars("i", ['"x"'], [Series("likes", [4], "like")])

    assert "<a>" not in bars and "&lt;a&gt;" in bars
    assert bars.count("<rect") == 3
    assert line.count("<circle") == 3 and "<polyline" in line
    assert "&quot;x&quot;" in rows and rows.count("<rect") == 1
    assert "style=" not in bars + line + rows


def test_an_empty_chart_says_there_is_no_data() -> None:
    assert "No data yet" in stacked_bars("t", [], [])
