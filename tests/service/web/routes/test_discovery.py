"""WebFinger, NodeInfo, host-meta and the actor document, as fediverse servers read them."""

from __future__ import annotations

import pytest

from federation.activitypub.vocabulary import AS_CONTEXT, SECURITY_CONTEXT

AP = {"Accept": "application/activity+json"}
LD = {"Accept": 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'}
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture
async def blog(client, admin_headers):
    response = await client.post(
        "/api/admin/accounts",
        json={
            "handle": "blog",
            "display_name": "Example Blog",
            "summary": "<p>News <script>alert(1)</script></p>",
            "avatar_url": "https://cdn.example.com/a.png",
            "header_url": "https://cdn.example.com/h.png",
            "profile_fields": [{"name": "Website", "value": "https://example.com"}],
            "also_known_as": ["https://mastodon.example/users/brand"],
        },
        headers=admin_headers,
    )
    assert response.status_code == 201
    return response.json()


async def test_webfinger_resolves_an_acct_resource(client, blog):
    response = await client.get(
        "/.well-known/webfinger", params={"resource": "acct:blog@relay.test"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/jrd+json"
    body = response.json()
    assert body["subject"] == "acct:blog@relay.test"
    self_link = next(link for link in body["links"] if link["rel"] == "self")
    assert self_link == {
        "rel": "self",
        "type": "application/activity+json",
        "href": "http://relay.test/users/blog",
    }
    assert "http://relay.test/users/blog" in body["aliases"]
    profile = next(link for link in body["links"] if link["rel"].endswith("profile-page"))
    assert profile["href"] == "http://relay.test/@blog"


async def test_webfinger_resolves_the_actor_url_as_resource(client, blog):
    response = await client.get(
        "/.well-known/webfinger", params={"resource": "http://relay.test/users/blog"}
    )
    assert response.status_code == 200
    assert response.json()["subject"] == "acct:blog@relay.test"


async def test_webfinger_for_an_unknown_account_is_404_problem(client, blog):
    response = await client.get(
        "/.well-known/webfinger", params={"resource": "acct:nobody@relay.test"}
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_webfinger_for_another_domain_is_404(client, blog):
    response = await client.get(
        "/.well-known/webfinger", params={"resource": "acct:blog@elsewhere.example"}
    )
    assert response.status_code == 404


async def test_webfinger_without_resource_is_400(client):
    response = await client.get("/.well-known/webfinger")
    assert response.status_code == 400
    assert response.json()["type"].endswith("/missing-resource")


async def test_webfinger_with_garbage_resource_is_404_not_500(client):
    response = await client.get("/.well-known/webfinger", params={"resource": "acct:@@@"})
    assert response.status_code == 404


async def test_host_meta_points_at_webfinger(client):
    response = await client.get("/.well-known/host-meta")
    assert response.status_code == 200
    assert "application/xrd+xml" in response.headers["content-type"]
    assert 'template="http://relay.test/.well-known/webfinger?resource={uri}"' in response.text


async def test_nodeinfo_well_known_lists_both_versions(client):
    links = (await client.get("/.well-known/nodeinfo")).json()["links"]
    assert [link["href"] for link in links] == [
        "http://relay.test/nodeinfo/2.0",
        "http://relay.test/nodeinfo/2.1",
    ]


@pytest.mark.parametrize("version", ["2.0", "2.1"])
async def test_nodeinfo_document_describes_the_relay(client, blog, version):
    body = (await client.get(f"/nodeinfo/{version}")).json()
    assert body["version"] == version
    assert body["software"]["name"] == "fedirelay"
    assert body["protocols"] == ["activitypub"]
    assert body["usage"]["users"]["total"] == 1
    assert body["usage"]["localPosts"] == 0
    assert body["openRegistrations"] is False
    assert ("repository" in body["software"]) is (version == "2.1")


async def test_unknown_nodeinfo_version_is_404(client):
    assert (await client.get("/nodeinfo/9.9")).status_code == 404


@pytest.mark.parametrize("accept", [AP, LD], ids=["activity+json", "ld+json"])
async def test_actor_is_served_as_activitypub_json(client, blog, accept):
    response = await client.get("/users/blog", headers=accept)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/activity+json"


async def test_actor_context_lists_activitystreams_and_security(client, blog):
    actor = (await client.get("/users/blog", headers=AP)).json()
    assert actor["@context"][0] == AS_CONTEXT
    assert SECURITY_CONTEXT in actor["@context"]


async def test_actor_carries_every_field_mastodon_reads(client, blog):
    actor = (await client.get("/users/blog", headers=AP)).json()
    base = "http://relay.test/users/blog"
    assert actor["id"] == base
    assert actor["type"] == "Service"
    assert actor["preferredUsername"] == "blog"
    assert actor["name"] == "Example Blog"
    assert actor["url"] == "http://relay.test/@blog"
    assert actor["inbox"] == f"{base}/inbox"
    assert actor["outbox"] == f"{base}/outbox"
    assert actor["followers"] == f"{base}/followers"
    assert actor["following"] == f"{base}/following"
    assert actor["featured"] == f"{base}/collections/featured"
    assert actor["endpoints"] == {"sharedInbox": "http://relay.test/inbox"}
    assert actor["manuallyApprovesFollowers"] is False
    assert actor["discoverable"] is True
    assert actor["indexable"] is True
    assert actor["published"].endswith("Z")
    assert actor["icon"] == {"type": "Image", "url": "https://cdn.example.com/a.png"}
    assert actor["image"] == {"type": "Image", "url": "https://cdn.example.com/h.png"}
    assert actor["alsoKnownAs"] == ["https://mastodon.example/users/brand"]
    assert "movedTo" not in actor


async def test_actor_public_key_is_the_accounts_rsa_key(client, blog):
    actor = (await client.get("/users/blog", headers=AP)).json()
    rsa = next(k for k in blog["keys"] if k["kind"] == "rsa")
    assert actor["publicKey"] == {
        "id": "http://relay.test/users/blog#main-key",
        "owner": "http://relay.test/users/blog",
        "publicKeyPem": rsa["public_key_pem"],
    }


async def test_actor_assertion_method_is_an_ed25519_multikey(client, blog):
    actor = (await client.get("/users/blog", headers=AP)).json()
    (method,) = actor["assertionMethod"]
    assert method["type"] == "Multikey"
    assert method["id"] == "http://relay.test/users/blog#ed25519-key"
    assert method["controller"] == "http://relay.test/users/blog"
    assert method["publicKeyMultibase"].startswith("z6Mk")


async def test_actor_summary_is_sanitized(client, blog):
    actor = (await client.get("/users/blog", headers=AP)).json()
    assert "<script>" not in actor["summary"]
    assert actor["summary"].startswith("<p>News")


async def test_actor_profile_fields_are_property_values(client, blog):
    actor = (await client.get("/users/blog", headers=AP)).json()
    (field,) = actor["attachment"]
    assert field["type"] == "PropertyValue"
    assert field["name"] == "Website"
    assert 'href="https://example.com"' in field["value"]


async def test_moved_account_carries_moved_to(client, blog, database):
    from service.accounts.store import AccountStore

    async with database.transaction() as session:
        await AccountStore(session).update("blog", moved_to="https://new.example/users/blog")
    actor = (await client.get("/users/blog", headers=AP)).json()
    assert actor["movedTo"] == "https://new.example/users/blog"


async def test_browser_asking_for_actor_is_sent_to_the_profile_page(client, blog):
    response = await client.get("/users/blog", headers=BROWSER)
    assert response.status_code == 303
    assert response.headers["location"] == "http://relay.test/@blog"


async def test_profile_page_is_html_with_escaped_profile(client, blog):
    response = await client.get("/@blog", headers=BROWSER)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Example Blog" in response.text
    assert "<script>alert(1)</script>" not in response.text
    assert "@blog@relay.test" in response.text


async def test_profile_page_loads_no_third_party_assets(client, blog):
    response = await client.get("/@blog", headers=BROWSER)
    assert "<script" not in response.text
    assert '<link rel="stylesheet"' not in response.text
    assert "default-src 'none'" in response.headers["content-security-policy"]


async def test_unknown_actor_is_404_problem(client):
    response = await client.get("/users/nobody", headers=AP)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_handles_are_matched_case_insensitively(client, blog):
    response = await client.get("/users/BLOG", headers=AP)
    assert response.status_code == 200
