"""Standard MIX (XEP-0369 core:1) through slixmpp's xep_0369 plugin, against Prosody and
ejabberd: discovery, create, join, messages, nicks, participants, info, leave, destroy."""


from slixmpp.plugins.xep_0369.stanza import Subscribe

from conftest import connected, run
from harness.servers import MIX_DOMAIN

MESSAGES = "urn:xmpp:mix:nodes:messages"
PARTICIPANTS = "urn:xmpp:mix:nodes:participants"
INFO = "urn:xmpp:mix:nodes:info"


def test_service_discovery(server, mixd):
    async def scenario():
        async with connected(server, "alice") as (alice,):
            info = await alice.plugin["xep_0030"].get_info(MIX_DOMAIN, timeout=10)
            identities = info["disco_info"]["identities"]
            assert any(cat == "conference" and kind == "mix" for cat, kind, *_ in identities)
            features = info["disco_info"]["features"]
            assert "urn:xmpp:mix:core:1" in features
            assert "urn:xmpp:mix:core:1#searchable" in features
            assert await alice.plugin["xep_0369"].can_create_channel(alice.channel("x"))

    run(scenario())


def test_channel_lifecycle(server, mixd, channel_name):
    def archived_copies(text):
        return mixd.query("SELECT count(*) FROM messages WHERE content LIKE ?", f"%{text}%")[0][0]

    async def scenario():
        async with connected(server, "alice", "bob", "carol") as (alice, bob, carol):
            mix = alice.plugin["xep_0369"]
            created = await mix.create_channel(alice.channel("x"), channel_name, timeout=10)
            assert created == channel_name
            channel = alice.channel(channel_name)

            # Channel disco: identity and the MIX nodes.
            info = await alice.plugin["xep_0030"].get_info(channel, timeout=10)
            assert "urn:xmpp:mam:2" in info["disco_info"]["features"]
            nodes = await mix.list_mix_nodes(channel, timeout=10)
            assert {MESSAGES, PARTICIPANTS, INFO} <= nodes
            listed = await mix.list_channels(alice.channel("x"), timeout=10)
            assert str(channel) in {str(jid) for jid, _ in listed}

            # Join: the result carries the participant id and its proxy JID.
            iq = alice.make_iq_set(ito=channel)
            iq["mix_join"]["nick"] = "alice"
            for node in (MESSAGES, PARTICIPANTS, INFO):
                s = Subscribe()
                s["node"] = node
                iq["mix_join"].append(s)
            result = await iq.send(timeout=10)
            join = result.xml.find("{urn:xmpp:mix:core:1}join")
            alice_id = join.get("id")
            assert alice_id and join.get("jid") == f"{alice_id}#{channel}"
            assert {s.get("node") for s in join.findall("{urn:xmpp:mix:core:1}subscribe")} == {MESSAGES, PARTICIPANTS, INFO}
            await alice.online_in(channel_name)

            await bob.join_live(channel_name, "bob")
            kind, event = await alice.next_event()
            assert kind == "pubsub_publish" and event["pubsub_event"]["items"]["node"] == PARTICIPANTS
            item = event["pubsub_event"]["items"]["item"]
            assert item["mix_participant"]["nick"] == "bob"
            assert item["mix_participant"]["jid"] == bob.bare
            bob_id = item["id"]

            # A message is reflected to both with <mix> nick and jid, stanza-id and origin-id.
            alice.post(channel_name, "Harpier cries", origin_id="origin-1")
            for client in (alice, bob):
                msg = await client.next_message()
                assert msg["type"] == "groupchat"
                # From the channel, with the sender's stable participant id (XEP-0369 §7.1.6).
                assert msg["from"] == f"{channel}/{alice_id}"
                assert msg["body"] == "Harpier cries"
                assert msg["mix"]["nick"] == "alice"
                assert msg["mix"]["jid"] == alice.bare
                stanza_id = msg.xml.find("{urn:xmpp:sid:0}stanza-id")
                assert stanza_id.get("by") == str(channel) and stanza_id.get("id") == msg["id"]
                assert msg.xml.find("{urn:xmpp:sid:0}origin-id").get("id") == "origin-1"

            # Nicks are unique in a channel.
            condition, text = await bob.iq_error(bob.plugin["xep_0369"].set_nick(channel, "ALICE", timeout=10))
            assert condition == "conflict" and "taken" in text
            assert await bob.plugin["xep_0369"].set_nick(channel, "robert", timeout=10) == "robert"
            kind, event = await alice.next_event(PARTICIPANTS)
            item = event["pubsub_event"]["items"]["item"]
            assert (item["id"], item["mix_participant"]["nick"]) == (bob_id, "robert")

            participants = await bob.plugin["xep_0369"].list_participants(channel, timeout=10)
            assert sorted((nick, str(jid)) for _, nick, jid in participants) == [
                ("alice", alice.bare), ("robert", bob.bare)]

            # Info: set by the owner, read by anyone, notified to subscribers.
            form = alice.plugin["xep_0004"].make_form(ftype="submit")
            form.add_field("FORM_TYPE", ftype="hidden", value="urn:xmpp:mix:core:1")
            form.add_field("Name", value="The Coven")
            form.add_field("Description", value="Three witches")
            form.add_field("Contact", ftype="jid-multi", value=[alice.bare])
            await alice.plugin["xep_0060"].publish(channel, INFO, payload=form, timeout=10)
            kind, event = await bob.next_event(INFO)
            fields = event["pubsub_event"]["items"]["item"]["form"].get_values()
            assert fields["Name"] == "The Coven" and fields["Description"] == "Three witches"
            info = await carol.plugin["xep_0369"].get_channel_info(channel)
            assert info["Name"] == "The Coven" and [str(c) for c in info["Contact"]] == [alice.bare]
            condition, _ = await bob.iq_error(bob.plugin["xep_0060"].publish(channel, INFO, payload=form, timeout=10))
            assert condition == "forbidden"

            # Carol joins; bob leaves: the others see the retraction, bob may no longer post.
            await carol.join_live(channel_name, "carol")
            await bob.plugin["xep_0369"].leave_channel(channel, timeout=10)
            for client in (alice, carol):
                kind, event = await client.next_event(PARTICIPANTS)
                while kind != "pubsub_retract":  # carol's own join, then bob's leave
                    kind, event = await client.next_event(PARTICIPANTS)
                assert kind == "pubsub_retract" and event["pubsub_event"]["items"]["retract"]["id"] == bob_id
            bob.post(channel_name, "still here?")
            error = await bob.next_error()
            assert error["error"]["condition"] == "forbidden"

            # Only the owner destroys; the participants are told; the channel is gone.
            condition, _ = await carol.iq_error(carol.destroy(channel_name))
            assert condition == "forbidden"
            assert archived_copies("Harpier cries") == 1
            await alice.destroy(channel_name)
            kind, event = await carol.next_event()
            assert kind == "pubsub_delete"
            assert event.xml.find("{urn:xmpp:mix:core:1}destroy").get("channel") == channel_name
            listed = await mix.list_channels(alice.channel("x"), timeout=10)
            assert str(channel) not in {str(jid) for jid, _ in listed}
            # Its archive went with it (the service does not keep archives by default).
            assert archived_copies("Harpier cries") == 0
            condition, _ = await carol.iq_error(carol.plugin["xep_0369"].join_channel(channel, "c", timeout=10))
            assert condition == "item-not-found"

    run(scenario())


def test_ad_hoc_channel_and_subscriptions(server, mixd):
    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            iq = alice.make_iq_set(ito=MIX_DOMAIN)
            iq.enable("mix_create")
            result = await iq.send(timeout=10)
            name = result["mix_create"]["channel"]
            assert name and "#" not in name
            await alice.join_live(name, "alice")
            await bob.join_live(name, "bob")
            await alice.next_event()

            # Bob stops following messages: he no longer receives them, alice still does.
            failed = await bob.plugin["xep_0369"].update_subscription(bob.channel(name), unsubscribe={MESSAGES}, timeout=10)
            assert failed == (set(), set())
            alice.post(name, "only for alice")
            assert (await alice.next_message())["body"] == "only for alice"
            await bob.nothing_more(bob.mix_messages)
            await bob.plugin["xep_0369"].update_subscription(bob.channel(name), subscribe={MESSAGES}, timeout=10)
            alice.post(name, "for both")
            assert (await bob.next_message())["body"] == "for both"

    run(scenario())


def test_offline_participant_catches_up_from_history(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice") as (alice,):
            await alice.create_live(channel_name)
            async with connected(server, "bob/phone") as (bob,):
                await bob.join_live(channel_name, "bob")
                await alice.next_event()
            # Bob's server tells the channel that bob/phone went away; mixd stops delivering.
            await mixd.wait_for_log_async(f"client presence jid={bob.boundjid} online=false")
            alice.post(channel_name, "while you were out")
            await alice.next_message()
            async with connected(server, "bob/phone") as (bob,):
                result = await bob.plugin["xep_0313"].retrieve(jid=bob.channel(channel_name), rsm={"max": 10})
                bodies = [m["mam_result"]["forwarded"]["stanza"]["body"] for m in result["mam"]["results"]]
                assert bodies == ["while you were out"]
                await bob.nothing_more(bob.errors, wait=0.2)

    run(scenario())


PRESENCE = "urn:xmpp:mix:nodes:presence"
CONFIG = "urn:xmpp:mix:nodes:config"


async def join_naming(client, channel, nodes, nick=None):
    """A <join/> naming `nodes` (slixmpp's join_channel cannot report what was subscribed);
    returns the result's <join/>."""
    iq = client.make_iq_set(ito=channel)
    iq["mix_join"]["nick"] = nick or client.user
    for node in nodes:
        s = Subscribe()
        s["node"] = node
        iq["mix_join"].append(s)
    result = await iq.send(timeout=10)
    return result.xml.find("{urn:xmpp:mix:core:1}join")


def subscribed(join):
    return [s.get("node") for s in join.findall("{urn:xmpp:mix:core:1}subscribe")]


def test_join_subscribes_the_nodes_the_channel_has_and_lists_only_those(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob", "carol") as (alice, bob, carol):
            mix = alice.plugin["xep_0369"]
            await mix.create_channel(alice.channel("x"), channel_name, timeout=10)
            channel = alice.channel(channel_name)

            # The nodes a channel lists are the ones it serves: no presence node (mixd does
            # not distribute presence, XEP-0403), and whoever asks may subscribe to each.
            nodes = await bob.plugin["xep_0369"].list_mix_nodes(channel, timeout=10)
            assert PRESENCE not in nodes
            listed = await join_naming(bob, channel, sorted(nodes))
            assert sorted(subscribed(listed)) == sorted(nodes)

            # XEP-0369 §7.1.2: some nodes unknown, the known ones are subscribed and listed.
            join = await join_naming(carol, channel, [MESSAGES, PRESENCE, "urn:example:nothing", PARTICIPANTS])
            assert subscribed(join) == [MESSAGES, PARTICIPANTS]
            # None known: an error naming the first.
            await bob.plugin["xep_0369"].leave_channel(channel, timeout=10)
            condition, text = await bob.iq_error(join_naming(bob, channel, ["urn:example:nothing", PRESENCE]))
            assert condition == "item-not-found" and "urn:example:nothing" in text
            participants = await alice.plugin["xep_0369"].list_participants(channel, timeout=10)
            assert [str(jid) for _, _, jid in participants] == [carol.bare]

    run(scenario())


def test_a_blank_nick_is_generated_and_ids_survive_leave_and_rejoin(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            mix = alice.plugin["xep_0369"]
            await mix.create_channel(alice.channel("x"), channel_name, timeout=10)
            channel = alice.channel(channel_name)
            await join_naming(alice, channel, [MESSAGES, PARTICIPANTS], nick="bob")
            first = (await join_naming(bob, channel, [MESSAGES, PARTICIPANTS], nick="robert")).get("id")

            # XEP-0369 §7.1.6: a blank nick asks the channel for one; the result says which.
            generated = await bob.plugin["xep_0369"].set_nick(channel, "", timeout=10)
            assert generated and generated != "bob", "taken by alice"
            participants = await alice.plugin["xep_0369"].list_participants(channel, timeout=10)
            assert sorted(nick for _, nick, _ in participants) == sorted(["bob", generated])

            # §5.3: the id stays the participant's after it leaves; joining again, it gets it back.
            await bob.plugin["xep_0369"].leave_channel(channel, timeout=10)
            again = await join_naming(bob, channel, [MESSAGES, PARTICIPANTS], nick="robert")
            assert again.get("id") == first
            assert not any(c in first for c in "#/@")
            await bob.online_in(channel_name)
            await alice.online_in(channel_name)
            bob.post(channel_name, "back again")
            reflected = await alice.next_message()
            assert reflected["from"] == f"{channel}/{first}"

    run(scenario())


def test_discovery_lists_what_the_channel_does(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice") as (alice,):
            await alice.plugin["xep_0369"].create_channel(alice.channel("x"), channel_name, timeout=10)
            info = await alice.plugin["xep_0030"].get_info(alice.channel(channel_name), timeout=10)
            features = set(info["disco_info"]["features"])
            # MIX with MAM (XEP-0369 §6.3), and each extension the channel carries out, so
            # that clients offer it: XEP-0313 #extended, XEP-0424 (+ tombstones), XEP-0425,
            # XEP-0308, XEP-0444, XEP-0184, XEP-0333, XEP-0085, XEP-0359, XEP-0404.
            assert features == {
                "urn:xmpp:mix:core:1", "urn:xmpp:mam:2", "urn:xmpp:mam:2#extended",
                "urn:xmpp:mix:admin:0", "urn:xmpp:mix:misc:0", "urn:xmpp:mix:anon:0", "urn:mixd:admin:0",
                "urn:mixd:receipts:0", "urn:mixd:history:0",
                "urn:xmpp:message-retract:1", "urn:xmpp:message-retract:1#tombstone",
                "urn:xmpp:message-moderate:1", "urn:xmpp:message-correct:0", "urn:xmpp:reactions:0",
                "urn:xmpp:receipts", "urn:xmpp:chat-markers:0", "http://jabber.org/protocol/chatstates",
                "urn:xmpp:sid:0", "http://jabber.org/protocol/disco#info",
                "http://jabber.org/protocol/disco#items", "urn:xmpp:ping",
            }
            # The service is no archive (§6.1).
            service = await alice.plugin["xep_0030"].get_info(MIX_DOMAIN, timeout=10)
            assert not any(f.startswith("urn:xmpp:mam") for f in service["disco_info"]["features"])

    run(scenario())
