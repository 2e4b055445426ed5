"""The FastAPI application: one factory, used by `fedirelay serve`, `fedirelay run` and tests."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from redis.exceptions import RedisError

from federation.activitypub.urls import InstanceUrls
from service.db.engine import Database
from service.runtime.job_queue import JobQueue
from service.runtime.settings import Settings, get_settings
from service.runtime.structured_logs import RequestLogContext, configure_logging
from service.web.admin_api import accounts as admin_accounts
from service.web.admin_api import analytics as admin_analytics
from service.web.admin_api import community as admin_community
from service.web.admin_api import deliveries as admin_deliveries
from service.web.admin_api import featured as admin_featured
from service.web.admin_api import federation as admin_federation
from service.web.admin_api import feeds as admin_feeds
from service.web.admin_api import mastodon_targets as admin_mastodon_targets
from service.web.admin_api import monitoring as admin_monitoring
from service.web.admin_api import posts as admin_posts
from service.web.admin_api import preview
from service.web.admin_api import routing as admin_routing
from service.web.admin_api import webhooks as admin_webhooks
from service.web.body_limits import BodySizeLimit
from service.web.dashboard import pages as dashboard
from service.web.problems import install_problem_handlers
from service.web.routes import (
    actors,
    collections,
    discovery,
    feeds,
    health,
    hooks,
    inbox,
    objects,
    tags,
)
from service.web.routes import metrics as metrics_routes
from service.webhooks.intake import close_webhook_writer
from service.webhooks.rejection_middleware import WebhookRejectionTracking
from service.webhooks.rejections import RejectionCounter

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.database = Database(settings.effective_database_url)
        app.state.rejection_counter = RejectionCounter(app.state.database)
        app.state.rejection_counter.start()
        app.state.queue = None
        if settings.redis_url:
            try:
                app.state.queue = await JobQueue.connect(settings.redis_url, settings.queue_name)
            except (OSError, RedisError) as exc:
                # Accept and persist work while Redis is away; sweepers enqueue it later.
                log.warning("Redis unreachable at startup: %s", exc)
        if gc.get_freeze_count() == 0:
            # The start-up heap (modules, routes, schemas) lives as long as the process; frozen
            # once, full collections skip it instead of walking it several times a minute under
            # load, each walk stalling every request in flight for 100 ms or more.
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            await close_webhook_writer(app.state)
            await app.state.rejection_counter.close()
            if app.state.queue is not None:
                await app.state.queue.close()
            await app.state.database.dispose()

    app = FastAPI(
        title="fedirelay",
        summary="Webhooks in, ActivityPub out.",
        description="Admin, webhook and federation API of the relay.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.urls = InstanceUrls(settings.base_url)
    install_problem_handlers(app)
    # Routes are matched in order: the high-volume paths (webhooks, inboxes) come first.
    routers = (
        hooks.router,
        inbox.router,
        health.router,
        discovery.router,
        feeds.router,
        actors.router,
        tags.router,
        collections.router,
        objects.router,
        metrics_routes.router,
        dashboard.router,
        admin_accounts.router,
        admin_federation.router,
        admin_monitoring.router,
        admin_posts.router,
        admin_routing.router,
        preview.router,
        admin_community.router,
        admin_featured.router,
        admin_analytics.router,
        admin_feeds.router,
        admin_deliveries.router,
        admin_webhooks.router,
        admin_mastodon_targets.router,
    )
    for router in routers:
        app.include_router(router)
    app.add_exception_handler(dashboard.LoginRequired, dashboard.login_redirect)
    app.add_middleware(RequestLogContext)
    app.add_middleware(
        BodySizeLimit,
        webhook_limit=settings.max_webhook_body_bytes,
        inbox_limit=settings.max_inbox_body_bytes,
        default_limit=settings.max_admin_body_bytes,
    )
    # Outside the body limit, so its 413s are counted too.
    app.add_middleware(
        WebhookRejectionTracking,
        counter=lambda: getattr(app.state, "rejection_counter", None),
    )
    return app
