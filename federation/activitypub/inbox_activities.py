"""What an inbound activity means for the relay, decided without any I/O.

Two steps, both pure:

* `check_envelope` runs in the HTTP handler, right after the signature was verified: the
  document must be an activity with an id, its `actor` must be the owner of the signing
  key, and whatever the actor asserts about an object must be about an object of its own
  origin.
* `classify` runs in the worker and turns the stored document into one `InboxAction`
  with the ids the worker needs to apply it.

Origin rules (documented because inbox status codes depend on them):

* `actor` differs from the key's owner -> 401: the signature does not authenticate the
  claimed actor, exactly as if it were missing.
* the activity id, or the id of an object the actor creates, updates, deletes or undoes,
  is on another origin than the actor -> 403: authenticated, but not allowed to speak for
  that object. Like, Announce, Follow, Block, Flag, Accept and Reject point at other
  people's objects by nature; only the object's id is used from them, never its content.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final
from urllib.parse import urlsplit

ACTOR_TYPES: Final = frozenset({"Person", "Service", "Application", "Group", "Organization"})
# Activities whose object is something the actor itself owns and speaks for.
_OWN_OBJECT_TYPES: Final = frozenset({"Create", "Update", "Delete", "Undo"})
_MAX_ID_LENGTH: Final = 2048
_MAX_TYPE_LENGTH: Final = 64


class InboxRejection(Exception):
    """The activity cannot be accepted; `status` is the HTTP answer."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


class InboxAction(StrEnum):
    FOLLOW = "follow"
    UNDO_FOLLOW = "undo_follow"
    LIKE = "like"
    BOOST = "boost"
    UNDO_INTERACTION = "undo_interaction"
    REPLY = "reply"
    UPDATE_REPLY = "update_reply"
    DELETE_ACTOR = "delete_actor"
    DELETE_OBJECT = "delete_object"
    UPDATE_ACTOR = "update_actor"
    MOVE = "move"
    BLOCK = "block"
    ACCEPT_FOLLOW = "accept_follow"
    REJECT_FOLLOW = "reject_follow"
    IGNORE = "ignore"


@dataclass(frozen=True, slots=True)
class InboxEnvelope:
    activity_id: str
    activity_type: str
    actor: str


@dataclass(frozen=True, slots=True)
class ReplyNote:
    note_id: str
    url: str
    content_html: str
    in_reply_to: str


@dataclass(frozen=True, slots=True)
class ClassifiedActivity:
    action: InboxAction
    activity_id: str
    actor: str
    # The thing acted upon: our actor or object, an undone activity, a deleted object...
    object_id: str | None = None
    # Move: the new actor. Undo/Accept/Reject: the inner activity's object.
    target: str | None = None
    reply: ReplyNote | None = None
    actor_document: dict[str, Any] | None = None
    reason: str = ""


def origin_of(url: str) -> str | None:
    """scheme://host[:port] in lower case, or None when `url` is not an absolute http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


def same_origin(first: str, second: str) -> bool:
    origin = origin_of(first)
    return origin is not None and origin == origin_of(second)


def host_of_key_id(key_id: str) -> str | None:
    """The host (lower case, no port) a keyId names, for the blocked-domain check."""
    try:
        host = urlsplit(key_id).hostname
    except ValueError:
        return None
    return host.lower().rstrip(".") if host else None


def domain_is_blocked(host: str, blocked: frozenset[str]) -> bool:
    """A blocked domain covers its subdomains: blocking example.com blocks a.example.com."""
    if not blocked:
        return False
    name = host.lower().rstrip(".")
    while True:
        if name in blocked:
            return True
        _, dot, rest = name.partition(".")
        if not dot:
            return False
        name = rest


def reference_id(value: Any) -> str | None:
    """The id of a reference that is either a URI string or an object carrying an `id`."""
    if isinstance(value, str):
        return value if 0 < len(value) <= _MAX_ID_LENGTH else None
    if isinstance(value, dict):
        inner = value.get("id")
        if isinstance(inner, str) and 0 < len(inner) <= _MAX_ID_LENGTH:
            return inner
    return None


def type_of(value: Any) -> str | None:
    """The first type of an object (`type` may be a string or a list)."""
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    if isinstance(kind, list):
        kind = next((item for item in kind if isinstance(item, str)), None)
    if isinstance(kind, str) and 0 < len(kind) <= _MAX_TYPE_LENGTH:
        return kind
    return None


def check_envelope(document: Any, key_owner: str) -> InboxEnvelope:
    """Validate an activity signed by `key_owner`; raise InboxRejection when it is refused."""
    if not isinstance(document, dict):
        raise InboxRejection(400, "not-an-activity", "Body is not a JSON object")
    activity_type = type_of(document)
    if activity_type is None:
        raise InboxRejection(400, "not-an-activity", "Activity has no type")
    activity_id = document.get("id")
    if not isinstance(activity_id, str) or origin_of(activity_id) is None:
        raise InboxRejection(400, "not-an-activity", "Activity has no absolute id")
    if len(activity_id) > _MAX_ID_LENGTH:
        raise InboxRejection(400, "not-an-activity", "Activity id is too long")
    actor = reference_id(document.get("actor"))
    if actor is None:
        raise InboxRejection(400, "not-an-activity", "Activity has no actor")
    if actor != key_owner:
        raise InboxRejection(
            401, "actor-mismatch", "The activity's actor is not the owner of the signing key"
        )
    if not same_origin(activity_id, actor):
        raise InboxRejection(403, "foreign-origin", "The activity id is not on the actor's origin")
    if activity_type in _OWN_OBJECT_TYPES:
        object_id = reference_id(document.get("object"))
        if object_id is None:
            raise InboxRejection(400, "not-an-activity", f"{activity_type} has no object")
        if not same_origin(object_id, actor):
            raise InboxRejection(
                403, "foreign-origin", "The object's id is not on the actor's origin"
            )
    return InboxEnvelope(activity_id=activity_id, activity_type=activity_type, actor=actor)


def local_handle(actor_url: str, base_url: str) -> str | None:
    """The handle of one of our actors from its id (`{base}/users/{handle}`), else None."""
    prefix = f"{base_url}/users/"
    if not actor_url.startswith(prefix):
        return None
    handle = actor_url[len(prefix) :]
    if not handle or "/" in handle or "#" in handle or "?" in handle:
        return None
    return handle


def is_local_object(object_id: str, base_url: str) -> bool:
    return object_id.startswith(f"{base_url}/objects/")


def is_local(url: str, base_url: str) -> bool:
    return url.startswith(f"{base_url}/")


def _ignored(envelope_id: str, actor: str, reason: str) -> ClassifiedActivity:
    return ClassifiedActivity(InboxAction.IGNORE, envelope_id, actor, reason=reason)


def classify(document: dict[str, Any], base_url: str) -> ClassifiedActivity:
    """Decide what a stored, already envelope-checked activity asks of the relay."""
    activity_id = str(document.get("id", ""))
    actor = reference_id(document.get("actor")) or ""
    kind = type_of(document) or ""
    obj = document.get("object")
    object_id = reference_id(obj)
    if kind == "Follow":
        return _classify_follow(activity_id, actor, object_id, base_url)
    if kind in ("Like", "EmojiReact") and object_id is not None:
        if not is_local_object(object_id, base_url):
            return _ignored(activity_id, actor, "like of an object that is not ours")
        return ClassifiedActivity(InboxAction.LIKE, activity_id, actor, object_id)
    if kind == "Announce" and object_id is not None:
        if not is_local_object(object_id, base_url):
            return _ignored(activity_id, actor, "boost of an object that is not ours")
        return ClassifiedActivity(InboxAction.BOOST, activity_id, actor, object_id)
    if kind == "Create":
        return _classify_create(activity_id, actor, obj, base_url)
    if kind == "Update":
        return _classify_update(activity_id, actor, obj, base_url)
    if kind == "Delete" and object_id is not None:
        if object_id == actor:
            return ClassifiedActivity(InboxAction.DELETE_ACTOR, activity_id, actor, actor)
        return ClassifiedActivity(InboxAction.DELETE_OBJECT, activity_id, actor, object_id)
    if kind == "Undo" and object_id is not None:
        return _classify_undo(activity_id, actor, obj, object_id, base_url)
    if kind == "Move":
        target = reference_id(document.get("target"))
        if object_id != actor or target is None or target == actor:
            return _ignored(activity_id, actor, "Move of another actor or without a target")
        return ClassifiedActivity(InboxAction.MOVE, activity_id, actor, actor, target=target)
    if kind == "Block" and object_id is not None:
        if local_handle(object_id, base_url) is None:
            return _ignored(activity_id, actor, "block of an actor that is not ours")
        return ClassifiedActivity(InboxAction.BLOCK, activity_id, actor, object_id)
    if kind in ("Accept", "Reject") and isinstance(obj, (dict, str)):
        return _classify_follow_answer(activity_id, actor, kind, obj, base_url)
    return _ignored(activity_id, actor, f"{kind or 'untyped'} activities are not handled")


def _classify_follow(
    activity_id: str, actor: str, object_id: str | None, base_url: str
) -> ClassifiedActivity:
    if object_id is None or local_handle(object_id, base_url) is None:
        return _ignored(activity_id, actor, "follow of an actor that is not ours")
    return ClassifiedActivity(InboxAction.FOLLOW, activity_id, actor, object_id)


def _classify_create(activity_id: str, actor: str, obj: Any, base_url: str) -> ClassifiedActivity:
    note = reply_note(obj, actor, base_url)
    if note is None:
        return _ignored(activity_id, actor, "Create of something that is not a reply to us")
    return ClassifiedActivity(InboxAction.REPLY, activity_id, actor, note.in_reply_to, reply=note)


def _classify_update(activity_id: str, actor: str, obj: Any, base_url: str) -> ClassifiedActivity:
    if type_of(obj) in ACTOR_TYPES and reference_id(obj) == actor:
        assert isinstance(obj, dict)  # noqa: S101 - type_of returned a type, so obj is a dict
        return ClassifiedActivity(
            InboxAction.UPDATE_ACTOR, activity_id, actor, actor, actor_document=obj
        )
    note = reply_note(obj, actor, base_url)
    if note is not None:
        return ClassifiedActivity(
            InboxAction.UPDATE_REPLY, activity_id, actor, note.in_reply_to, reply=note
        )
    return _ignored(activity_id, actor, "Update of something the relay does not store")


def _classify_undo(
    activity_id: str, actor: str, obj: Any, object_id: str, base_url: str
) -> ClassifiedActivity:
    inner_type = type_of(obj)
    inner_object = reference_id(obj.get("object")) if isinstance(obj, dict) else None
    if isinstance(obj, dict):
        inner_actor = reference_id(obj.get("actor"))
        if inner_actor is not None and inner_actor != actor:
            return _ignored(activity_id, actor, "Undo of another actor's activity")
    if inner_type == "Follow":
        return ClassifiedActivity(
            InboxAction.UNDO_FOLLOW, activity_id, actor, object_id, target=inner_object
        )
    if inner_type in ("Like", "EmojiReact", "Announce", None):
        # A bare id may name a Like, a boost or a Follow; the worker looks it up.
        return ClassifiedActivity(
            InboxAction.UNDO_INTERACTION, activity_id, actor, object_id, target=inner_object
        )
    if inner_type == "Block":
        return _ignored(activity_id, actor, "Undo of a Block changes nothing here")
    return _ignored(activity_id, actor, f"Undo of {inner_type} is not handled")


def _classify_follow_answer(
    activity_id: str, actor: str, kind: str, obj: Any, base_url: str
) -> ClassifiedActivity:
    follow_id = reference_id(obj)
    if follow_id is None or not is_local(follow_id, base_url):
        return _ignored(activity_id, actor, f"{kind} of something the relay did not send")
    if isinstance(obj, dict) and type_of(obj) not in ("Follow", None):
        return _ignored(activity_id, actor, f"{kind} of a {type_of(obj)} is not handled")
    follower = reference_id(obj.get("actor")) if isinstance(obj, dict) else None
    action = InboxAction.ACCEPT_FOLLOW if kind == "Accept" else InboxAction.REJECT_FOLLOW
    return ClassifiedActivity(action, activity_id, actor, follow_id, target=follower)


def reply_note(obj: Any, actor: str, base_url: str) -> ReplyNote | None:
    """The reply if `obj` is an embedded object by `actor` answering one of our objects."""
    if not isinstance(obj, dict):
        return None
    note_id = reference_id(obj)
    in_reply_to = reference_id(obj.get("inReplyTo"))
    if note_id is None or in_reply_to is None or not is_local_object(in_reply_to, base_url):
        return None
    attributed = obj.get("attributedTo")
    authors = attributed if isinstance(attributed, list) else [attributed]
    if actor not in {reference_id(author) for author in authors}:
        return None
    content = obj.get("content")
    if not isinstance(content, str):
        content_map = obj.get("contentMap")
        content = (
            next((text for text in content_map.values() if isinstance(text, str)), "")
            if isinstance(content_map, dict)
            else ""
        )
    return ReplyNote(
        note_id=note_id,
        url=_link_of(obj.get("url")) or note_id,
        content_html=content,
        in_reply_to=in_reply_to,
    )


def _link_of(value: Any) -> str | None:
    """A `url` property may be a string, a Link, or a list of either; take the first http one."""
    candidates = value if isinstance(value, list) else [value]
    for candidate in candidates:
        href = candidate.get("href") if isinstance(candidate, dict) else candidate
        if isinstance(href, str) and origin_of(href) is not None and len(href) <= _MAX_ID_LENGTH:
            return href
    return None


@dataclass(frozen=True, slots=True)
class ActorEndpoints:
    """What the relay keeps about a remote actor from its document."""

    actor_id: str
    inbox: str
    shared_inbox: str | None
    key_id: str | None
    public_key_pem: str | None
    handle: str | None
    also_known_as: tuple[str, ...]
    moved_to: str | None


def actor_endpoints(document: Any) -> ActorEndpoints | None:
    """Read an actor document; None when it has no id or inbox on its own origin."""
    if not isinstance(document, dict):
        return None
    actor_id = reference_id(document)
    inbox = document.get("inbox")
    if actor_id is None or not isinstance(inbox, str) or not same_origin(inbox, actor_id):
        return None
    endpoints = document.get("endpoints")
    shared = endpoints.get("sharedInbox") if isinstance(endpoints, dict) else None
    if not isinstance(shared, str) or not same_origin(shared, actor_id):
        shared = None
    key = document.get("publicKey")
    if isinstance(key, list):
        key = next((item for item in key if isinstance(item, dict)), None)
    key_id = key.get("id") if isinstance(key, dict) else None
    pem = key.get("publicKeyPem") if isinstance(key, dict) else None
    aliases = document.get("alsoKnownAs")
    alias_list = aliases if isinstance(aliases, list) else [aliases]
    handle = document.get("preferredUsername")
    return ActorEndpoints(
        actor_id=actor_id,
        inbox=inbox,
        shared_inbox=shared,
        key_id=key_id if isinstance(key_id, str) and same_origin(key_id, actor_id) else None,
        public_key_pem=pem if isinstance(pem, str) else None,
        handle=handle if isinstance(handle, str) else None,
        also_known_as=tuple(alias for alias in map(reference_id, alias_list) if alias),
        moved_to=reference_id(document.get("movedTo")),
    )


def move_is_authorised(target_document: Any, old_actor: str) -> bool:
    """A Move is honoured only when the new actor names the old one in `alsoKnownAs`."""
    endpoints = actor_endpoints(target_document)
    return endpoints is not None and old_actor in endpoints.also_known_as
