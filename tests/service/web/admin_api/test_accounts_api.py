"""Admin API for accounts: create, list, read, change, delete, rotate keys."""

from __future__ import annotations

import asyncio

import httpx

PROBLEM = "application/problem+json"


async def create(
    client: httpx.AsyncClient, headers: dict[str, str], **body: object
) -> httpx.Response:
    return await client.post(
        "/api/admin/accounts", json={"handle": "blog", **body}, headers=headers
    )


async def test_creating_an_account_returns_its_address_and_both_public_keys(client, admin_headers):
    response = await create(client, admin_headers, display_name="Our Blog")
    assert response.status_code == 201
    body = response.json()
    assert body["address"] == "@blog@relay.test"
    assert body["actor_id"] == "http://relay.test/users/blog"
    assert sorted(key["kind"] for key in body["keys"]) == ["ed25519", "rsa"]
    assert all("PRIVATE" not in key["public_key_pem"] for key in body["keys"])


async def test_account_responses_never_contain_private_keys(client, admin_headers):
    await create(client, admin_headers)
    listing = await client.get("/api/admin/accounts", headers=admin_headers)
    assert "PRIVATE KEY" not in listing.text


async def test_listing_accounts_shows_every_account(client, admin_headers):
    await create(client, admin_headers)
    await client.post("/api/admin/accounts", json={"handle": "releases"}, headers=admin_headers)
    listing = await client.get("/api/admin/accounts", headers=admin_headers)
    assert [a["handle"] for a in listing.json()] == ["blog", "releases"]


async def test_creating_a_duplicate_handle_is_a_conflict(client, admin_headers):
    await create(client, admin_headers)
    response = await create(client, admin_headers)
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("/account-exists")


async def test_bad_handle_is_rejected_with_the_field_named(client, admin_headers):
    response = await client.post(
        "/api/admin/accounts", json={"handle": "Bad Handle!"}, headers=admin_headers
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["name"] == "handle"


async def test_reserved_handle_is_rejected(client, admin_headers):
    response = await client.post(
        "/api/admin/accounts", json={"handle": "inbox"}, headers=admin_headers
    )
    assert response.status_code == 422


async def test_unknown_fields_are_rejected(client, admin_headers):
    response = await create(client, admin_headers, private_key="x")
    assert response.status_code == 422
    assert response.json()["errors"][0]["name"] == "private_key"


async def test_malformed_json_is_a_400_problem(client, admin_headers):
    response = await client.post(
        "/api/admin/accounts",
        content=b"{not json",
        headers={**admin_headers, "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM


async def test_missing_admin_token_is_401_with_a_challenge(client):
    response = await client.get("/api/admin/accounts")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_wrong_admin_token_is_401(client):
    response = await client.get(
        "/api/admin/accounts", headers={"Authorization": "Bearer wrong-token"}
    )
    assert response.status_code == 401


async def test_updating_changes_only_the_named_fields(client, admin_headers):
    await create(client, admin_headers, display_name="Blog", summary="<p>hi</p>")
    response = await client.patch(
        "/api/admin/accounts/blog",
        json={
            "actor_type": "Organization",
            "profile_fields": [{"name": "Web", "value": "https://example.com"}],
        },
        headers=admin_headers,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["actor_type"] == "Organization"
    assert body["display_name"] == "Blog"
    assert body["profile_fields"] == [{"name": "Web", "value": "https://example.com"}]


async def test_updating_with_an_invalid_actor_type_is_422(client, admin_headers):
    await create(client, admin_headers)
    response = await client.patch(
        "/api/admin/accounts/blog", json={"actor_type": "Robot"}, headers=admin_headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["name"] == "actor_type"


async def test_unknown_account_is_404_problem(client, admin_headers):
    response = await client.get("/api/admin/accounts/nobody", headers=admin_headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


async def test_deleting_an_account_removes_it(client, admin_headers):
    await create(client, admin_headers)
    assert (
        await client.delete("/api/admin/accounts/blog", headers=admin_headers)
    ).status_code == 204
    assert (await client.get("/api/admin/accounts/blog", headers=admin_headers)).status_code == 404


async def test_changing_an_account_while_it_is_deleted_is_never_a_server_error(
    client, admin_headers
):
    statuses: set[int] = set()
    for _ in range(20):
        await create(client, admin_headers)
        answers = await asyncio.gather(
            client.delete("/api/admin/accounts/blog", headers=admin_headers),
            client.patch("/api/admin/accounts/blog", json={}, headers=admin_headers),
            client.post("/api/admin/accounts/blog/keys/rotate", headers=admin_headers),
        )
        statuses.update(answer.status_code for answer in answers)
        await client.delete("/api/admin/accounts/blog", headers=admin_headers)
    assert statuses <= {200, 204, 404, 409}


async def test_rotating_keys_issues_new_keys_and_retires_the_old(client, admin_headers):
    created = (await create(client, admin_headers)).json()
    old_rsa = next(k["public_key_pem"] for k in created["keys"] if k["kind"] == "rsa")
    rotated = (
        await client.post("/api/admin/accounts/blog/keys/rotate", headers=admin_headers)
    ).json()
    active = [k for k in rotated["keys"] if k["retired_at"] is None]
    retired = [k for k in rotated["keys"] if k["retired_at"] is not None]
    assert sorted(k["kind"] for k in active) == ["ed25519", "rsa"]
    assert len(retired) == 2
    new_rsa = next(k["public_key_pem"] for k in active if k["kind"] == "rsa")
    assert new_rsa != old_rsa


async def test_actor_document_serves_the_rotated_key(client, admin_headers):
    await create(client, admin_headers)
    rotated = (
        await client.post("/api/admin/accounts/blog/keys/rotate", headers=admin_headers)
    ).json()
    new_rsa = next(
        k["public_key_pem"]
        for k in rotated["keys"]
        if k["kind"] == "rsa" and k["retired_at"] is None
    )
    actor = await client.get("/users/blog", headers={"Accept": "application/activity+json"})
    assert actor.json()["publicKey"]["publicKeyPem"] == new_rsa


async def test_oversized_admin_body_is_413_problem(client, admin_headers):
    response = await client.post(
        "/api/admin/accounts",
        content=b"{" + b" " * 300_000 + b"}",
        headers={**admin_headers, "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM


async def test_null_for_a_required_field_is_422_naming_it(client, admin_headers):
    await create(client, admin_headers)
    response = await client.patch(
        "/api/admin/accounts/blog", json={"indexable": None}, headers=admin_headers
    )
    assert response.status_code == 422
    assert "indexable may not be null" in response.json()["errors"][0]["reason"]


async def test_null_clears_an_optional_field(client, admin_headers):
    await create(client, admin_headers, avatar_url="https://cdn.example.com/a.png")
    response = await client.patch(
        "/api/admin/accounts/blog", json={"avatar_url": None}, headers=admin_headers
    )
    assert response.status_code == 200
    assert response.json()["avatar_url"] is None


async def test_an_id_beyond_64_bits_is_422_not_500(client, admin_headers):
    response = await client.get(f"/api/admin/posts/{2**70}", headers=admin_headers)
    assert response.status_code == 422


async def test_updating_an_unknown_account_is_404(client, admin_headers):
    response = await client.patch("/api/admin/accounts/nobody", json={}, headers=admin_headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


async def test_rotating_keys_of_an_unknown_account_is_404(client, admin_headers):
    response = await client.post("/api/admin/accounts/nobody/keys/rotate", headers=admin_headers)
    assert response.status_code == 404
