"""Forgejo/Gitea and GitHub webhook payloads → `SourceEvent`s.

Forgejo and Gitea share GitHub's payload shapes for releases, tag creation and repositories,
with small differences (`stars_count` vs `stargazers_count`). Releases are identified by
(repository, release id), so a webhook and a reconciliation poll of the same release map to
one post.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from federation.sources.events import (
    PUBLISHED,
    RELEASE,
    STAR,
    STAR_MILESTONE,
    TAG,
    UNPUBLISHED,
    UPDATED,
    IgnoredEvent,
    ParsedWebhook,
    PayloadError,
    SourceEvent,
)

FORGEJO = "forgejo"
GITHUB = "github"

_FORGEJO_RELEASE_ACTIONS = {"published": PUBLISHED, "updated": UPDATED, "deleted": UNPUBLISHED}
# GitHub sends created, published and released for one release; `published` is the one to use.
_GITHUB_RELEASE_ACTIONS = {
    "published": PUBLISHED,
    "edited": UPDATED,
    "deleted": UNPUBLISHED,
    "unpublished": UNPUBLISHED,
}


def parse_forge_event(
    source: str, event_name: str | None, payload: Any, milestones: Sequence[int] = ()
) -> ParsedWebhook:
    """Interpret one forge webhook. Raises PayloadError for schema violations."""
    name = (event_name or "").strip().lower()
    if not name:
        raise PayloadError("event", "the event type header is missing")
    if not isinstance(payload, Mapping):
        raise PayloadError("body", "must be a JSON object")
    if name == "release":
        return _release_event(source, payload)
    if name == "create":
        return _tag_event(source, payload)
    if source == GITHUB and name in ("star", "watch"):
        return _github_star_event(name, payload, milestones)
    if name == "ping":
        return IgnoredEvent("ping event: nothing to publish")
    return IgnoredEvent(f"event type '{name}' is not published by the relay")


def release_event_from(
    source: str, action: str, release: Mapping[str, Any], repository: Mapping[str, Any]
) -> SourceEvent:
    """A release as the forge API or a webhook describes it (same shape in both)."""
    full_name = _string(repository, "repository.full_name")
    release_id = release.get("id")
    if not isinstance(release_id, int) or isinstance(release_id, bool):
        raise PayloadError("release.id", "must be an integer")
    tag_name = _string(release, "release.tag_name")
    name = _optional_string(release, "release.name") or tag_name
    return SourceEvent(
        source=source,
        kind=RELEASE,
        action=action,
        source_id=f"{full_name}#release:{release_id}",
        title=name,
        url=_optional_string(release, "release.html_url") or None,
        content=_optional_string(release, "release.body"),
        content_format="markdown",
        repository=full_name,
        tag_name=tag_name,
        prerelease=bool(release.get("prerelease")),
        actor_name=_login(release.get("author")),
    )


def _release_event(source: str, payload: Mapping[str, Any]) -> ParsedWebhook:
    actions = _GITHUB_RELEASE_ACTIONS if source == GITHUB else _FORGEJO_RELEASE_ACTIONS
    raw_action = _string(payload, "action")
    action = actions.get(raw_action)
    if action is None:
        return IgnoredEvent(f"release action '{raw_action}' is not published")
    release = _object(payload, "release")
    repository = _object(payload, "repository")
    if release.get("draft") is True:
        return IgnoredEvent("draft releases are not published")
    return [release_event_from(source, action, release, repository)]


def _tag_event(source: str, payload: Mapping[str, Any]) -> ParsedWebhook:
    ref_type = _string(payload, "ref_type")
    if ref_type != "tag":
        return IgnoredEvent(f"create event for a {ref_type}, not a tag")
    ref = _string(payload, "ref").removeprefix("refs/tags/")
    repository = _object(payload, "repository")
    full_name = _string(repository, "repository.full_name")
    html_url = _optional_string(repository, "repository.html_url")
    path = "tree" if source == GITHUB else "src/tag"
    return [
        SourceEvent(
            source=source,
            kind=TAG,
            action=PUBLISHED,
            source_id=f"{full_name}#tag:{ref}",
            title=ref,
            url=f"{html_url}/{path}/{ref}" if html_url else None,
            repository=full_name,
            tag_name=ref,
            actor_name=_login(payload.get("sender")),
        )
    ]


def star_event(
    source: str, repository: str, repository_url: str | None, login: str, stars: int | None
) -> SourceEvent:
    return SourceEvent(
        source=source,
        kind=STAR,
        action=PUBLISHED,
        source_id=f"{repository}#star:{login}",
        title=f"{login} starred {repository}",
        url=repository_url,
        repository=repository,
        stars=stars,
        actor_name=login,
    )


def milestone_event(
    source: str, repository: str, repository_url: str | None, milestone: int
) -> SourceEvent:
    return SourceEvent(
        source=source,
        kind=STAR_MILESTONE,
        action=PUBLISHED,
        source_id=f"{repository}#stars:{milestone}",
        title=f"{repository} reached {milestone} stars",
        url=repository_url,
        repository=repository,
        stars=milestone,
    )


def crossed_milestone(before: int, after: int, milestones: Sequence[int]) -> int | None:
    """The highest milestone reached when the count went from `before` to `after`."""
    crossed = [value for value in milestones if before < value <= after]
    return max(crossed) if crossed else None


def _github_star_event(
    name: str, payload: Mapping[str, Any], milestones: Sequence[int]
) -> ParsedWebhook:
    action = _string(payload, "action")
    if (name, action) not in (("star", "created"), ("watch", "started")):
        return IgnoredEvent(f"{name} action '{action}' is not published")
    repository = _object(payload, "repository")
    full_name = _string(repository, "repository.full_name")
    html_url = _optional_string(repository, "repository.html_url") or None
    login = _login(payload.get("sender"))
    if not login:
        raise PayloadError("sender.login", "is required")
    count = repository.get("stargazers_count")
    stars = count if isinstance(count, int) and not isinstance(count, bool) else None
    events = [star_event(GITHUB, full_name, html_url, login, stars)]
    if stars is not None:
        milestone = crossed_milestone(stars - 1, stars, milestones)
        if milestone is not None:
            events.append(milestone_event(GITHUB, full_name, html_url, milestone))
    return events


def _object(container: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    value = container.get(path.rsplit(".", 1)[-1])
    if not isinstance(value, Mapping):
        raise PayloadError(path, "must be an object")
    return value


def _string(container: Mapping[str, Any], path: str) -> str:
    value = container.get(path.rsplit(".", 1)[-1])
    if not isinstance(value, str) or not value.strip():
        raise PayloadError(path, "must be a non-empty string")
    return value.strip()


def _optional_string(container: Mapping[str, Any], path: str) -> str:
    value = container.get(path.rsplit(".", 1)[-1])
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PayloadError(path, "must be a string")
    return value.strip()


def _login(user: Any) -> str | None:
    if not isinstance(user, Mapping):
        return None
    for key in ("login", "username"):
        value = user.get(key)
        if isinstance(value, str) and value:
            return value
    return None
