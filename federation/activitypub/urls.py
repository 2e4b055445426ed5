"""Where each thing the relay publishes lives: every ActivityPub id is built here, and only here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InstanceUrls:
    """URLs that belong to the relay as a whole."""

    base_url: str

    @property
    def shared_inbox(self) -> str:
        return f"{self.base_url}/inbox"

    @property
    def instance_actor(self) -> str:
        return f"{self.base_url}/actor"

    def object(self, object_uuid: str) -> str:
        return f"{self.base_url}/objects/{object_uuid}"

    def activity(self, activity_uuid: str) -> str:
        return f"{self.base_url}/activities/{activity_uuid}"

    def account(self, handle: str) -> ActorUrls:
        return ActorUrls(self.base_url, handle)


@dataclass(frozen=True, slots=True)
class ActorUrls:
    """URLs of one account's actor and its collections."""

    base_url: str
    handle: str

    @property
    def actor(self) -> str:
        return f"{self.base_url}/users/{self.handle}"

    @property
    def rsa_key(self) -> str:
        return f"{self.actor}#main-key"

    @property
    def ed25519_key(self) -> str:
        return f"{self.actor}#ed25519-key"

    @property
    def inbox(self) -> str:
        return f"{self.actor}/inbox"

    @property
    def outbox(self) -> str:
        return f"{self.actor}/outbox"

    @property
    def followers(self) -> str:
        return f"{self.actor}/followers"

    @property
    def following(self) -> str:
        return f"{self.actor}/following"

    @property
    def featured(self) -> str:
        return f"{self.actor}/collections/featured"

    @property
    def profile_page(self) -> str:
        return f"{self.base_url}/@{self.handle}"

    @property
    def rss_feed(self) -> str:
        return f"{self.base_url}/@{self.handle}.rss"

    @property
    def atom_feed(self) -> str:
        return f"{self.base_url}/@{self.handle}.atom"
