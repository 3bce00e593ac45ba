"""What each requester may see (issue 13), through slixmpp against Prosody and ejabberd: the
service's channel list (XEP-0369 §6.3: only the channels the requester has rights to join),
a channel's disco#info and nodes, the allowed and banned nodes (owners and admins only), and
the departed owner's right to delete (the FlyChat SDK's exit-then-delete), which belongs to
the channel the owner left — never to a later channel of the same name — and survives a
restart of mixd."""

import asyncio

from slixmpp.exceptions import IqError

from conftest import connected, run
from harness.servers import MIX_DOMAIN

ALLOWED = "urn:xmpp:mix:nodes:allowed"
BANNED = "urn:xmpp:mix:nodes:banned"
INFO = "urn:xmpp:mix:nodes:info"
PARTICIPANTS = "urn:xmpp:mix:nodes:participants"


async def listed(client):
    """The channel JIDs the service lists to `client` (disco#items of the service)."""
    channels = await client.plugin["xep_0369"].list_channels(client.channel("x"), timeout=10)
    return {str(jid) for jid, _ in channels}


async def ad_hoc(client):
    iq = client.make_iq_set(ito=MIX_DOMAIN)
    iq.enable("mix_create")
    return (await iq.send(timeout=10))["mix_create"]["channel"]


async def error_of(coroutine):
    """The condition and text of the error `coroutine` ends with."""
    try:
        await coroutine
    except IqError as e:
        return e.iq["error"]["condition"], e.iq["error"]["text"]
    raise AssertionError("the request succeeded")


def test_discovery_shows_each_requester_only_what_it_may_see(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob", "carol", "dave") as (alice, bob, carol, dave):
            mix = alice.plugin["xep_0369"]
            public, invited = f"{channel_name}-public", f"{channel_name}-invite"
            for name in (public, invited):
                await mix.create_channel(alice.channel("x"), name, timeout=10)
                await alice.join_live(name, "alice")
            await alice.admin(invited, "settings", policy="invite")
            hidden = await ad_hoc(alice)
            await alice.join_live(hidden, "alice")
            # Bob takes part in all three: the ad-hoc one by its name, the other by invitation.
            await alice.invite(invited, bob.bare)
            for name in (public, invited, hidden):
                await bob.join_live(name, "bob")
            # Carol is invited and has not joined yet.
            await alice.invite(invited, carol.bare)
            jids = {name: str(alice.channel(name)) for name in (public, invited, hidden)}

            # An outsider sees the public channel only.
            seen = await listed(dave)
            assert jids[public] in seen
            assert jids[invited] not in seen and jids[hidden] not in seen
            # A participant sees its own, the invitee the one it is invited to.
            assert set(jids.values()) <= await listed(bob)
            seen = await listed(carol)
            assert jids[public] in seen and jids[invited] in seen and jids[hidden] not in seen

            # A channel the requester may not see answers as a missing one would, whatever
            # it is asked; a public channel answers anyone before joining (XEP-0369 §7.1).
            disco = dave.plugin["xep_0030"]
            missing = await error_of(disco.get_info(dave.channel(f"{channel_name}-none"), timeout=10))
            assert missing[0] == "item-not-found"
            for name in (invited, hidden):
                condition, text = await error_of(disco.get_info(dave.channel(name), timeout=10))
                assert (condition, text.replace(name, "?")) == ("item-not-found", missing[1].replace(f"{channel_name}-none", "?"))
                condition, _ = await error_of(disco.get_items(dave.channel(name), node="mix", timeout=10))
                assert condition == "item-not-found"
                condition, _ = await error_of(dave.items(name, INFO))
                assert condition == "item-not-found"
            info = await disco.get_info(dave.channel(public), timeout=10)
            assert "urn:xmpp:mix:core:1" in info["disco_info"]["features"]
            assert await dave.items(public, INFO)
            info = await carol.plugin["xep_0030"].get_info(carol.channel(invited), timeout=10)
            assert "urn:xmpp:mix:core:1" in info["disco_info"]["features"]
            for name in (invited, hidden):
                await bob.plugin["xep_0030"].get_info(bob.channel(name), timeout=10)

            # Closing the public channel to newcomers takes it off the outsider's list.
            await alice.admin(public, "settings", policy="request")
            assert jids[public] not in await listed(dave)
            assert jids[public] in await listed(bob)

    run(scenario())


def test_access_lists_are_for_owners_and_admins(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob", "frank", "dave") as (alice, bob, frank, dave):
            await alice.create_live(channel_name, bob, frank)
            await alice.admin(channel_name, "role", jid=frank.bare, role="admin")
            await alice.ban(channel_name, "eve@evil.example")
            await alice.ban(channel_name, "localhost", node=ALLOWED)

            # An outsider and a plain member are refused, with a text; an admin and the owner
            # read both lists.
            for client in (dave, bob):
                for node in (ALLOWED, BANNED):
                    condition, text = await error_of(client.items(channel_name, node))
                    assert condition == "forbidden" and "owner or admin" in text
            for client in (frank, alice):
                assert [i.get("id") for i in await client.items(channel_name, BANNED)] == ["eve@evil.example"]
                assert [i.get("id") for i in await client.items(channel_name, ALLOWED)] == ["localhost"]

            # Nor are the two nodes listed to those who may not subscribe to them (XEP-0369
            # §6.5, XEP-0406: only owners and admins may).
            for client, sees in ((dave, False), (bob, False), (frank, True), (alice, True)):
                nodes = await client.plugin["xep_0369"].list_mix_nodes(client.channel(channel_name), timeout=10)
                assert PARTICIPANTS in nodes and INFO in nodes
                assert ({ALLOWED, BANNED} <= nodes) == sees, client.user
                if not sees:
                    assert not {ALLOWED, BANNED} & nodes, client.user

            # Participants and configuration stay the participants': the outsider is refused.
            condition, _ = await error_of(dave.items(channel_name, PARTICIPANTS))
            assert condition == "forbidden"
            assert await bob.config(channel_name)

    run(scenario())


async def exit_group(client, name):
    """The FlyChat SDK's userExitGroup for the client itself."""
    return await client.flychat(name, "user_exit_group", [client.bare])


async def delete_group(client, name):
    """The FlyChat SDK's userDeleteGroup after that exit."""
    return await client.flychat(name, "user_delete_group", [client.bare])


async def exists(client, name):
    """Whether channel `name` exists, as its participant `client` reads it."""
    try:
        await client.plugin["xep_0369"].list_participants(client.channel(name), timeout=10)
        return True
    except IqError as e:
        assert e.iq["error"]["condition"] == "item-not-found", e.iq["error"]["text"]
        return False


def test_a_departed_owner_cannot_delete_a_new_channel_of_the_same_name(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            # Alice's channel dies with her exit (she was the last one in).
            await alice.create_live(channel_name)
            await exit_group(alice, channel_name)
            # Bob makes a new channel of that name at once.
            await bob.create_live(channel_name)

            for delete in (lambda: delete_group(alice, channel_name), lambda: alice.destroy(channel_name)):
                condition, text = await error_of(delete())
                assert condition == "forbidden" and "owner" in text
            assert await exists(bob, channel_name)
            assert [nick for _, nick, _ in await bob.plugin["xep_0369"].list_participants(bob.channel(channel_name), timeout=10)] == ["bob"]

    run(scenario())


def test_exit_then_delete_works_and_survives_a_restart(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            shared, alone, later = (f"{channel_name}-{suffix}" for suffix in ("shared", "alone", "later"))
            for name in (shared, alone, later):
                await alice.create_live(name)
            for name in (shared, later):
                await bob.join_live(name, "bob")

            # Without a restart: exit (ownership passes to bob), then delete.
            await exit_group(alice, later)
            await delete_group(alice, later)
            assert not await exists(bob, later)

            # With a restart between the exit and the delete: in a group that lives on, and in
            # one the exit emptied (and deleted), whose delete is then answered with success.
            await exit_group(alice, shared)
            await exit_group(alice, alone)
            await asyncio.to_thread(mixd.stop)
            await asyncio.to_thread(mixd.start)
            await delete_group(alice, shared)
            await delete_group(alice, alone)
            assert not await exists(bob, shared)
            # The right was used up: a second delete finds nothing.
            condition, _ = await error_of(delete_group(alice, alone))
            assert condition == "item-not-found"

    run(scenario())
