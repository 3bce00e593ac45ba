"""Fixtures: a real server (Prosody and ejabberd, each test module runs against both), mixd
attached to it, and registered users. See harness/ for how each is started.

mixd stores in SQLite, or in PostgreSQL with `MIXD_STORE=postgres` (the harness then starts one
PostgreSQL server for the run and gives each mixd a database of its own); `scripts/test` runs
the suite once per store."""

import asyncio
import contextlib
import itertools
import os
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from harness.client import Client  # noqa: E402
from harness.servers import SERVERS, STORE, Mixd, started, stop_postgres  # noqa: E402

USERS = ("alice", "bob", "carol", "dave", "eve", "frank", "grace")


def pytest_report_header(config):
    return f"mixd store: {STORE} (MIXD_STORE)"


def pytest_sessionfinish(session, exitstatus):
    stop_postgres()


@pytest.fixture(scope="module", params=sorted(SERVERS))
def server(request):
    srv = started(SERVERS[request.param], USERS)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def mixd(server):
    daemon = Mixd(server, tempfile.mkdtemp(prefix="mixd-db-"))
    daemon.start()
    yield daemon
    daemon.stop()


_names = itertools.count()


@pytest.fixture
def channel_name(request):
    """A channel name of this test's own, so tests sharing one mixd do not meet."""
    return f"{request.node.originalname.replace('_', '-')[:40]}-{next(_names)}"


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 120))


@contextlib.asynccontextmanager
async def connected(server, *users):
    """Logged-in clients for `users` (`name` or `name/resource`), disconnected afterwards."""
    clients = []
    try:
        for user in users:
            name, _, resource = user.partition("/")
            clients.append(await Client(name, resource or "test").start(server.c2s_port))
        yield clients
    finally:
        for client in clients:
            await client.stop()


async def archive(client, channels):
    """Every message of `channels`' archives, read by `client` through MAM page by page: archive
    id → (channel name, body). An id listed twice fails."""
    archived = {}
    for name in channels:
        after = None
        while True:
            page = await client.mam(client.channel(name), max=250, **({"after": after} if after else {}))
            for m in page["mam"]["results"]:
                mid = m["mam_result"]["id"]
                assert mid not in archived, f"archive id {mid} twice"
                archived[mid] = (name, m["mam_result"]["forwarded"]["stanza"]["body"])
            if page.xml.find(".//{urn:xmpp:mam:2}fin").get("complete") == "true":
                break
            after = page["mam_fin"]["rsm"]["last"]
    return archived


def assert_archived_once(archived, seen):
    """Every reflection a client saw (`seen`: id → (channel JID, body)) is in `archived` (from
    `archive`) under its id, and no body is archived twice."""
    missing = {i: m for i, m in seen.items() if archived.get(i) != (str(m[0]).split("@")[0], m[1])}
    assert not missing, f"reflected but not archived: {missing}"
    bodies = [body for _, body in archived.values()]
    twice = {b for b in bodies if bodies.count(b) > 1}
    assert not twice, f"archived more than once: {twice}"
