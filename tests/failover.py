"""The set-up of a failover test, shared by test_standby.py and test_cluster.py: an active mixd
and its standby on one PostgreSQL database, and the active killed while messages flow."""

import asyncio
import contextlib
import signal
import tempfile
import time

from harness.servers import Mixd


@contextlib.contextmanager
def active_and_standby(active_server, standby_server):
    """An active mixd attached to `active_server` and, once it stands by, its standby on the same
    database attached to `standby_server` (the same server or another node). Both are killed at
    the end; one that is frozen (SIGSTOP) is woken first, so that it can die."""
    active = Mixd(active_server, tempfile.mkdtemp(prefix="mixd-db-"))
    standby = Mixd(standby_server, tempfile.mkdtemp(prefix="mixd-db-"), database=active.pg_database)
    try:
        active.start()
        standby.start(until="standing by")
        yield active, standby
    finally:
        for daemon in (active, standby):
            if daemon.process and daemon.process.poll() is None:
                daemon.process.send_signal(signal.SIGCONT)
            daemon.stop(signal.SIGKILL)


async def kill_while_flowing(alice, bob, channels, active, standby, messages, kill_after):
    """alice creates `channels` and both join them; alice posts `messages` round the channels and,
    once bob has received `kill_after` of them, the active is killed (SIGKILL). Returns every
    reflection either client received (id → (channel JID, body)), taken in until bob's stream
    falls silent, and when the active was killed, once the standby is connected."""
    for name in channels:
        await alice.create_live(name, bob)
    for i in range(messages):
        alice.post(channels[i % len(channels)], f"m{i}")
    seen = {}

    def take(msg):
        seen[msg["id"]] = (msg["from"].bare, msg["body"])

    while len(seen) < kill_after:
        take(await bob.next_message())
    active.stop(signal.SIGKILL)
    killed = time.monotonic()
    # Take in whatever was already on its way.
    try:
        while True:
            take(await bob.next_message(timeout=1))
    except asyncio.TimeoutError:
        pass
    while not alice.mix_messages.empty():
        take(alice.mix_messages.get_nowait())
    await asyncio.to_thread(standby.wait_for_log, "component connected", 0, 10)
    return seen, killed
