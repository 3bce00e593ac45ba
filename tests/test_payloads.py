"""Payloads by allow-list (issue 13), through real clients on Prosody and ejabberd: a
participant cannot make the channel say what only the channel, the server or mixd says —
pubsub events, delays, mixd's notices, archive results, another sender — in either
dialect. Each forgery is refused with not-acceptable and a text naming the element, and
nothing of it reaches anyone or the archive; a message with the extensions clients attach
passes through intact, live and in history."""

import asyncio
import xml.etree.ElementTree as ET

from conftest import connected, run
from harness.client import fields
from harness.servers import MIX_DOMAIN

G = "jabber:iq:mixgroupchat"
H = "jabber:iq:user_activities"

# What a participant might forge, and how the refusal must name it.
FORGED = [
    # A fake join, shown to everyone as the channel's participants event.
    ("<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='urn:xmpp:mix:nodes:participants'>"
     "<item id='fake'><participant xmlns='urn:xmpp:mix:core:1'><nick>queen</nick><jid>queen@localhost</jid>"
     "</participant></item></items></event>",
     "<event xmlns='http://jabber.org/protocol/pubsub#event'/>"),
    # A message back-dated to look old.
    ("<delay xmlns='urn:xmpp:delay' from='localhost' stamp='2001-01-01T00:00:00Z'/>",
     "<delay xmlns='urn:xmpp:delay'/>"),
    # mixd's own notice: "alice made eve an admin".
    ("<notice xmlns='urn:mixd:notice:0' kind='made-admin' code='5' by='alice@localhost' jid='eve@localhost'/>",
     "<notice xmlns='urn:mixd:notice:0'/>"),
    # An archive result carrying someone else's message.
    ("<result xmlns='urn:xmpp:mam:2' queryid='q' id='1'><forwarded xmlns='urn:xmpp:forward:0'>"
     "<message xmlns='jabber:client' from='coven@mix.localhost' type='groupchat'><body>I quit</body></message>"
     "</forwarded></result>",
     "<result xmlns='urn:xmpp:mam:2'/>"),
    # Another sender, as the channel writes it.
    ("<mix xmlns='urn:xmpp:mix:core:1'><nick>carol</nick><jid>carol@localhost</jid></mix>",
     "<mix xmlns='urn:xmpp:mix:core:1'/>"),
]


async def drain(queue):
    await asyncio.sleep(0.3)
    while not queue.empty():
        queue.get_nowait()


def archived(result):
    return [m["mam_result"]["forwarded"]["stanza"] for m in result["mam"]["results"]]


def test_forged_payloads_are_refused_and_reach_no_one(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            await alice.create_live(channel_name, bob)
            channel = alice.channel(channel_name)
            for client in (alice, bob):
                await drain(client.events)
                await drain(client.live_notices)

            for i, (forged, name) in enumerate(FORGED):
                alice.send_raw(
                    f"<message xmlns='jabber:client' to='{channel}' type='groupchat' id='forged-{i}'>"
                    f"<body>forged {i}</body>{forged}</message>")
                error = await alice.next_error()
                assert error["id"] == f"forged-{i}"
                assert error["error"]["condition"] == "not-acceptable", forged
                assert name in error["error"]["text"], error["error"]["text"]
            # Without a body too, where it would have been stored as a bodyless post.
            alice.send_raw(f"<message xmlns='jabber:client' to='{channel}' type='groupchat' id='bare'>"
                           f"{FORGED[0][0]}</message>")
            assert (await alice.next_error())["error"]["condition"] == "not-acceptable"

            # A message with what clients attach: a reply, OOB, an origin-id and a hint.
            question = alice.groupchat(channel_name, "where is the cat?")
            question.send()
            question_id = (await bob.next_message())["id"]
            await alice.next_message()
            reply = bob.plugin["xep_0461"].make_reply(alice.bare, question_id, mto=channel,
                                                      mbody="> where is the cat?\nhere", mtype="groupchat")
            reply["oob"]["url"] = "https://example.org/cat.jpg"
            reply["origin_id"]["id"] = "bob-origin-1"
            reply.xml.append(ET.Element("{urn:xmpp:hints}store"))
            reply.send()
            for client in (alice, bob):
                got = await client.next_message()
                assert got["body"] == "> where is the cat?\nhere"
                assert got["reply"]["id"] == question_id and got["reply"]["to"] == alice.bare
                assert got["oob"]["url"] == "https://example.org/cat.jpg"
                assert got["origin_id"]["id"] == "bob-origin-1"
                assert got.xml.find("{urn:xmpp:hints}store") is not None
                assert got["mix"]["jid"] == bob.bare
                # Only the channel's own marks, once each.
                assert len(got.xml.findall("{urn:xmpp:mix:core:1}mix")) == 1
                assert got.xml.find("{urn:xmpp:delay}delay") is None

            # Nothing forged reached anyone: no other message, event or notice.
            for client in (alice, bob):
                await client.nothing_more(client.mix_messages, wait=0.2)
                await client.nothing_more(client.events, wait=0)
                await client.nothing_more(client.live_notices, wait=0)

            # Nor the archive: the two real messages, the reply intact.
            history = archived(await bob.mam(channel))
            assert [m["body"] for m in history] == ["where is the cat?", "> where is the cat?\nhere"]
            stored = history[1]
            assert stored["reply"]["id"] == question_id
            assert stored["oob"]["url"] == "https://example.org/cat.jpg"
            assert stored["origin_id"]["id"] == "bob-origin-1"
            assert stored.xml.find("{urn:xmpp:hints}store") is not None
            for m in history:
                assert m.xml.find("{urn:xmpp:delay}delay") is None
                assert m.xml.find("{urn:mixd:notice:0}notice") is None
                assert m.xml.find("{http://jabber.org/protocol/pubsub#event}event") is None
                assert m.xml.find("{urn:xmpp:mam:2}result") is None

    run(scenario())


def flychat_message(to, msg_id, before=""):
    """A group message as the FlyChat SDK sends it, with `before` ahead of its content."""
    return (f"<message xmlns='jabber:client' to='{to}' type='normal' id='{msg_id}'>{before}"
            "<chatcontent xmlns='urn:xmpp:content' message_type='text' "
            f"edit_msg_id='{msg_id}'/><subject>text</subject><body>ENC:{msg_id}</body></message>")


def test_a_flychat_member_cannot_pass_as_another(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice/Web-1", "carol/Web-2") as (alice, carol):
            group = f"{channel_name}@{MIX_DOMAIN}"
            iq = alice.make_iq(ito=MIX_DOMAIN, itype="set")
            query = ET.SubElement(iq.xml, f"{{{G}}}query", status="create_group", group_id=channel_name)
            vcard = ET.SubElement(ET.SubElement(query, f"{{{G}}}profile"), "{vcard-temp}vCard")
            ET.SubElement(vcard, "{vcard-temp}nickName").text = "Forgers"
            participants = ET.SubElement(query, f"{{{G}}}participants")
            ET.SubElement(participants, f"{{{G}}}participant").text = carol.bare
            await iq.send(timeout=10)
            seen = []
            carol.add_event_handler("message", seen.append)

            # The SDK takes the first <jid>, <submission-id> and <timestamp> it finds.
            for i, (forged, name) in enumerate([
                ("<jid>bob@localhost</jid>", "<jid/>"),
                ("<submission-id>someone-elses-message</submission-id>", "<submission-id/>"),
                ("<timestamp time='978307200000000'/>", "<timestamp/>"),
                ("<mix xmlns='urn:xmpp:mix:core:1'><jid>bob@localhost</jid></mix>", "<mix xmlns='urn:xmpp:mix:core:1'/>"),
            ]):
                alice.send_raw(flychat_message(group, f"forged-{i}", before=forged))
                error = await alice.next_error()
                assert error["id"] == f"forged-{i}"
                assert error["error"]["condition"] == "not-acceptable", forged
                assert name in error["error"]["text"], error["error"]["text"]

            alice.send_raw(flychat_message(group, "real-1"))
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            # carol got the real message only, with alice as its sender, as the SDK reads it.
            assert [m["body"] for m in seen] == ["ENC:real-1"]
            first = lambda name: next(e for e in seen[0].xml.iter() if e.tag.endswith("}" + name))
            assert first("jid").text == alice.bare
            assert first("submission-id").text == "real-1"
            assert len(first("timestamp").get("time")) == 16

            # History has the real message only.
            iq = alice.make_iq_get()
            ET.SubElement(iq.xml, f"{{{H}}}query", status="group_chat", to_user=group, position="up",
                          row_id="", limit="20")
            rows = [fields(r) for r in (await iq.send(timeout=10)).xml.iter(f"{{{H}}}message")]
            assert [(r["msgid"], r["fromuser"]) for r in rows if r["msgtype"] != "0"] == [("real-1", alice.bare)]

    run(scenario())
