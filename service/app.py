"""The FastAPI application: one factory, used by `fedirelay serve`, `fedirelay run` and tests."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from redis.exceptions import RedisError

from federation.urls import InstanceUrls
from service.body_limits import BodySizeLimit
from service.db.engine import Database
from service.job_queue import JobQueue
from service.logging_setup import RequestLogContext, configure_logging
from service.problems import install_problem_handlers
from service.routes import actors, admin_accounts, discovery, feeds, health
from service.routes import admin_federation, collections, inbox, objects
from service.routes import admin_monitoring, dashboard
from service.routes import metrics as metrics_routes
from service.routes import admin_posts, admin_routing, hooks, preview, tags
from service.routes import admin_analytics, admin_featured, admin_feeds, admin_migration
from service.routes import admin_deliveries, admin_mastodon_targets
from service.settings import Settings, get_settings
from service.webhook_intake import close_webhook_writer

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.database = Database(settings.effective_database_url)
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
    # First: routes are matched in order, and webhooks are the high-volume path.
    app.include_router(hooks.router)
    for router in (health.router, discovery.router, feeds.router, actors.router, admin_accounts.router):
        app.include_router(router)
    for router in (inbox.router, collections.router, objects.router, admin_federation.router):
        app.include_router(router)
    for router in (metrics_routes.router, admin_monitoring.router, dashboard.router):
        app.include_router(router)
    app.add_exception_handler(dashboard.LoginRequired, dashboard.login_redirect)
    for router in (admin_posts.router, admin_routing.router, preview.router, tags.router):
        app.include_router(router)
    for router in (admin_migration.router, admin_featured.router, admin_analytics.router, admin_feeds.router):
        app.include_router(router)
    for router in (admin_deliveries.router, admin_mastodon_targets.router):
        app.include_router(router)
    app.add_middleware(RequestLogContext)
    app.add_middleware(
        BodySizeLimit,
        webhook_limit=settings.max_webhook_body_bytes,
        inbox_limit=settings.max_inbox_body_bytes,
        default_limit=settings.max_admin_body_bytes,
    )
    return app
