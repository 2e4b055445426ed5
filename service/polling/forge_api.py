"""The few Forgejo/Gitea API calls the relay polls: stargazers and releases of a repository."""

from __future__ import annotations

from typing import Any

import httpx

PAGE_SIZE = 50
MAX_PAGES = 200
RECENT_RELEASES = 20


class ForgeError(Exception):
    pass


class ForgeClient:
    def __init__(self, http: httpx.AsyncClient, base_url: str, token: str | None = None) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.headers = {"Accept": "application/json"}
        if token:
            self.headers["Authorization"] = f"token {token}"

    def repository_url(self, repository: str) -> str:
        return f"{self.base_url}/{repository}"

    async def _get(self, path: str, params: dict[str, Any]) -> Any:
        url = f"{self.base_url}/api/v1{path}"
        try:
            response = await self.http.get(url, params=params, headers=self.headers)
        except httpx.HTTPError as exc:
            raise ForgeError(f"GET {url}: {exc}") from exc
        if response.status_code != 200:
            raise ForgeError(f"GET {url}: HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise ForgeError(f"GET {url}: not JSON") from exc

    async def stargazers(self, repository: str) -> list[str]:
        """Logins of everyone who starred the repository, in the forge's order."""
        logins: list[str] = []
        for page in range(1, MAX_PAGES + 1):
            users = await self._get(
                f"/repos/{repository}/stargazers", {"page": page, "limit": PAGE_SIZE}
            )
            if not isinstance(users, list):
                raise ForgeError("stargazers answer is not a list")
            for user in users:
                if not isinstance(user, dict):
                    continue
                login = user.get("login") or user.get("username")
                if isinstance(login, str) and login:
                    logins.append(login)
            if len(users) < PAGE_SIZE:
                break
        return list(dict.fromkeys(logins))

    async def releases(self, repository: str) -> list[dict[str, Any]]:
        releases = await self._get(
            f"/repos/{repository}/releases", {"page": 1, "limit": RECENT_RELEASES}
        )
        if not isinstance(releases, list):
            raise ForgeError("releases answer is not a list")
        return [release for release in releases if isinstance(release, dict)]
