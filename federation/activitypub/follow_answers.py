"""Accept and Reject of a Follow, as Mastodon expects them."""

from __future__ import annotations

from typing import Any, Literal

from federation.activitypub.vocabulary import AS_CONTEXT

FollowAnswer = Literal["Accept", "Reject"]


def follow_reference(follow_id: str | None, follower: str, followed: str) -> dict[str, Any]:
    """The Follow being answered, embedded so the follower recognises it even if it did
    not keep the id (an id is only included when we have one)."""
    follow: dict[str, Any] = {"type": "Follow", "actor": follower, "object": followed}
    if follow_id:
        follow = {"id": follow_id, **follow}
    return follow


def follow_answer(
    kind: FollowAnswer,
    answer_id: str,
    followed: str,
    follower: str,
    follow_id: str | None,
) -> dict[str, Any]:
    return {
        "@context": AS_CONTEXT,
        "id": answer_id,
        "type": kind,
        "actor": followed,
        "object": follow_reference(follow_id, follower, followed),
        "to": [follower],
    }
