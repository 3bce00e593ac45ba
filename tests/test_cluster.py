"""mixd beside a cluster of two ejabberd 23.01 nodes (issue 15, item 3): distinct node names,
ports and a cookie of their own, clustered with `ejabberdctl join_cluster` (harness/servers.py
EjabberdCluster). Users logged in on different nodes share a channel; the active mixd is
attached to one node and its standby (PostgreSQL) to the other, and a failover to the
standby keeps users of both nodes served. docs/operations.md, "ejabberd cluster", says how
`ejabberd_service` behaves there."""

import os
import tempfile
import time

import pytest

from conftest import USERS, archive, assert_archived_once, connected, run
from failover import active_and_standby, kill_while_flowing
from harness.servers import STORE, EjabberdCluster, Mixd, started

PARTICIPANTS = "urn:xmpp:mix:nodes:participants"
CHANNELS = ("node-a", "node-b")


@pytest.fixture(scope="module")
def cluster():
    nodes = started(EjabberdCluster, USERS[:3])
    yield nodes
    nodes.stop()


async def exchange(name, first, second):
    """`first` and `second` (logged in on different nodes) post in `name`; each gets the other's
    message."""
    first.post(name, f"from {first.boundjid.user} in {name}")
    assert (await second.next_message())["body"] == f"from {first.boundjid.user} in {name}"
    assert (await first.next_message())["body"] == f"from {first.boundjid.user} in {name}"
    second.post(name, f"from {second.boundjid.user} in {name}")
    assert (await first.next_message())["body"] == f"from {second.boundjid.user} in {name}"
    assert (await second.next_message())["body"] == f"from {second.boundjid.user} in {name}"


def test_users_on_different_nodes_share_a_channel(cluster):
    first, second = cluster.nodes
    mixd = Mixd(first, tempfile.mkdtemp(prefix="mixd-db-"))
    mixd.start()

    async def scenario():
        async with connected(first, "alice") as (alice,), connected(second, "bob") as (bob,):
            await alice.create_live("shared")
            # bob's join, through the other node, is an event for alice on the first.
            await bob.join_live("shared", "bob")
            kind, event = await alice.next_event(PARTICIPANTS)
            item = event["pubsub_event"]["items"]["item"]
            assert (kind, item["mix_participant"]["jid"]) == ("pubsub_publish", bob.bare)
            await exchange("shared", alice, bob)

    try:
        run(scenario())
    finally:
        mixd.stop()


@pytest.mark.skipif(STORE != "postgres", reason="a standby needs PostgreSQL (MIXD_STORE=postgres)")
# Once in the suite; MIXD_FAILOVER_ROUNDS=20 repeats it on the same cluster, each round with a
# new database, active and standby (docs/benchmarks.md, "Failover").
@pytest.mark.parametrize("round", range(int(os.environ.get("MIXD_FAILOVER_ROUNDS", "1"))))
def test_a_standby_on_the_other_node_takes_over_for_both(cluster, round):
    first, second = cluster.nodes

    async def scenario(active, standby):
        async with connected(first, "alice") as (alice,), connected(second, "bob") as (bob,):
            seen, killed = await kill_while_flowing(alice, bob, CHANNELS, active, standby, 300, 60)
            # The standby is connected to the other node; users of both nodes are served.
            for name in CHANNELS:
                await exchange(name, alice, bob)
            serving = time.monotonic() - killed
            assert serving < 10, f"the standby served {serving:.1f} s after the kill"
            assert_archived_once(await archive(bob, CHANNELS), seen)
            return serving

    with active_and_standby(first, second) as (active, standby):
        serving = run(scenario(active, standby))
    print(f"the standby on the other node served {serving:.2f} s after the active was killed")
