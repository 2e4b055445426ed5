"""Which accounts publish an event: each account's routing rules, matched against the event.

An account's routing is `{"rules": [rule, ...]}`; the event goes to the account when any rule
matches. A rule names (all optional): `sources` (e.g. ["forgejo"]), `events` (kinds such as
["release", "star_milestone"]), `repositories` (glob patterns like "acme/*"), `tags` (glob
patterns matched against the git tag, or against a post's tags), and `prereleases`
(default false: pre-releases are skipped). An account without rules receives only events that
name it explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from federation.sources.events import RELEASE, SourceEvent


def routes_to(routing: Mapping[str, Any] | None, event: SourceEvent) -> bool:
    rules = (routing or {}).get("rules")
    if not isinstance(rules, list):
        return False
    return any(isinstance(rule, Mapping) and rule_matches(rule, event) for rule in rules)


def rule_matches(rule: Mapping[str, Any], event: SourceEvent) -> bool:
    if not _listed(rule.get("sources"), event.source):
        return False
    if not _listed(rule.get("events"), event.kind):
        return False
    repositories = _patterns(rule.get("repositories"))
    if repositories is not None:
        if event.repository is None or not _any_glob(repositories, [event.repository]):
            return False
    tag_patterns = _patterns(rule.get("tags"))
    if tag_patterns is not None:
        candidates = [event.tag_name] if event.tag_name else list(event.tags)
        if not _any_glob(tag_patterns, candidates):
            return False
    return not (event.kind == RELEASE and event.prerelease and rule.get("prereleases") is not True)


def _listed(allowed: Any, value: str) -> bool:
    if allowed is None:
        return True
    if not isinstance(allowed, list):
        return False
    return "*" in allowed or value in allowed


def _patterns(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        return []
    return [item.lower() for item in value if isinstance(item, str)]


def _any_glob(patterns: Sequence[str], values: Sequence[str]) -> bool:
    return any(fnmatchcase(value.lower(), pattern) for pattern in patterns for value in values)
