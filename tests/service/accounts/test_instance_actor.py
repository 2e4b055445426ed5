"""The instance actor: the relay's own key for signing its fetches of remote documents."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from bench.harness.cavage_reference import VerificationPolicy, load_public_key, verify_request
from federation.activitypub.urls import InstanceUrls
from service.accounts.instance_actor import instance_key, instance_signer
from service.remote.documents import RemoteDocumentFetcher

AP = {"Accept": "application/activity+json"}


async def test_instance_actor_is_an_application_with_a_public_key(client):
    response = await client.get("/actor", headers=AP)
    assert response.status_code == 200
    actor = response.json()
    assert actor["id"] == "http://relay.test/actor"
    assert actor["type"] == "Application"
    assert actor["preferredUsername"] == "relay.test"
    assert actor["publicKey"]["id"] == "http://relay.test/actor#main-key"
    assert actor["publicKey"]["owner"] == "http://relay.test/actor"
    assert actor["publicKey"]["publicKeyPem"].startswith("-----BEGIN PUBLIC KEY-----")


async def test_instance_actor_keeps_its_key(client):
    first = (await client.get("/actor", headers=AP)).json()["publicKey"]["publicKeyPem"]
    second = (await client.get("/actor", headers=AP)).json()["publicKey"]["publicKeyPem"]
    assert first == second


async def test_instance_actor_is_served_unsigned_in_authorized_fetch_mode(settings):
    from bench.harness.relay_harness import asgi_client
    from service.app import create_app

    app = create_app(settings.model_copy(update={"authorized_fetch": True}))
    async with app.router.lifespan_context(app), asgi_client(app, settings.base_url) as http:
        assert (await http.get("/actor", headers=AP)).status_code == 200


async def test_concurrent_first_uses_agree_on_one_key(database):
    import asyncio

    keys = await asyncio.gather(*(instance_key(database) for _ in range(4)))
    assert len({key.public_pem for key in keys}) == 1


async def test_remote_fetches_are_signed_with_the_instance_key(database, settings, unused_tcp_port):
    """A server in authorized-fetch mode verifies the relay's GET against the instance key."""
    urls = InstanceUrls(settings.base_url)
    key = await instance_key(database)
    seen: list[str] = []

    async def actor(request: web.Request) -> web.Response:
        verify_request(
            method="GET",
            request_target=request.path_qs,
            headers=list(request.headers.items()),
            body=b"",
            public_key=load_public_key(key.public_pem),
            now=datetime.now(UTC),
            policy=VerificationPolicy(required_headers=("(request-target)", "host", "date")),
        )
        seen.append(request.headers["Signature"])
        document = {"id": str(request.url), "type": "Person"}
        return web.json_response(document, content_type="application/activity+json")

    app = web.Application()
    app.router.add_get("/users/alice", actor)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    try:
        fetcher = RemoteDocumentFetcher.from_settings(
            settings, signer=await instance_signer(database, urls)
        )
        try:
            fetched = await fetcher.fetch(f"http://127.0.0.1:{unused_tcp_port}/users/alice")
        finally:
            await fetcher.aclose()
    finally:
        await runner.cleanup()
    assert fetched.document["type"] == "Person"
    assert 'keyId="http://relay.test/actor#main-key"' in seen[0]
