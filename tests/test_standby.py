"""Hot standby on PostgreSQL: two mixd on one database, one active, the other waiting. Killing
the active while messages flow in several channels, the standby takes over within 10 s, and
every message whose reflection a client received is in the archive exactly once."""

import asyncio
import signal
import subprocess
import time

import pytest

from conftest import USERS, archive, assert_archived_once, connected, run
from failover import active_and_standby, kill_while_flowing
from harness.servers import SERVERS, STORE, started

pytestmark = pytest.mark.skipif(
    STORE != "postgres",
    reason="a standby needs a database two mixd share: PostgreSQL (MIXD_STORE=postgres)",
)

CHANNELS = ("flow-a", "flow-b", "flow-c")


@pytest.fixture(params=sorted(SERVERS))
def server(request):
    """A server of each kind, with alice and bob."""
    srv = started(SERVERS[request.param], USERS[:2])
    yield request.param, srv
    srv.stop()


@pytest.fixture
def pair(server):
    """A server, an active mixd and its standby on the same database."""
    kind, srv = server
    with active_and_standby(srv, srv) as (active, standby):
        yield kind, srv, active, standby


def test_the_standby_takes_over_when_the_active_dies(pair):
    _, server, active, standby = pair

    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            # A standby binds its control socket only once it is active: it answers no
            # `mixd admin` while it waits.
            assert active.control_socket.exists() and not standby.control_socket.exists()
            seen, killed = await kill_while_flowing(alice, bob, CHANNELS, active, standby, 600, 90)
            # The standby serves: which clients are online is stored, so the clients need not
            # say it again.
            alice.post(CHANNELS[0], "after the takeover")
            while (await bob.next_message())["body"] != "after the takeover":
                pass
            serving = time.monotonic() - killed
            assert serving < 10, f"the standby served {serving:.1f} s after the kill"

            assert_archived_once(await archive(bob, CHANNELS), seen)
            return serving

    serving = run(scenario())
    print(f"standby served {serving:.2f} s after the active was killed")
    assert standby.query("SELECT count(*) FROM messages WHERE content LIKE '%after the takeover%'") == [(1,)]
    # The new active takes the operator's changes on its own control socket.
    destroyed = subprocess.run([standby.binary, "admin", "--database", standby.database,
                                "--control-socket", str(standby.control_socket), "destroy", CHANNELS[-1]],
                               capture_output=True, text=True, timeout=30)
    assert destroyed.returncode == 0, destroyed.stderr
    assert standby.query("SELECT count(*) FROM channels WHERE name = ?", CHANNELS[-1]) == [(0,)]


def test_a_stalled_active_loses_its_place_and_cannot_write(pair):
    kind, server, active, standby = pair

    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            await alice.create_live("stall", bob)
            alice.post("stall", "before")
            assert (await bob.next_message())["body"] == "before"

            # Frozen, its lock session falls silent: the server ends it after the lease (10 s)
            # and the standby takes over.
            active.process.send_signal(signal.SIGSTOP)
            stopped = time.monotonic()
            await asyncio.to_thread(standby.wait_for_log, "active: this instance writes", 0, 30)
            took_over = time.monotonic() - stopped
            if kind == "prosody":
                # Prosody takes one connection per component: the frozen active's stays open,
                # and the new active is refused (conflict) until it closes. It keeps trying.
                await asyncio.to_thread(standby.wait_for_log, "the component's name is taken", 0, 15)
                assert "component connected" not in standby.log()
                assert standby.process.poll() is None, standby.log()
                # Woken, the old active finds its place taken and stops without writing; its
                # connection goes with it, and the new active gets in.
                active.process.send_signal(signal.SIGCONT)
                code = await asyncio.to_thread(active.process.wait, 15)
                assert code == 1, active.log()
            await asyncio.to_thread(standby.wait_for_log, "component connected", 0, 30)

            async def served(label):
                """What bob receives of alice's posts `label N`, posted until one arrives:
                ejabberd may route stanzas to the old active's connection as long as it keeps
                its route (frozen, and a moment after it closed), and those go unanswered: the
                clients try again."""
                received = set()
                for attempt in range(20):
                    for client in (alice, bob):
                        client.send_presence(pto=client.channel("stall"))
                    alice.post("stall", f"{label} {attempt}")
                    try:
                        while True:
                            received.add((await bob.next_message(timeout=1))["body"])
                    except asyncio.TimeoutError:
                        pass
                    if any(body.startswith(label) for body in received):
                        return received
                raise AssertionError(f"the new active did not serve: {label} never arrived")

            received = await served("during")

            # Woken (on ejabberd: still running frozen until now), the old active finds its
            # place taken and stops without writing.
            active.process.send_signal(signal.SIGCONT)
            code = await asyncio.to_thread(active.process.wait, 15)
            assert code == 1, active.log()
            assert "no longer the active one" in active.log() or "took the active place" in active.log()
            received |= await served("after")
            return took_over, received

    took_over, received = run(scenario())
    print(f"the standby took over {took_over:.1f} s after the active froze")
    rows = standby.query("SELECT content FROM messages WHERE channel = 1 AND notice = 0")
    bodies = [r[0] for r in rows]
    for body in received | {"before"}:
        assert sum(f">{body}<" in b for b in bodies) == 1, (body, bodies)
