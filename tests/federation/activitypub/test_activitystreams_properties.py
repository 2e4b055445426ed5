"""The ActivityStreams readers take any JSON a remote server may send: they answer with a
value or their own typed rejection, never with an unexpected exception."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from federation.activitypub.inbox_activities import (
    ClassifiedActivity,
    InboxEnvelope,
    InboxRejection,
    actor_endpoints,
    check_envelope,
    classify,
    move_is_authorised,
    reply_note,
)
from federation.activitypub.key_documents import KeyNotFound, find_public_key

BASE = "https://relay.example"
ACTOR = "https://remote.example/users/alice"
PROPERTY_SETTINGS = hypothesis_settings(max_examples=200, deadline=None)

urls = st.sampled_from(
    [
        ACTOR,
        f"{ACTOR}#main-key",
        f"{ACTOR}/inbox",
        "https://remote.example/inbox",
        "https://elsewhere.example/users/bob",
        f"{BASE}/users/news",
        f"{BASE}/objects/1",
        "",
        "not a url",
        "https://",
    ]
)
words = st.sampled_from(
    [
        "id", "type", "actor", "object", "target", "inbox", "endpoints", "sharedInbox",
        "publicKey", "publicKeyPem", "owner", "alsoKnownAs", "movedTo", "inReplyTo", "content",
        "attributedTo", "to", "cc", "tag", "preferredUsername", "Follow", "Like", "Announce",
        "Create", "Update", "Delete", "Undo", "Move", "Block", "Accept", "Reject", "Note",
    ]
)  # fmt: skip
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30), urls
)
json_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(words, st.text(max_size=10)), children, max_size=6),
    ),
    max_leaves=25,
)
documents = st.dictionaries(st.one_of(words, st.text(max_size=10)), json_values, max_size=8)


@PROPERTY_SETTINGS
@given(document=json_values)
def test_envelope_check_accepts_or_rejects_with_a_status(document: Any) -> None:
    try:
        envelope = check_envelope(document, ACTOR)
    except InboxRejection as rejection:
        assert rejection.status in (400, 401, 403)
    else:
        assert isinstance(envelope, InboxEnvelope)
        assert envelope.actor == ACTOR


@PROPERTY_SETTINGS
@given(document=documents)
def test_classify_always_decides(document: dict[str, Any]) -> None:
    assert isinstance(classify(document, BASE), ClassifiedActivity)


@PROPERTY_SETTINGS
@given(obj=json_values, actor=urls)
def test_reply_reader_finds_a_reply_or_nothing(obj: Any, actor: str) -> None:
    reply_note(obj, actor, BASE)


@PROPERTY_SETTINGS
@given(document=json_values)
def test_actor_reader_keeps_only_same_origin_endpoints(document: Any) -> None:
    endpoints = actor_endpoints(document)
    if endpoints is not None:
        origin = endpoints.actor_id.split("/", 3)[:3]
        assert endpoints.inbox.split("/", 3)[:3] == origin
        if endpoints.shared_inbox is not None:
            assert endpoints.shared_inbox.split("/", 3)[:3] == origin


@PROPERTY_SETTINGS
@given(document=json_values, old=urls)
def test_move_check_answers_a_boolean(document: Any, old: str) -> None:
    assert move_is_authorised(document, old) in (True, False)


@PROPERTY_SETTINGS
@given(document=documents, key_id=urls)
def test_key_reader_finds_a_key_or_says_it_is_not_there(
    document: dict[str, Any], key_id: str
) -> None:
    try:
        found = find_public_key(document, key_id)
    except KeyNotFound:
        return
    assert isinstance(found.public_key_pem, str)
