"""MIX through the user's own server (XEP-0405, MIX-PAM) with slixmpp's xep_0405 plugin, against
Prosody (deploy/prosody-modules/mod_mix_pam.lua) and ejabberd (its mod_mix_pam with
deploy/ejabberd-modules/mod_mixd_pam.erl); and the direct way in, where the client joins the
channel itself and is online from its join on.

No test sleeps: each waits for what it expects, and a check that nothing arrived is made once
a stanza sent later has arrived (the channel answers a ping after it has sent what came before).
"""

from conftest import connected, run
from harness.servers import USER_DOMAIN

MESSAGES = "urn:xmpp:mix:nodes:messages"
PARTICIPANTS = "urn:xmpp:mix:nodes:participants"
INFO = "urn:xmpp:mix:nodes:info"
PAM = "urn:xmpp:mix:pam:2"


async def create(owner, name):
    await owner.plugin["xep_0369"].create_channel(owner.channel("x"), name, timeout=10)


async def pam_join(client, name, nick):
    """Joins through the client's own server; returns the nodes it failed to subscribe."""
    return await client.plugin["xep_0405"].join_channel(
        client.channel(name), nick, {MESSAGES, PARTICIPANTS, INFO}, timeout=10)


async def settled(client):
    """A round trip with the client's own server: what the client sent before (its presence)
    has been processed."""
    await client.plugin["xep_0199"].ping(USER_DOMAIN, timeout=10)


async def nothing_from(client, name):
    """Nothing more reached `client`'s message queue from channel `name`: the channel
    answers a ping only after sending what it had to send before."""
    await client.plugin["xep_0199"].ping(client.channel(name), timeout=10)
    assert client.mix_messages.empty(), f"unexpected: {client.mix_messages.get_nowait()}"


def mix_roster(items):
    return {str(item["jid"]): item["channel"]["participant-id"] for item in items}


def test_join_post_receive_leave_through_the_own_server(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice/laptop", "bob/phone", "bob/laptop") as (alice, phone, laptop):
            channel = alice.channel(channel_name)
            assert await alice.plugin["xep_0405"].check_server_capability()
            await create(alice, channel_name)
            assert await pam_join(alice, channel_name, "alice") == set()
            await settled(laptop)
            assert await pam_join(phone, channel_name, "bob") == set()

            # The channel is in bob's roster, marked with his participant id.
            _, channels = await phone.plugin["xep_0405"].get_mix_roster(timeout=10)
            roster = mix_roster(channels)
            assert str(channel) in roster and roster[str(channel)]

            # alice's server delivered the channel's news of bob's join.
            kind, event = await alice.next_event(PARTICIPANTS)
            assert kind == "pubsub_publish"
            assert event["pubsub_event"]["items"]["item"]["mix_participant"]["nick"] == "bob"

            # A post reaches the author and both of bob's resources, each at its full JID.
            alice.post(channel_name, "Harpier cries", origin_id="pam-1")
            for client in (alice, phone, laptop):
                msg = await client.next_message()
                assert msg["body"] == "Harpier cries"
                assert msg["type"] == "groupchat"
                assert msg["to"] == client.boundjid
                assert msg["mix"]["nick"] == "alice"

            # Bob reads the channel's history from the channel.
            history = await phone.plugin["xep_0313"].retrieve(jid=channel, rsm={"max": 10})
            bodies = [m["mam_result"]["forwarded"]["stanza"]["body"] for m in history["mam"]["results"]]
            assert bodies == ["Harpier cries"]

            # Bob leaves through his server: answered, out of the roster, told nothing more.
            answer = await phone.plugin["xep_0405"].leave_channel(channel, timeout=10)
            assert answer["type"] == "result"
            assert answer.xml.find(f"{{{PAM}}}client-leave") is not None
            _, channels = await phone.plugin["xep_0405"].get_mix_roster(timeout=10)
            assert str(channel) not in mix_roster(channels)
            kind, event = await alice.next_event(PARTICIPANTS)
            assert kind == "pubsub_retract"
            alice.post(channel_name, "gone?")
            assert (await alice.next_message())["body"] == "gone?"
            for client in (phone, laptop):
                await nothing_from(client, channel_name)

    run(scenario())


def test_offline_user_finds_the_messages_offline_and_in_its_own_archive(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice") as (alice,):
            await create(alice, channel_name)
            await pam_join(alice, channel_name, "alice")
            async with connected(server, "carol/phone") as (carol,):
                await pam_join(carol, channel_name, "carol")
                await alice.next_event(PARTICIPANTS)
                # The server has closed carol's session once it closes its stream in answer.
                await carol.disconnect()
            alice.post(channel_name, "while you were out", origin_id="pam-offline")
            assert (await alice.next_message())["body"] == "while you were out"
            # A stanza sent after the post has gone through the channel: the post was handed
            # to carol's server before carol comes back.
            await alice.plugin["xep_0199"].ping(alice.channel(channel_name), timeout=10)

            async with connected(server, "carol/phone") as (carol,):
                # Offline storage, delivered on carol's initial presence.
                msg = await carol.next_message()
                assert msg["body"] == "while you were out"
                assert msg["from"].bare == str(carol.channel(channel_name))
                assert msg.xml.find("{urn:xmpp:delay}delay") is not None
                # And carol's own archive, on her account.
                archive = await carol.mam(carol.bare, max=50)
                stored = [m["mam_result"]["forwarded"]["stanza"] for m in archive["mam"]["results"]]
                mine = [s for s in stored if s["from"].bare == str(carol.channel(channel_name))]
                assert [s["body"] for s in mine if s["body"]] == ["while you were out"]
                assert mine[-1]["mix"]["nick"] == "alice"

    run(scenario())


def test_a_direct_joiner_hears_at_once(server, mixd, channel_name):
    """Direct mode, no presence sent by anyone: the owner's client that joined a moment
    before hears of the newcomer, and the newcomer hears what is posted right after its
    join."""
    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            await create(alice, channel_name)
            channel = alice.channel(channel_name)
            await alice.plugin["xep_0369"].join_channel(channel, "alice", timeout=10)
            await bob.plugin["xep_0369"].join_channel(channel, "bob", timeout=10)
            alice.post(channel_name, "welcome")
            kind, event = await alice.next_event(PARTICIPANTS)
            assert event["pubsub_event"]["items"]["item"]["mix_participant"]["nick"] == "bob"
            msg = await bob.next_message()
            assert msg["body"] == "welcome" and msg["to"] == bob.boundjid
            assert (await alice.next_message())["body"] == "welcome"

    run(scenario())
