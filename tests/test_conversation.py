"""Conversation features for standard clients, through slixmpp's own plugins: typing
(XEP-0085), receipts and markers (XEP-0184, XEP-0333), retraction and moderation (XEP-0424,
XEP-0425), corrections (XEP-0308), replies and mentions (XEP-0461, XEP-0372), reactions
(XEP-0444), media (XEP-0066, XEP-0447) and clearing one's own history. Each is checked at a
second participant, live and in history."""

import pathlib
import xml.etree.ElementTree as ET

from conftest import connected, run

MAM_MEDIA = "{urn:mixd:mam:0}media"


async def post(sender, everyone, name, body, **build):
    """Posts `body`; returns its archive id once every participant got it."""
    msg = sender.groupchat(name, body)
    for key, value in build.items():
        msg[key] = value
    msg.send()
    reflected = [await client.next_message() for client in everyone]
    assert {m["body"] for m in reflected} == {body}
    return reflected[0]["id"]


def archived(result):
    return [m["mam_result"]["forwarded"]["stanza"] for m in result["mam"]["results"]]


def test_typing_is_relayed_and_never_archived(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            await alice.create_live(channel_name, bob)
            typing = bob.groupchat(channel_name)
            typing["chat_state"] = "composing"
            typing.send()
            relayed = await alice.next("chatstate")
            assert relayed["chat_state"] == "composing" and relayed["mix"]["jid"] == bob.bare
            assert relayed["from"] == await alice.participant_jid(channel_name, bob.bare)
            await bob.nothing_more(bob.received["chatstate"], wait=0.3)

            with_body = bob.groupchat(channel_name, "done typing")
            with_body["chat_state"] = "active"
            with_body.send()
            for client in (alice, bob):
                assert (await client.next_message())["body"] == "done typing"
            history = archived(await alice.mam(alice.channel(channel_name)))
            assert [m["body"] for m in history] == ["done typing"]
            assert history[0].xml.find("{http://jabber.org/protocol/chatstates}active") is None

    run(scenario())


def test_a_repeated_chat_state_is_relayed_once(server, mixd, channel_name):
    """XEP-0085 §5: a client MUST NOT send the same standalone notification twice in a row,
    so a repeat is no news and mixd does not tell it to every participant again; a change is
    told, and so is the same state after a message (which stands for <active/>)."""

    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            await alice.create_live(channel_name, bob)

            def typing(state):
                notification = bob.groupchat(channel_name)
                notification["chat_state"] = state
                notification.send()

            for state in ("composing", "composing", "composing", "paused", "paused", "composing"):
                typing(state)
            # In order from one sender: had a repeat been relayed, it would come before the
            # change that follows it.
            told = [(await alice.next("chatstate"))["chat_state"] for _ in range(3)]
            assert told == ["composing", "paused", "composing"], told

            with_body = bob.groupchat(channel_name, "there")
            with_body["chat_state"] = "active"
            with_body.send()
            assert (await alice.next_message())["body"] == "there"
            typing("composing")
            assert (await alice.next("chatstate"))["chat_state"] == "composing"

    run(scenario())


def test_alternating_chat_states_are_paced(server, mixd, channel_name):
    """Each state a change, so none is a repeat, but a flood all the same: XEP-0085 §5.4 lets
    the service drop chat states, and mixd relays a user's states in a channel at most four
    at once, then one a second."""

    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            await alice.create_live(channel_name, bob)
            for i in range(20):
                notification = bob.groupchat(channel_name)
                notification["chat_state"] = ("composing", "paused")[i % 2]
                notification.send()
            bob.post(channel_name, "done typing")
            # The post comes after every state relayed before it, from the same sender.
            assert (await alice.next_message())["body"] == "done typing"
            told = []
            while not alice.received["chatstate"].empty():
                told.append(alice.received["chatstate"].get_nowait()["chat_state"])
            # The burst, and at most the few the pace allowed while the flood came in.
            assert told[:4] == ["composing", "paused", "composing", "paused"], told
            assert len(told) <= 6, told

    run(scenario())


def test_receipts_markers_and_message_state(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob", "carol") as (alice, bob, carol):
            await alice.create_live(channel_name, bob, carol)
            everyone = (alice, bob, carol)
            sent = alice.groupchat(channel_name, "did you get this?")
            sent["request_receipt"] = True
            sent.send()
            reflected = [await client.next_message() for client in everyone]
            msg_id = reflected[0]["id"]
            assert msg_id != sent["id"], "reflections carry the archive id"

            got = bob.groupchat(channel_name)
            got["receipt"] = msg_id
            got.send()
            seen = carol.groupchat(channel_name)
            seen["displayed"]["id"] = msg_id
            seen.send()
            # Bob has it, carol has seen it (so has it): the author learns everyone has it,
            # by the id of the message it sent (XEP-0184 §5).
            receipt = await alice.next("receipt_received")
            assert receipt["receipt"] == sent["id"] and receipt["from"] == alice.channel(channel_name)
            await alice.nothing_more(alice.received["marker_displayed"], wait=0.3)

            seen = bob.groupchat(channel_name)
            seen["displayed"]["id"] = msg_id
            seen.send()
            # A marker names it by the channel's stanza-id (XEP-0333 §6).
            marker = await alice.next("marker_displayed")
            assert marker["displayed"]["id"] == msg_id

            iq = carol.make_iq_get(ito=carol.channel(channel_name))
            iq.xml.append(ET.Element("{urn:mixd:receipts:0}message-state", id=msg_id))
            state = (await iq.send(timeout=10)).xml.find("{urn:mixd:receipts:0}message-state")
            assert (state.get("members"), state.get("delivered"), state.get("displayed")) == ("2", "2", "2")
            members = {m.get("jid"): m for m in state}
            assert set(members) == {bob.bare, carol.bare}
            assert all(m.get("delivered") and m.get("displayed") for m in members.values())

            # Receipts are not messages: history has only the message.
            assert [m["body"] for m in archived(await bob.mam(bob.channel(channel_name)))] == ["did you get this?"]

    run(scenario())


def test_retraction_and_moderation(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            await alice.create_live(channel_name, bob)
            channel = alice.channel(channel_name)
            secret = f"regrettable-{channel_name}"
            first = await post(bob, (alice, bob), channel_name, secret)
            second = await post(bob, (alice, bob), channel_name, "also off-topic")
            mine = await post(alice, (alice, bob), channel_name, "owner's words")

            # Only the sender retracts with XEP-0424.
            alice.plugin["xep_0424"].send_retraction(channel, first, mtype="groupchat")
            assert (await alice.next_error())["error"]["condition"] == "forbidden"
            bob.plugin["xep_0424"].send_retraction(channel, first, mtype="groupchat")
            bob_in_channel = await alice.participant_jid(channel_name, bob.bare)
            for client in (alice, bob):
                retraction = await client.next("message_retract")
                assert retraction["retract"]["id"] == first and retraction["mix"]["jid"] == bob.bare
                assert retraction["from"] == bob_in_channel
                # It is archived (XEP-0424 §6): its id is its archive id, as MIX reflects.
                assert retraction.xml.find("{urn:xmpp:sid:0}stanza-id").get("id") == retraction["id"]
            retraction_id = retraction["id"]

            # Owners moderate with XEP-0425; members may not.
            condition, _ = await bob.iq_error(bob.plugin["xep_0425"].moderate(channel, mine, "no", timeout=10))
            assert condition == "forbidden"
            await alice.plugin["xep_0425"].moderate(channel, second, "off-topic", timeout=10)
            moderated = await bob.next("message_retract")
            moderation_id = moderated["id"]
            retract = moderated.xml.find("{urn:xmpp:message-retract:1}retract")
            assert retract.get("id") == second
            # XEP-0425: the channel announces it, naming the moderator by its JID there.
            assert moderated["from"] == channel
            alice_in_channel = await bob.participant_jid(channel_name, alice.bare)
            assert retract.find("{urn:xmpp:message-moderate:1}moderated").get("by") == str(alice_in_channel)
            assert retract.find("{urn:xmpp:message-retract:1}reason").text == "off-topic"

            # History keeps tombstones, each naming its retraction, and the retractions
            # themselves (XEP-0424 §6, XEP-0425 §4); the content is gone from the database files.
            history = archived(await bob.mam(channel))
            assert [m["id"] for m in history] == [first, second, mine, retraction_id, moderation_id]
            for tombstone, retraction in zip(history[:2], (retraction_id, moderation_id)):
                assert tombstone["body"] == ""
                assert tombstone.xml.find("{urn:xmpp:message-retract:1}retracted").get("id") == retraction
            by = history[1].xml.find(".//{urn:xmpp:message-moderate:1}moderated").get("by")
            assert by == alice.bare
            assert history[2]["body"] == "owner's words"
            own, moderation = history[3:]
            assert own["retract"]["id"] == first and own["mix"]["jid"] == bob.bare
            retract = moderation.xml.find("{urn:xmpp:message-retract:1}retract")
            assert retract.get("id") == second
            assert retract.find("{urn:xmpp:message-moderate:1}moderated").get("by") == alice.bare
            assert retract.find("{urn:xmpp:message-retract:1}reason").text == "off-topic"
            if mixd.store == "sqlite":
                for path in pathlib.Path(mixd.database).parent.glob("mixd.db*"):
                    assert secret.encode() not in path.read_bytes(), path
            else:
                # PostgreSQL keeps a row's old version until VACUUM reclaims it, and its WAL
                # until recycled (docs/operations.md): no live row holds the content.
                assert mixd.query("SELECT count(*) FROM messages WHERE content LIKE ?", f"%{secret}%") == [(0,)]

            # A retracted message cannot be retracted, corrected or reacted to again.
            bob.plugin["xep_0424"].send_retraction(channel, first, mtype="groupchat")
            assert (await bob.next_error())["error"]["condition"] == "item-not-found"

    run(scenario())


def test_corrections_replace_the_archived_text(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            await alice.create_live(channel_name, bob)
            channel = alice.channel(channel_name)
            original = bob.groupchat(channel_name, "teh typo")
            original["origin_id"]["id"] = "bob-origin-1"
            original.send()
            msg_id = (await alice.next_message())["id"]
            await bob.next_message()

            # Corrections may name the archive id or the sender's own id.
            for step, (reference, body) in enumerate([(msg_id, "the typo"), ("bob-origin-1", "the fix")]):
                bob.plugin["xep_0308"].build_correction(reference, channel, mtype="groupchat", mbody=body).send()
                for client in (alice, bob):
                    correction = await client.next("message_correction")
                    assert correction["replace"]["id"] == msg_id and correction["body"] == body
                    assert correction["mix"]["jid"] == bob.bare

            alice.plugin["xep_0308"].build_correction(msg_id, channel, mtype="groupchat", mbody="not yours").send()
            assert (await alice.next_error())["error"]["condition"] == "forbidden"

            (latest,) = archived(await alice.mam(channel))
            assert latest["id"] == msg_id and latest["body"] == "the fix"
            assert latest["replace"]["id"] == msg_id

    run(scenario())


def test_replies_mentions_and_reactions(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob", "carol") as (alice, bob, carol):
            await alice.create_live(channel_name, bob, carol)
            channel = alice.channel(channel_name)
            everyone = (alice, bob, carol)
            question = await post(bob, everyone, channel_name, "lunch?")

            reply = alice.plugin["xep_0461"].make_reply(bob.bare, question, mto=channel, mbody="bob: yes", mtype="groupchat")
            reply.xml.append(ET.Element("{urn:xmpp:reference:0}reference", type="mention",
                                        uri=f"xmpp:{bob.bare}", begin="0", end="3"))
            reply.send()
            received = [await client.next_message() for client in everyone]
            at_bob = received[1]
            assert at_bob["reply"]["id"] == question and at_bob["reply"]["to"] == bob.bare
            mention = at_bob.xml.find("{urn:xmpp:reference:0}reference")
            assert (mention.get("type"), mention.get("uri"), mention.get("end")) == ("mention", f"xmpp:{bob.bare}", "3")

            reaction_ids = []
            for client, reactions in ((alice, ["👍"]), (carol, ["👍", "🍕"])):
                msg = client.groupchat(channel_name)
                client.plugin["xep_0444"].set_reactions(msg, question, reactions)
                msg.send()
                relayed = await bob.next("reactions")
                assert relayed["reactions"]["id"] == question
                assert sorted(relayed["reactions"]["values"]) == sorted(reactions)
                assert relayed["mix"]["jid"] == client.bare
                assert relayed["from"] == await bob.participant_jid(channel_name, client.bare)
                assert relayed.xml.find("{urn:xmpp:sid:0}stanza-id").get("id") == relayed["id"]
                reaction_ids.append(relayed["id"])

            history = archived(await carol.mam(channel))
            # The reactions are archived as the messages they are (XEP-0444), after the reply.
            assert [m["id"] for m in history[2:]] == reaction_ids
            for archived_reactions, (client, reactions) in zip(history[2:], ((alice, ["👍"]), (carol, ["👍", "🍕"]))):
                assert archived_reactions["reactions"]["id"] == question
                assert sorted(archived_reactions["reactions"]["values"]) == sorted(reactions)
                assert archived_reactions["mix"]["jid"] == client.bare
            assert history[1]["reply"]["id"] == question
            assert history[1].xml.find("{urn:xmpp:reference:0}reference").get("type") == "mention"
            summary = history[0].xml.find("{urn:mixd:reactions:0}reactions")
            counts = {r.get("value"): (r.get("count"), sorted(j.text for j in r)) for r in summary}
            assert counts == {"👍": ("2", sorted([alice.bare, carol.bare])), "🍕": ("1", [carol.bare])}

    run(scenario())


def test_media_history_and_clearing_ones_own_history(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            await alice.create_live(channel_name, bob)
            channel = alice.channel(channel_name)
            everyone = (alice, bob)
            await post(bob, everyone, channel_name, "just text")
            oob = bob.groupchat(channel_name, "https://example.org/cat.jpg")
            oob["oob"]["url"] = "https://example.org/cat.jpg"
            oob.send()
            for client in everyone:
                assert (await client.next_message())["oob"]["url"] == "https://example.org/cat.jpg"
            sfs = bob.groupchat(channel_name, "a document")
            sharing = ET.SubElement(sfs.xml, "{urn:xmpp:sfs:0}file-sharing")
            ET.SubElement(ET.SubElement(sharing, "{urn:xmpp:file:metadata:0}file"),
                          "{urn:xmpp:file:metadata:0}name").text = "report.pdf"
            sfs.send()
            for client in everyone:
                await client.next_message()

            first = await alice.mam(channel, fields={MAM_MEDIA: "true"}, max=1)
            assert [m["oob"]["url"] for m in archived(first)] == ["https://example.org/cat.jpg"]
            assert first["mam_fin"]["rsm"]["count"] == "2"
            second = await alice.mam(channel, fields={MAM_MEDIA: "true"}, max=1, after=first["mam_fin"]["rsm"]["last"])
            (document,) = archived(second)
            assert document.xml.find(".//{urn:xmpp:file:metadata:0}name").text == "report.pdf"

            # Alice clears her history; bob's stays whole; new messages show for both.
            iq = alice.make_iq_set(ito=channel)
            iq.xml.append(ET.Element("{urn:mixd:history:0}clear"))
            cleared = (await iq.send(timeout=10)).xml.find("{urn:mixd:history:0}clear")
            # `upto` is an opaque id, as message ids are (docs/protocol.md), and names a
            # message when sent back: clearing up to it again changes nothing.
            upto = cleared.get("upto")
            assert upto and not upto.isdigit()
            again = alice.make_iq_set(ito=channel)
            ET.SubElement(again.xml, "{urn:mixd:history:0}clear", upto=upto)
            assert (await again.send(timeout=10)).xml.find("{urn:mixd:history:0}clear").get("upto") == upto
            assert archived(await alice.mam(channel)) == []
            assert len(archived(await bob.mam(channel))) == 3
            await post(bob, everyone, channel_name, "after the clear")
            assert [m["body"] for m in archived(await alice.mam(channel))] == ["after the clear"]

    run(scenario())
