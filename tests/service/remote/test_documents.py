"""Remote document fetching against real HTTP servers on loopback."""

import asyncio
import ipaddress
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import httpx
import pytest
from aiohttp import web

from federation.signatures.errors import SignatureError
from federation.signatures.keys import generate_rsa_key_pair
from federation.signatures.verification import verify_signed_request
from service.network.guarded_connections import (
    AddressPolicy,
    ForbiddenAddressError,
    guarded_aiohttp_connector,
    guarded_httpx_client,
    resolve_checked,
)
from service.remote.documents import (
    FetchLimits,
    FetchSigner,
    PublicKeyResolver,
    RemoteDocumentFetcher,
    RemoteFetchError,
)
from service.remote.host_rate_limit import HostRateLimiter
from tests.federation.signatures.signature_test_vectors import CAVAGE_TEST_PUBLIC_KEY

AP = "application/activity+json"
SIGNER_KEYS = generate_rsa_key_pair()
ALICE_KEYS = generate_rsa_key_pair()
SIGNER = FetchSigner("https://relay.example/actor#main-key", SIGNER_KEYS.private_pem)
# Only the test server's address is let through; every other special address stays refused.
ONLY_TEST_SERVER = AddressPolicy(exempt_networks=(ipaddress.ip_network("127.0.0.1/32"),))
FAST = FetchLimits(connect_timeout=1.0, read_timeout=0.5, total_timeout=3.0)


remote_state: dict[str, str] = {}


@dataclass
class Remote:
    base: str
    hits: Counter[str]


def _json(document: object, content_type: str = AP) -> web.Response:
    return web.Response(
        body=json.dumps(document).encode(),
        content_type=None,
        headers={"Content-Type": content_type},
    )


def _actor(
    base: str, name: str, *, pem: str = ALICE_KEYS.public_pem, key_ids: tuple[str, ...] = ()
) -> dict:
    actor = f"{base}/users/{name}"
    keys = [
        {"id": key_id, "owner": actor, "publicKeyPem": pem}
        for key_id in key_ids or (f"{actor}#main-key",)
    ]
    return {
        "id": actor,
        "type": "Person",
        "inbox": f"{actor}/inbox",
        "publicKey": keys[0] if len(keys) == 1 else keys,
    }


@pytest.fixture
async def remote() -> AsyncIterator[Remote]:
    hits: Counter[str] = Counter()
    # Module-level so a test can change what the server serves (a key rotation).
    state = remote_state
    state.clear()

    @web.middleware
    async def count(request: web.Request, handler):  # type: ignore[no-untyped-def]
        hits[request.path] += 1
        if "Signature" in request.headers:
            hits[f"signed {request.path}"] += 1
        return await handler(request)

    async def users(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name == "bob":
            return _json(_actor(state["base"], "bob", key_ids=(f"{state['base']}/keys/confirmed",)))
        if name == "rotating":
            return _json(_actor(state["base"], "rotating", pem=state["rotating_pem"]))
        if name == "weak":
            return _json(_actor(state["base"], "weak", pem=CAVAGE_TEST_PUBLIC_KEY))
        return _json(_actor(state["base"], name))

    async def key_document(request: web.Request) -> web.Response:
        key_id = f"{state['base']}{request.path}"
        owner = f"{state['base']}/users/bob"
        return _json({"id": key_id, "owner": owner, "publicKeyPem": ALICE_KEYS.public_pem})

    async def ld_json(request: web.Request) -> web.Response:
        return _json(
            {"id": f"{state['base']}/ld"},
            'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
        )

    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html></html>", content_type="text/html")

    async def not_found(request: web.Request) -> web.Response:
        return web.Response(status=404)

    async def streamed_big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": AP})
        await response.prepare(request)
        for _ in range(40):  # 40 x 64 KiB = 2.5 MiB, more than the 1 MiB cap
            await response.write(b" " * 65536)
        await response.write_eof()
        return response

    async def declared_big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": AP, "Content-Length": str(5_000_000)}
        )
        await response.prepare(request)
        await response.write(b"{")
        return response

    async def redirect(request: web.Request) -> web.Response:
        remaining = int(request.match_info["n"])
        target = f"/redirect/{remaining - 1}" if remaining > 0 else "/users/alice"
        raise web.HTTPFound(target)

    async def redirect_to(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def moved_actor(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently("/actor.json")

    async def actor_json(request: web.Request) -> web.Response:
        # Claims the id it was requested under, before the same-origin redirect.
        return _json({"id": f"{state['base']}/moved", "type": "Service"})

    async def id_mismatch(request: web.Request) -> web.Response:
        return _json({"id": "https://victim.example/users/admin", "type": "Person"})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return _json({"id": f"{state['base']}/slow"})

    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": AP})
        await response.prepare(request)
        for _ in range(30):
            await response.write(b" ")
            await asyncio.sleep(0.2)
        return response

    async def signed(request: web.Request) -> web.Response:
        try:
            verified = verify_signed_request(
                request.method,
                f"{state['base']}{request.path_qs}",
                list(request.headers.items()),
                await request.read(),
                key_lookup=lambda key_id: SIGNER_KEYS.public_pem,
            )
        except SignatureError as error:
            return web.Response(status=401, text=error.reason)
        return _json({"id": f"{state['base']}{request.path_qs}", "seenKeyId": verified.key_id})

    async def strict_users(request: web.Request) -> web.Response:
        # A server that serves even actors only to signed GETs (as some do).
        if "Signature" not in request.headers:
            return web.Response(status=401, text="signature required")
        name = request.match_info["name"]
        actor = _actor(state["base"], name)
        strict_id = f"{state['base']}/strict/{name}"
        actor["id"] = strict_id
        actor["publicKey"] = {
            "id": f"{strict_id}#main-key",
            "owner": strict_id,
            "publicKeyPem": ALICE_KEYS.public_pem,
        }
        return _json(actor)

    app = web.Application(middlewares=[count])
    app.router.add_get("/strict/{name}", strict_users)
    app.router.add_get("/users/{name}", users)
    app.router.add_get("/keys/{name}", key_document)
    app.router.add_get("/ld", ld_json)
    app.router.add_get("/html", html)
    app.router.add_get("/missing", not_found)
    app.router.add_get("/big", streamed_big)
    app.router.add_get("/declared-big", declared_big)
    app.router.add_get("/redirect/{n}", redirect)
    app.router.add_get("/redirect-to", redirect_to)
    app.router.add_get("/moved", moved_actor)
    app.router.add_get("/actor.json", actor_json)
    app.router.add_get("/id-mismatch", id_mismatch)
    app.router.add_get("/slow", slow)
    app.router.add_get("/trickle", trickle)
    app.router.add_get("/signed", signed)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state["base"] = f"http://127.0.0.1:{port}"
    state["rotating_pem"] = ALICE_KEYS.public_pem
    try:
        yield Remote(state["base"], hits)
    finally:
        await runner.cleanup()


@pytest.fixture
async def fetcher() -> AsyncIterator[RemoteDocumentFetcher]:
    instance = RemoteDocumentFetcher(
        policy=ONLY_TEST_SERVER, allow_http=True, signer=SIGNER, limits=FAST
    )
    try:
        yield instance
    finally:
        await instance.aclose()


async def _failure(fetcher: RemoteDocumentFetcher, url: str) -> RemoteFetchError:
    with pytest.raises(RemoteFetchError) as caught:
        await fetcher.fetch(url)
    return caught.value


# --- fetching -------------------------------------------------------------------------------


async def test_actor_document_is_fetched_and_parsed(
    remote: Remote, fetcher: RemoteDocumentFetcher
) -> None:
    fetched = await fetcher.fetch(f"{remote.base}/users/alice")
    assert fetched.document["id"] == f"{remote.base}/users/alice"
    assert fetched.final_url == fetched.requested_url


async def test_ld_json_with_profile_is_accepted(
    remote: Remote, fetcher: RemoteDocumentFetcher
) -> None:
    assert (await fetcher.fetch(f"{remote.base}/ld")).document["id"] == f"{remote.base}/ld"


async def test_wrong_content_type_is_refused(
    remote: Remote, fetcher: RemoteDocumentFetcher
) -> None:
    assert (await _failure(fetcher, f"{remote.base}/html")).reason == "content_type"


async def test_error_status_is_reported_with_its_code(
    remote: Remote, fetcher: RemoteDocumentFetcher
) -> None:
    error = await _failure(fetcher, f"{remote.base}/missing")
    assert (error.reason, error.status_code) == ("http_status", 404)


async def test_oversized_streamed_body_is_cut_off(
    remote: Remote, fetcher: RemoteDocumentFetcher
) -> None:
    assert (await _failure(fetcher, f"{remote.base}/big")).reason == "too_large"


async def test_oversized_declared_length_is_refused_before_reading(
    remote: Remote, fetcher: RemoteDocumentFetcher
) -> None:
    assert (await _failure(fetcher, f"{remote.base}/declared-big")).reason == "too_large"


async def test_three_redirects_are_followed(remote: Remote, fetcher: RemoteDocumentFetcher) -> None:
    fetched = await fetcher.fetch(f"{remote.base}/redirect/2")
    assert fetched.final_url == f"{remote.base}/users/alice"


async def test_too_many_redirects_are_refused(
    remote: Remote, fetcher: RemoteDocumentFetcher
) -> None:
    assert (await _failure(fetcher, f"{remote.base}/redirect/3")).reason == "too_many_redirects"


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.2/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://10.0.0.1/",
    ],
)
async def test_redirect_to_a_forbidden_address_is_refused(
    remote: Remote, fetcher: RemoteDocumentFetcher, target: str
) -> None:
    error = await _failure(fetcher, f"{remote.base}/redirect-to?to={target}")
    assert error.reason == "forbidden_address"
    assert error.url.startswith(target.rstrip("/"))


async def test_redirect_to_another_scheme_is_refused(
    remote: Remote, fetcher: RemoteDocumentFetcher
) -> None:
    error = await _failure(fetcher, f"{remote.base}/redirect-to?to=file:///etc/passwd")
    assert error.reason == "forbidden_url"


async def test_loopback_is_refused_outside_test_mode() -> None:
    fetcher = RemoteDocumentFetcher(policy=AddressPolicy(), allow_http=True, limits=FAST)
    try:
        assert (await _failure(fetcher, "http://127.0.0.1:9/users/a")).reason == "forbidden_address"
    finally:
        await fetcher.aclose()


async def test_document_claiming_another_id_is_refused(
    remote: Remote, fetcher: RemoteDocumentFetcher
) -> None:
    assert (await _failure(fetcher, f"{remote.base}/id-mismatch")).reason == "id_mismatch"


async def test_same_origin_redirect_keeps_the_requested_id(
    remote: Remote, fetcher: RemoteDocumentFetcher
) -> None:
    fetched = await fetcher.fetch(f"{remote.base}/moved")
    assert fetched.final_url == f"{remote.base}/actor.json"
    assert fetched.document["id"] == f"{remote.base}/moved"


async def test_slow_server_hits_the_read_timeout(
    remote: Remote, fetcher: RemoteDocumentFetcher
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert (await _failure(fetcher, f"{remote.base}/slow")).reason == "timeout"
    assert loop.time() - started < 1.5


async def test_trickling_server_hits_the_total_timeout(remote: Remote) -> None:
    limits = FetchLimits(connect_timeout=1.0, read_timeout=1.0, total_timeout=1.0)
    fetcher = RemoteDocumentFetcher(policy=ONLY_TEST_SERVER, allow_http=True, limits=limits)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        assert (await _failure(fetcher, f"{remote.base}/trickle")).reason == "timeout"
    finally:
        await fetcher.aclose()
    assert loop.time() - started < 2.0


async def test_get_is_signed_so_authorized_fetch_servers_answer(
    remote: Remote, fetcher: RemoteDocumentFetcher
) -> None:
    fetched = await fetcher.fetch(f"{remote.base}/signed?x=1")
    assert fetched.document["seenKeyId"] == SIGNER.key_id


async def test_unsigned_get_is_turned_away_by_authorized_fetch_server(remote: Remote) -> None:
    fetcher = RemoteDocumentFetcher(policy=ONLY_TEST_SERVER, allow_http=True, limits=FAST)
    try:
        error = await _failure(fetcher, f"{remote.base}/signed")
    finally:
        await fetcher.aclose()
    assert (error.reason, error.status_code) == ("http_status", 401)


async def test_fragment_is_not_sent(remote: Remote, fetcher: RemoteDocumentFetcher) -> None:
    fetched = await fetcher.fetch(f"{remote.base}/users/alice#main-key")
    assert fetched.requested_url == f"{remote.base}/users/alice"


# --- client edge cases (mock transport) -----------------------------------------------------


def _mocked(handler) -> RemoteDocumentFetcher:  # type: ignore[no-untyped-def]
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return RemoteDocumentFetcher(policy=AddressPolicy(), client=client, limits=FAST)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (b"[" * 100_000, "invalid_json"),
        (b'{"type": "Note"}', "id_mismatch"),
        (b'{"id": 5}', "id_mismatch"),
    ],
)
async def test_unusable_bodies_are_refused(body: bytes, reason: str) -> None:
    fetcher = _mocked(
        lambda request: httpx.Response(200, content=body, headers={"Content-Type": AP})
    )
    assert (await _failure(fetcher, "https://remote.example/x")).reason == reason


async def test_redirect_without_location_is_refused() -> None:
    fetcher = _mocked(lambda request: httpx.Response(302))
    assert (await _failure(fetcher, "https://remote.example/x")).reason == "bad_redirect"


async def test_plain_http_is_refused_outside_test_mode() -> None:
    fetcher = _mocked(lambda request: httpx.Response(200))
    assert (await _failure(fetcher, "http://remote.example/x")).reason == "forbidden_url"


async def test_cross_origin_redirect_must_land_on_a_document_with_its_own_id() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "a.example":
            return httpx.Response(302, headers={"Location": "https://b.example/users/x"})
        return httpx.Response(
            200, json={"id": "https://a.example/users/x"}, headers={"Content-Type": AP}
        )

    assert (await _failure(_mocked(handler), "https://a.example/users/x")).reason == "id_mismatch"


# --- guarded connections --------------------------------------------------------------------


async def test_name_resolving_to_loopback_is_refused() -> None:
    with pytest.raises(ForbiddenAddressError):
        await resolve_checked("localhost", 80, AddressPolicy())


async def test_test_mode_lets_loopback_names_resolve() -> None:
    addresses = await resolve_checked("localhost", 80, AddressPolicy(allow_private=True))
    assert addresses and all(ipaddress.ip_address(a.address).is_loopback for a in addresses)


async def test_httpx_transport_refuses_a_forbidden_peer_without_url_checks(remote: Remote) -> None:
    async with guarded_httpx_client(AddressPolicy(), timeout=httpx.Timeout(2.0)) as client:
        with pytest.raises(ForbiddenAddressError):
            await client.get(f"{remote.base}/users/alice")
        with pytest.raises(ForbiddenAddressError):
            await client.get(remote.base.replace("127.0.0.1", "localhost") + "/users/alice")


async def test_aiohttp_connector_refuses_literal_and_named_forbidden_peers(remote: Remote) -> None:
    connector = guarded_aiohttp_connector(AddressPolicy())
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
        for url in (
            f"{remote.base}/users/alice",
            remote.base.replace("127.0.0.1", "localhost") + "/users/a",
        ):
            with pytest.raises(aiohttp.ClientConnectorError) as caught:
                await session.get(url)
            assert isinstance(caught.value.os_error, ForbiddenAddressError)
    assert remote.hits["/users/alice"] == 0


async def test_aiohttp_connector_connects_to_allowed_peers(remote: Remote) -> None:
    connector = guarded_aiohttp_connector(ONLY_TEST_SERVER)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
        async with session.get(f"{remote.base}/users/alice") as response:
            assert response.status == 200


# --- public keys ----------------------------------------------------------------------------


@pytest.fixture
def resolver(fetcher: RemoteDocumentFetcher) -> PublicKeyResolver:
    return PublicKeyResolver(fetcher, rate_limiter=HostRateLimiter(capacity=20))


async def test_key_in_actor_document_resolves_to_its_owner(
    remote: Remote, resolver: PublicKeyResolver
) -> None:
    key = await resolver.resolve(f"{remote.base}/users/alice#main-key")
    assert key.owner == f"{remote.base}/users/alice"
    assert key.public_key_pem == ALICE_KEYS.public_pem


async def test_key_in_actor_document_brings_the_owners_inboxes(
    remote: Remote, resolver: PublicKeyResolver
) -> None:
    key = await resolver.resolve(f"{remote.base}/users/alice#main-key")
    assert key.owner_endpoints is not None
    assert key.owner_endpoints.inbox == f"{remote.base}/users/alice/inbox"


async def test_key_fetch_goes_out_unsigned(remote: Remote, resolver: PublicKeyResolver) -> None:
    await resolver.resolve(f"{remote.base}/users/alice#main-key")
    assert remote.hits["/users/alice"] == 1
    assert remote.hits["signed /users/alice"] == 0


async def test_key_fetch_refused_unsigned_is_asked_again_signed(
    remote: Remote, resolver: PublicKeyResolver
) -> None:
    key = await resolver.resolve(f"{remote.base}/strict/carol#main-key")
    assert key.owner == f"{remote.base}/strict/carol"
    assert (remote.hits["/strict/carol"], remote.hits["signed /strict/carol"]) == (2, 1)


async def test_host_refusing_unsigned_key_fetches_gets_signed_ones_from_then_on(
    remote: Remote, resolver: PublicKeyResolver
) -> None:
    await resolver.resolve(f"{remote.base}/strict/carol#main-key")
    await resolver.resolve(f"{remote.base}/strict/dave#main-key")
    assert (remote.hits["/strict/dave"], remote.hits["signed /strict/dave"]) == (1, 1)


async def test_documents_other_than_keys_are_fetched_signed(
    remote: Remote, fetcher: RemoteDocumentFetcher
) -> None:
    await fetcher.fetch(f"{remote.base}/users/alice")
    assert remote.hits["signed /users/alice"] == 1


async def test_resolved_key_is_served_from_cache(
    remote: Remote, resolver: PublicKeyResolver
) -> None:
    key_id = f"{remote.base}/users/alice#main-key"
    await resolver.resolve(key_id)
    await resolver.resolve(key_id)
    assert remote.hits["/users/alice"] == 1


async def test_refresh_fetches_again(remote: Remote, resolver: PublicKeyResolver) -> None:
    key_id = f"{remote.base}/users/alice#main-key"
    await resolver.resolve(key_id)
    await resolver.refresh(key_id)
    assert remote.hits["/users/alice"] == 2


async def test_cached_key_expires_after_its_ttl(
    remote: Remote, fetcher: RemoteDocumentFetcher
) -> None:
    now = [0.0]
    resolver = PublicKeyResolver(fetcher, ttl_seconds=60, clock=lambda: now[0])
    key_id = f"{remote.base}/users/alice#main-key"
    await resolver.resolve(key_id)
    now[0] = 61.0
    await resolver.resolve(key_id)
    assert remote.hits["/users/alice"] == 2


async def test_cache_is_bounded(remote: Remote, fetcher: RemoteDocumentFetcher) -> None:
    resolver = PublicKeyResolver(fetcher, cache_size=2)
    for name in ("a", "b", "c", "a"):
        await resolver.resolve(f"{remote.base}/users/{name}#main-key")
    assert remote.hits["/users/a"] == 2


async def test_concurrent_resolves_share_one_fetch(
    remote: Remote, resolver: PublicKeyResolver
) -> None:
    key_id = f"{remote.base}/users/alice#main-key"
    keys = await asyncio.gather(*(resolver.resolve(key_id) for _ in range(5)))
    assert len(set(keys)) == 1
    assert remote.hits["/users/alice"] == 1


async def test_key_missing_from_the_actor_is_not_found(
    remote: Remote, resolver: PublicKeyResolver
) -> None:
    with pytest.raises(RemoteFetchError) as caught:
        await resolver.resolve(f"{remote.base}/users/alice#other-key")
    assert caught.value.reason == "key_not_found"


async def test_standalone_key_confirmed_by_its_owner_resolves(
    remote: Remote, resolver: PublicKeyResolver
) -> None:
    key = await resolver.resolve(f"{remote.base}/keys/confirmed")
    assert key.owner == f"{remote.base}/users/bob"


async def test_standalone_key_its_owner_does_not_list_is_refused(
    remote: Remote, resolver: PublicKeyResolver
) -> None:
    with pytest.raises(RemoteFetchError) as caught:
        await resolver.resolve(f"{remote.base}/keys/unclaimed")
    assert caught.value.reason == "key_not_found"


async def test_weak_key_is_unusable(remote: Remote, resolver: PublicKeyResolver) -> None:
    with pytest.raises(RemoteFetchError) as caught:
        await resolver.resolve(f"{remote.base}/users/weak#main-key")
    assert caught.value.reason == "key_unusable"


async def test_key_fetches_are_rate_limited_per_host(
    remote: Remote, fetcher: RemoteDocumentFetcher
) -> None:
    resolver = PublicKeyResolver(
        fetcher, rate_limiter=HostRateLimiter(capacity=2, refill_per_second=0.001)
    )
    await resolver.resolve(f"{remote.base}/users/a#main-key")
    await resolver.resolve(f"{remote.base}/users/b#main-key")
    with pytest.raises(RemoteFetchError) as caught:
        await resolver.resolve(f"{remote.base}/users/c#main-key")
    assert caught.value.reason == "rate_limited"
    assert remote.hits["/users/c"] == 0


def test_rate_limiter_refills_over_time() -> None:
    now = [0.0]
    limiter = HostRateLimiter(capacity=1, refill_per_second=1, clock=lambda: now[0])
    assert limiter.try_acquire("a.example")
    assert not limiter.try_acquire("A.example")
    now[0] = 1.0
    assert limiter.try_acquire("a.example")


def test_rate_limiter_memory_is_bounded() -> None:
    limiter = HostRateLimiter(max_hosts=100)
    for number in range(1000):
        limiter.try_acquire(f"host{number}.example")
    assert len(limiter) == 100


# --- key rotation --------------------------------------------------------------------------


async def test_refresh_picks_up_a_rotated_key_the_cache_still_holds(
    remote: Remote, resolver: PublicKeyResolver
) -> None:
    key_id = f"{remote.base}/users/rotating#main-key"
    assert (await resolver.resolve(key_id)).public_key_pem == ALICE_KEYS.public_pem
    new_keys = generate_rsa_key_pair()
    remote_state["rotating_pem"] = new_keys.public_pem
    assert (await resolver.resolve(key_id)).public_key_pem == ALICE_KEYS.public_pem
    assert (await resolver.refresh(key_id)).public_key_pem == new_keys.public_pem
    assert (await resolver.resolve(key_id)).public_key_pem == new_keys.public_pem
    assert remote.hits["/users/rotating"] == 2


async def test_compressed_documents_are_decoded() -> None:
    async def actor(request: web.Request) -> web.StreamResponse:
        response = web.json_response(
            {"id": str(request.url), "type": "Person"}, content_type="application/activity+json"
        )
        response.enable_compression(web.ContentCoding.gzip)
        return response

    app = web.Application()
    app.router.add_get("/users/zipped", actor)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fetcher = RemoteDocumentFetcher(policy=ONLY_TEST_SERVER, allow_http=True, limits=FAST)
    try:
        fetched = await fetcher.fetch(f"http://127.0.0.1:{port}/users/zipped")
    finally:
        await fetcher.aclose()
        await runner.cleanup()
    assert fetched.document["type"] == "Person"
