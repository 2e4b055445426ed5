import asyncio, sys
from tests.test_federation_flow import LiveRelay, follow_everyone
from tests.federation_peers import create_account, create_post
from tests.relay_harness import loopback_settings, running_api, running_worker
from bench.fleet import Fleet
pytest_plugins = ("tests.fleet_fixture",)

async def test_debug(settings, database):
    live = loopback_settings(settings)
    account = await create_account(database)
    post = await create_post(database, live, account)
    async with Fleet(hosts=2, followers=2, key_pool_size=4) as fleet, running_api(live), running_worker(live) as worker:
        relay = LiveRelay(live, database, fleet, account, post)
        try:
            await follow_everyone(relay)
        except BaseException:
            mt = getattr(worker, "main_task", None)
            print("MAIN_TASK", mt, file=sys.stderr)
            if mt is not None and mt.done():
                print("MAIN_TASK_EXC", repr(mt.exception()), file=sys.stderr)
            for task in asyncio.all_tasks():
                print("TASK", task.get_name(), task.get_coro(), file=sys.stderr)
            raise
