"""NodeInfo 2.0/2.1 documents, which directories and servers read to describe an instance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NODEINFO_VERSIONS = ("2.0", "2.1")
SOFTWARE_NAME = "fedirelay"
REPOSITORY = "https://codeberg.org/fedirelay/fedirelay"


@dataclass(frozen=True, slots=True)
class NodeUsage:
    total_users: int
    active_month: int
    active_halfyear: int
    local_posts: int


def build_nodeinfo_links(base_url: str) -> dict[str, Any]:
    return {
        "links": [
            {
                "rel": f"http://nodeinfo.diaspora.software/ns/schema/{version}",
                "href": f"{base_url}/nodeinfo/{version}",
            }
            for version in NODEINFO_VERSIONS
        ]
    }


def build_nodeinfo(version: str, software_version: str, usage: NodeUsage) -> dict[str, Any]:
    if version not in NODEINFO_VERSIONS:
        raise ValueError(f"unsupported NodeInfo version {version}")
    software: dict[str, Any] = {"name": SOFTWARE_NAME, "version": software_version}
    if version == "2.1":
        software["repository"] = REPOSITORY
    return {
        "version": version,
        "software": software,
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": ["atom1.0", "rss2.0"]},
        "openRegistrations": False,
        "usage": {
            "users": {
                "total": usage.total_users,
                "activeMonth": usage.active_month,
                "activeHalfyear": usage.active_halfyear,
            },
            "localPosts": usage.local_posts,
        },
        "metadata": {"nodeName": "fedirelay"},
    }
