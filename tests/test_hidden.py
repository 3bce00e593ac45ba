"""JID-hidden channels (XEP-0404) through slixmpp, against Prosody and ejabberd: a member
never receives another participant's real JID — not in the participants node, its events,
reflected messages, history, group events or receipt states — while owners and admins read
them from the JID map node and see them in messages and history; the mode is set at
creation, through the configuration form or mixd's admin namespace; and private messages go
through proxy JIDs (`<participant id>#<channel>@<service>`) both ways, refused from
outsiders and to ids that name nobody."""

import asyncio
import xml.etree.ElementTree as ET

from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from conftest import connected, run
from harness.servers import MIX_DOMAIN, USER_DOMAIN

CONFIG = "urn:xmpp:mix:nodes:config"
JIDMAP = "urn:xmpp:mix:nodes:jidmap"
PARTICIPANTS = "urn:xmpp:mix:nodes:participants"
MESSAGES = "urn:xmpp:mix:nodes:messages"
NODES = {MESSAGES, PARTICIPANTS, "urn:xmpp:mix:nodes:info", CONFIG}
MIX = "urn:xmpp:mix:core:1"
DATA = "jabber:x:data"


def jid(user):
    return f"{user}@{USER_DOMAIN}"


def admin_form(**fields):
    """A submitted configuration form (XEP-0406) with `fields`."""
    form = ET.Element(f"{{{DATA}}}x", type="submit")
    for var, value in {"FORM_TYPE": "urn:xmpp:mix:admin:0", **fields}.items():
        field = ET.SubElement(form, f"{{{DATA}}}field", var=var)
        ET.SubElement(field, f"{{{DATA}}}value").text = value
    return form


async def create_hidden(owner, name):
    """Creates `name` hidden from the start: the create carries the configuration form."""
    create = ET.Element(f"{{{MIX}}}create", channel=name)
    create.append(admin_form(**{"JID Visibility": "jid-hidden"}))
    await owner.request(MIX_DOMAIN, create)


def record_everything(client):
    """Every stanza `client` receives from now on, as text."""
    seen = []

    def keep(stanza):
        seen.append(str(stanza))
        return stanza

    client.add_filter("in", keep)
    return seen


def private_queue(client):
    """Messages of type chat or normal from the MIX service (private messages)."""
    queue = asyncio.Queue()

    def keep(msg):
        if msg["type"] in ("chat", "normal") and msg["from"].domain == MIX_DOMAIN \
                and msg.xml.find("{jabber:client}body") is not None:
            queue.put_nowait(msg)

    client.register_handler(Callback("private", MatchXPath("{jabber:client}message"), keep))
    return queue


def drain(queue):
    while not queue.empty():
        queue.get_nowait()


def mix_jid(msg):
    element = msg.xml.find(f"{{{MIX}}}mix/{{{MIX}}}jid")
    return None if element is None else element.text


def test_a_member_never_sees_a_real_jid_and_an_admin_does(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob", "carol") as (alice, bob, carol):
            everything_bob_got = record_everything(bob)
            await create_hidden(alice, channel_name)
            for client in (alice, bob, carol):
                await client.join_live(channel_name, f"nick-{client.user}", NODES)
            # The participants node: nicks and ids, never a JID, for anyone.
            for reader in (alice, bob):
                listed = await reader.plugin["xep_0369"].list_participants(reader.channel(channel_name), timeout=10)
                assert sorted(nick for _, nick, _ in listed) == ["nick-alice", "nick-bob", "nick-carol"]
                assert [j for _, _, j in listed] == [None, None, None]
            ids = {nick: pid for pid, nick, _ in listed}
            # The JID map: owners and admins only.
            condition, text = await bob.iq_error(bob.items(channel_name, JIDMAP))
            assert condition == "forbidden" and "JID map" in text
            mapped = {i.get("id"): i.find("{urn:xmpp:mix:anon:0}participant/{urn:xmpp:mix:anon:0}jid").text
                      for i in await alice.items(channel_name, JIDMAP)}
            assert mapped == {ids["nick-alice"]: jid("alice"), ids["nick-bob"]: jid("bob"),
                              ids["nick-carol"]: jid("carol")}
            # The configuration form names owners and admins: not for members here.
            condition, _ = await bob.iq_error(bob.config(channel_name))
            assert condition == "forbidden"
            assert (await alice.config(channel_name))["JID Visibility"] == ["jid-hidden"]
            # A message: its sender's nick for everyone, its JID only for the owner.
            carol.post(channel_name, "Fair is foul")
            at_bob, at_alice = await bob.next_message(), await alice.next_message()
            assert at_bob["mix"]["nick"] == at_alice["mix"]["nick"] == "nick-carol"
            assert mix_jid(at_bob) is None
            assert mix_jid(at_alice) == jid("carol")
            # History: the same.
            for reader, expected in ((bob, None), (alice, jid("carol"))):
                (result,) = (await reader.mam(reader.channel(channel_name)))["mam"]["results"]
                forwarded = result["mam_result"]["forwarded"]["stanza"]
                assert forwarded["body"] == "Fair is foul"
                assert mix_jid(forwarded) == expected
            # Filtering history by JID would tell a member who said what.
            condition, _ = await bob.iq_error(bob.mam(bob.channel(channel_name), with_jid=jid("carol")))
            assert condition == "forbidden"
            # A newcomer that gives no nick is not named after its JID; its join, a group
            # event for configuration followers, reaches the owner with the JID and the member
            # without.
            # (The message came after the earlier joins' events: those have all arrived.)
            for client in (alice, bob):
                drain(client.live_notices)
                drain(client.events)
            async with connected(server, "dave") as (dave,):
                await dave.plugin["xep_0369"].join_channel(dave.channel(channel_name), None, NODES, timeout=10)
                seen_by_alice, seen_by_bob = await alice.next_live_notice("added"), await bob.next_live_notice("added")
                assert seen_by_alice.get("by") == jid("dave")
                assert seen_by_bob.get("by") is None and seen_by_bob.get("jid") is None
                kind, event = await bob.next_event(PARTICIPANTS)
                item = event.xml.find(".//{http://jabber.org/protocol/pubsub#event}item")
                assert item.find(f"{{{MIX}}}participant/{{{MIX}}}jid") is None
                assert item.find(f"{{{MIX}}}participant/{{{MIX}}}nick").text == item.get("id")
                await dave.plugin["xep_0369"].leave_channel(dave.channel(channel_name), timeout=10)
            await bob.next_live_notice("left")
            # Receipt states name members by participant id for a member.
            state = ET.Element("{urn:mixd:receipts:0}message-state", id=at_bob["stanza_id"]["id"])
            result = await bob.request(bob.channel(channel_name), state, get=True)
            members = result.xml.findall(".//{urn:mixd:receipts:0}member")
            assert {m.get("id") for m in members} == {ids["nick-alice"], ids["nick-bob"]}
            assert all(m.get("jid") is None for m in members)
            # A last message, so that everything before it has arrived.
            alice.post(channel_name, "the end")
            assert (await bob.next_message())["body"] == "the end"
            leaked = [s for s in everything_bob_got for other in ("alice", "carol", "dave") if jid(other) in s]
            assert leaked == []
    run(scenario())


def test_the_mode_changes_through_the_form_and_the_admin_namespace(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            await alice.create_live(channel_name, bob, nodes=NODES)
            listed = await bob.plugin["xep_0369"].list_participants(bob.channel(channel_name), timeout=10)
            assert sorted(str(j) for _, _, j in listed) == [jid("alice"), jid("bob")]
            # Members may not hide JIDs; the owner may, by publishing the configuration form.
            condition, _ = await bob.iq_error(bob.admin(channel_name, "settings", **{"jid-visibility": "hidden"}))
            assert condition == "forbidden"
            await alice.plugin["xep_0060"].publish(alice.channel(channel_name), CONFIG,
                                                   payload=admin_form(**{"JID Visibility": "jid-hidden"}),
                                                   timeout=10)
            listed = await bob.plugin["xep_0369"].list_participants(bob.channel(channel_name), timeout=10)
            assert [j for _, _, j in listed] == [None, None]
            # A value the XEP names but mixd does not offer is refused, with a reason.
            condition, text = await alice.iq_error(alice.plugin["xep_0060"].publish(
                alice.channel(channel_name), CONFIG,
                payload=admin_form(**{"JID Visibility": "jid-optionally-visible"}), timeout=10))
            assert condition == "bad-request" and "jid-optionally-visible" in text
            # And back, through urn:mixd:admin:0.
            await alice.admin(channel_name, "settings", **{"jid-visibility": "visible"})
            assert (await alice.config(channel_name))["JID Visibility"] == ["jid-mandatory-visible"]
            alice.post(channel_name, "visible again")
            assert mix_jid(await bob.next_message()) == jid("alice")
    run(scenario())


def test_private_messages_go_through_proxy_jids(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob", "carol", "dave") as (alice, bob, carol, dave):
            await create_hidden(alice, channel_name)
            for client in (alice, bob, carol):
                await client.join_live(channel_name, client.user, NODES)
            at_bob, at_carol, at_dave = private_queue(bob), private_queue(carol), private_queue(dave)
            listed = await bob.plugin["xep_0369"].list_participants(bob.channel(channel_name), timeout=10)
            ids = {nick: pid for pid, nick, _ in listed}
            proxy = {nick: f"{pid}#{channel_name}@{MIX_DOMAIN}" for nick, pid in ids.items()}
            # Bob writes to carol by her proxy JID; it arrives from his.
            bob.make_message(mto=proxy["carol"], mbody="Meet me at the heath", mtype="chat").send()
            got = await asyncio.wait_for(at_carol.get(), 10)
            assert str(got["from"].bare) == proxy["bob"]
            assert got["body"] == "Meet me at the heath"
            assert jid("bob") not in str(got)
            # Carol answers where it came from.
            got.reply("When the hurlyburly's done").send()
            answer = await asyncio.wait_for(at_bob.get(), 10)
            assert str(answer["from"].bare) == proxy["carol"]
            assert answer["body"] == "When the hurlyburly's done"
            # An outsider may not use a proxy JID; an id that names nobody is refused.
            dave.make_message(mto=proxy["carol"], mbody="hello?", mtype="chat").send()
            error = await dave.next_error()
            assert error["error"]["condition"] == "forbidden"
            nobody = f"{'0' * 16}#{channel_name}@{MIX_DOMAIN}"
            bob.make_message(mto=nobody, mbody="anyone?", mtype="chat").send()
            error = await bob.next_error()
            assert error["error"]["condition"] == "item-not-found"
            assert error["error"]["text"]
            # A private message is not archived in the channel, and reached no one else.
            results = (await alice.mam(alice.channel(channel_name)))["mam"]["results"]
            assert results == []
            bob.make_message(mto=proxy["carol"], mbody="last", mtype="chat").send()
            assert (await asyncio.wait_for(at_carol.get(), 10))["body"] == "last"
            assert at_dave.empty() and at_carol.empty()
    run(scenario())


G = "jabber:iq:mixgroupchat"
H = "jabber:iq:user_activities"


def test_a_flychat_member_sees_proxy_jids_and_its_own(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice/Web-1", "bob", "carol/Web-2") as (alice, bob, carol):
            group = f"{channel_name}@{MIX_DOMAIN}"
            # alice creates the group the FlyChat way with carol, and hides JIDs the FlyChat
            # way; bob joins the MIX way.
            create = ET.Element(f"{{{G}}}query", status="create_group", group_id=channel_name)
            vcard = ET.SubElement(ET.SubElement(create, f"{{{G}}}profile"), "{vcard-temp}vCard")
            ET.SubElement(vcard, "{vcard-temp}nickName").text = "Hidden"
            ET.SubElement(ET.SubElement(create, f"{{{G}}}participants"), f"{{{G}}}participant").text = carol.bare
            await alice.request(MIX_DOMAIN, create)
            # What the creation told carol (alice's JID among it, the group not hidden yet)
            # reaches her before the answer to a request of her own that mixd handles after
            # it (one route, kept in order): only then does the record start. Started after
            # alice's answer instead, it could catch those events when carol's stream was
            # slower than alice's.
            listing = ET.Element(f"{{{G}}}query", status="get_participants")
            await carol.request(carol.channel(channel_name), listing, get=True)
            everything_carol_got = record_everything(carol)
            settings = ET.Element(f"{{{G}}}query", status="set_group_settings", jids_hidden="true")
            await alice.request(alice.channel(channel_name), settings)
            flychat_messages = asyncio.Queue()
            carol.add_event_handler("message", flychat_messages.put_nowait)
            await bob.join_live(channel_name, "bob")
            participants = await bob.plugin["xep_0369"].list_participants(bob.channel(channel_name), timeout=10)
            proxy = {nick: f"{pid}#{group}" for pid, nick, _ in participants}
            # A message from bob reaches carol from bob's proxy JID.
            bob.post(channel_name, "hello, hidden")
            while True:
                got = await asyncio.wait_for(flychat_messages.get(), 10)
                if got["body"] == "hello, hidden":
                    break
            assert got.xml.find(".//{urn:xmpp:mix:core:1}jid").text == proxy["bob"]
            # Bob's typing reaches her from his proxy JID, which names him in it too.
            typings = asyncio.Queue()
            carol.add_event_handler("chatstate_composing", typings.put_nowait)
            typing = bob.groupchat(channel_name)
            typing["chat_state"] = "composing"
            typing.send()
            got_typing = await asyncio.wait_for(typings.get(), 10)
            assert str(got_typing["from"]) == proxy["bob"]
            assert got_typing.xml.find(".//{urn:xmpp:mix:core:1}jid").text == proxy["bob"]
            # Her participant list: proxy JIDs, and her own JID.
            listing = await carol.request(carol.channel(channel_name), ET.Element(f"{{{G}}}query", status="get_participants"), get=True)
            jids = sorted(p.findtext(f"{{{G}}}jid") for p in listing.xml.iter(f"{{{G}}}participant"))
            assert jids == sorted([proxy["alice"], proxy["bob"], carol.bare])
            # History, asked of her own server as the SDK asks it.
            iq = carol.make_iq_get()
            ET.SubElement(iq.xml, f"{{{H}}}query", status="group_chat", to_user=group, position="up",
                          row_id="", limit="20")
            rows = [{field.tag.split("}")[1]: field.text for field in row}
                    for row in (await iq.send(timeout=10)).xml.iter(f"{{{H}}}message")]
            assert [r["fromuser"] for r in rows if r["msgtype"] != "0"] == [proxy["bob"]]
            # The message's state (getGroupMsgInfo): every member but bob, alice by her proxy JID.
            status = ET.Element(f"{{{G}}}query", status="group_message_status",
                                message_id=got.xml.find("{urn:xmpp:sid:0}stanza-id").get("id"))
            states = await carol.request(carol.channel(channel_name), status, get=True)
            users = sorted(e.text for e in states.xml.iter() if e.tag.endswith("}user"))
            assert users == sorted([proxy["alice"], carol.bare])
            # The owner, a FlyChat participant too, sees bob's real JID in his participant list.
            listing = await alice.request(alice.channel(channel_name), ET.Element(f"{{{G}}}query", status="get_participants"), get=True)
            assert bob.bare in {p.findtext(f"{{{G}}}jid") for p in listing.xml.iter(f"{{{G}}}participant")}
            # A last message, so that everything before it has arrived.
            bob.post(channel_name, "the end")
            while (await asyncio.wait_for(flychat_messages.get(), 10))["body"] != "the end":
                pass
            leaked = [s for s in everything_carol_got for other in ("alice", "bob") if jid(other) in s]
            assert leaked == []
    run(scenario())
