"""Polling a Forgejo/Gitea repository for what webhooks do not bring.

Forgejo sends no webhook for stars, and tries a release webhook once without retrying. So for
each repository in `forge_repositories`, the relay compares the stargazers with the last poll
(new stars and crossed milestones become posts) and looks at recent releases for any the
webhook missed (the post row per release makes this idempotent). The first poll of a repository
only records a baseline: existing stars and releases are history, not news.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from federation.activitypub.timestamps import parse_timestamp
from federation.activitypub.urls import InstanceUrls
from federation.sources.events import PUBLISHED, PayloadError, SourceEvent
from federation.sources.forge_events import (
    FORGEJO,
    crossed_milestone,
    milestone_event,
    release_event_from,
    star_event,
)
from service.db.engine import Database
from service.db.models import ForgeRepositoryState
from service.polling.forge_api import ForgeClient
from service.publishing.post_lifecycle import PostPublisher, PublishOutcome, announce
from service.runtime.job_queue import JobQueue

log = logging.getLogger(__name__)

# A burst of stars (say, after the relay was down) becomes at most this many posts per poll.
MAX_STAR_POSTS_PER_POLL = 20


@dataclass(frozen=True, slots=True)
class PollReport:
    repository: str
    baseline: bool
    new_stars: int
    milestone: int | None
    events: int


def _release_time(release: dict[str, Any]) -> datetime | None:
    for key in ("published_at", "created_at"):
        value = release.get(key)
        if isinstance(value, str):
            try:
                return parse_timestamp(value)
            except ValueError:
                continue
    return None


def missed_release_events(
    repository: str, releases: Sequence[dict[str, Any]], since: datetime
) -> list[SourceEvent]:
    events: list[SourceEvent] = []
    for release in releases:
        published_at = _release_time(release)
        if release.get("draft") is True or published_at is None or published_at < since:
            continue
        try:
            events.append(
                release_event_from(FORGEJO, PUBLISHED, release, {"full_name": repository})
            )
        except PayloadError as exc:
            log.warning("skipping a release of %s the forge describes oddly: %s", repository, exc)
    return events


async def poll_repository(
    database: Database,
    queue: JobQueue | None,
    urls: InstanceUrls,
    forge: ForgeClient,
    repository: str,
    milestones: Sequence[int],
) -> PollReport:
    logins = await forge.stargazers(repository)
    releases = await forge.releases(repository)
    repository_url = forge.repository_url(repository)
    now = datetime.now(UTC)
    outcome = PublishOutcome()
    async with database.transaction() as session:
        state = await session.get(ForgeRepositoryState, repository, with_for_update=True)
        if state is None:
            session.add(
                ForgeRepositoryState(
                    full_name=repository,
                    stargazers=logins,
                    star_count=len(logins),
                    watched_since=now,
                    polled_at=now,
                )
            )
            return PollReport(repository, True, 0, None, 0)
        known = set(state.stargazers)
        new_logins = [login for login in logins if login not in known]
        events = [
            star_event(FORGEJO, repository, repository_url, login, len(logins))
            for login in new_logins[:MAX_STAR_POSTS_PER_POLL]
        ]
        milestone = crossed_milestone(state.star_count, len(logins), milestones)
        if milestone is not None:
            events.append(milestone_event(FORGEJO, repository, repository_url, milestone))
        events.extend(missed_release_events(repository, releases, state.watched_since))
        publisher = PostPublisher(session, urls, now=now)
        for event in events:
            outcome.extend(await publisher.apply(event))
        state.stargazers = logins
        state.star_count = len(logins)
        state.polled_at = now
    await announce(queue, outcome)
    return PollReport(repository, False, len(new_logins), milestone, len(events))
