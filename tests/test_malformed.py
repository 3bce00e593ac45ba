"""Malformed requests to every handler, in both dialects: each iq gets an error reply with a
text (never silence, never a result), and afterwards the link is still up and the channel's
state and archive are as they were."""

import xml.etree.ElementTree as ET

from slixmpp.exceptions import IqError

from conftest import connected, run
from harness.servers import MIX_DOMAIN

MIX = "urn:xmpp:mix:core:1"
G = "jabber:iq:mixgroupchat"
H = "jabber:iq:user_activities"

# (iq type, to the channel?, payload XML)
BAD_IQS = [
    ("set", False, f"<create xmlns='{MIX}' channel='a#b'/>"),
    ("set", False, f"<destroy xmlns='{MIX}'/>"),
    ("set", True, f"<join xmlns='{MIX}'><subscribe/></join>"),
    ("set", True, f"<join xmlns='{MIX}'><nick>   </nick></join>"),
    ("set", True, f"<setnick xmlns='{MIX}'><nick>{'n' * 65}</nick></setnick>"),
    ("set", True, f"<update-subscription xmlns='{MIX}'><subscribe node='nope'/></update-subscription>"),
    ("get", True, "<pubsub xmlns='http://jabber.org/protocol/pubsub'/>"),
    ("get", True, "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:example'/></pubsub>"),
    ("set", True, "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:mix:nodes:info'><item/></publish></pubsub>"),
    ("set", True, "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:mix:nodes:info'><item>"
                  "<x xmlns='jabber:x:data' type='submit'><field var='Contact'><value>not a jid@@</value></field></x></item></publish></pubsub>"),
    ("set", True, "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>many</max></set></query>"),
    ("set", True, "<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='color'><value>red</value></field></x></query>"),
    ("set", True, "<moderate xmlns='urn:xmpp:message-moderate:1'/>"),
    ("set", True, "<moderate xmlns='urn:xmpp:message-moderate:1' id='1'/>"),
    ("get", True, "<message-state xmlns='urn:mixd:receipts:0'/>"),
    ("get", True, "<message-state xmlns='urn:mixd:receipts:0' id='no-such-message'/>"),
    ("set", True, "<clear xmlns='urn:mixd:history:0' upto='yesterday'/>"),
    ("set", False, f"<query xmlns='{G}' status='create_group' group_id='bad#id'/>"),
    ("set", False, f"<query xmlns='{G}' status='no_such_operation'/>"),
    ("set", False, f"<query xmlns='{G}' status='create_group' group_id='half-made'>"
                   "<participants><participant>localhost</participant></participants></query>"),
    ("set", True, f"<query xmlns='{G}' status='user_exit_group'/>"),
    ("set", True, f"<query xmlns='{G}' status='set_group_settings' policy='anarchy'/>"),
    ("set", True, f"<query xmlns='{G}' status='mute_participant' until='soon'><participant>alice@localhost</participant></query>"),
    ("set", True, f"<query xmlns='{G}' status='set_access' list='grey' entry='bob@localhost'/>"),
    ("set", True, f"<query xmlns='{G}' status='decide_join_request'><participant>bob@localhost</participant></query>"),
    ("set", True, f"<query xmlns='{G}' status='invite_participants'/>"),
    ("set", True, f"<query xmlns='{G}' status='transfer_ownership'><participant>nobody@localhost</participant></query>"),
    ("set", True, "<role xmlns='urn:mixd:admin:0' jid='alice@localhost' role='king'/>"),
    ("set", True, "<role xmlns='urn:mixd:admin:0' role='admin'/>"),
    ("set", True, "<settings xmlns='urn:mixd:admin:0' policy='anarchy'/>"),
    ("set", True, "<settings xmlns='urn:mixd:admin:0' max-members='lots'/>"),
    ("set", True, "<settings xmlns='urn:mixd:admin:0' muted='maybe'/>"),
    ("set", True, "<settings xmlns='urn:mixd:admin:0' max-members='0'/>"),
    ("set", True, "<mute xmlns='urn:mixd:admin:0' jid='alice@localhost' until='tomorrow'/>"),
    ("set", True, "<decide xmlns='urn:mixd:admin:0' jid='bob@localhost'/>"),
    ("set", True, "<decide xmlns='urn:mixd:admin:0' jid='bob@localhost' approve='true'/>"),
    ("set", True, "<transfer xmlns='urn:mixd:admin:0' jid='alice@localhost'/>"),
    ("set", True, "<invite xmlns='urn:xmpp:mix:misc:0'/>"),
    ("set", True, "<invite xmlns='urn:xmpp:mix:misc:0'><invitee>localhost</invitee></invite>"),
    ("set", True, "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:mix:nodes:banned'><item/></publish></pubsub>"),
    ("set", True, "<pubsub xmlns='http://jabber.org/protocol/pubsub'><retract node='urn:xmpp:mix:nodes:config'><item id='x'/></retract></pubsub>"),
    ("set", True, f"<query xmlns='{G}' status='user_exit_group'><participant>not a jid@@</participant></query>"),
    ("set", True, f"<query xmlns='{G}' status='make_admin'><participant>nobody@localhost</participant></query>"),
    ("set", True, f"<query xmlns='{G}' status='add_participants'/>"),
    ("set", True, f"<query xmlns='{G}' status='recall' chat_type='normal'/>"),
    ("set", True, f"<query xmlns='{G}' status='recall' chat_type='normal' msgid='no-such-message'/>"),
    ("get", True, f"<query xmlns='{G}' status='group_message_status'/>"),
    ("get", False, f"<query xmlns='{H}' status='group_chat' to_user='not a jid@@'/>"),
    ("get", False, f"<query xmlns='{H}' status='group_chat' to_user='x@elsewhere.example'/>"),
    ("get", True, f"<query xmlns='{H}' status='group_chat' row_id='abc'/>"),
    ("get", True, f"<query xmlns='{H}' status='group_chat' limit='lots'/>"),
    ("get", True, f"<query xmlns='{H}' status='group_chat_media' message_id='no-such-message'/>"),
    ("get", True, f"<query xmlns='{H}' status='everything'/>"),
]


def test_malformed_requests_get_errors_and_change_nothing(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice") as (alice,):
            await alice.create_live(channel_name)
            alice.post(channel_name, "keep me")
            kept = (await alice.next_message())["id"]
            channel = str(alice.channel(channel_name))
            for kind, to_channel, payload in BAD_IQS:
                iq = alice.make_iq(ito=channel if to_channel else MIX_DOMAIN, itype=kind)
                iq.xml.append(ET.fromstring(payload))
                try:
                    await iq.send(timeout=10)
                except IqError as e:
                    assert e.iq["error"]["condition"], payload
                    assert e.iq["error"]["text"], f"no text for {payload}"
                    continue
                raise AssertionError(f"accepted: {payload}")

            # Messages that refer to nothing are refused with an error too.
            for payload in ("<retract xmlns='urn:xmpp:message-retract:1' id='999999'/>",
                            "<replace xmlns='urn:xmpp:message-correct:0' id='999999'/><body>x</body>",
                            "<reactions xmlns='urn:xmpp:reactions:0' id='999999'><reaction>x</reaction></reactions>",
                            "<received xmlns='urn:xmpp:receipts' id='999999'/>"):
                alice.send_raw(f"<message xmlns='jabber:client' to='{channel}' type='groupchat'>{payload}</message>")
                error = await alice.next_error()
                assert error["error"]["condition"] == "item-not-found", payload

            # The refused create_group left no group behind.
            condition, _ = await alice.iq_error(
                alice.plugin["xep_0369"].join_channel(alice.channel("half-made"), "a", timeout=10))
            assert condition == "item-not-found"

            # Still up, still the same channel and archive.
            participants = await alice.plugin["xep_0369"].list_participants(alice.channel(channel_name), timeout=10)
            assert [nick for _, nick, _ in participants] == ["alice"]
            history = await alice.mam(alice.channel(channel_name))
            assert [m["mam_result"]["id"] for m in history["mam"]["results"]] == [kept]
            alice.post(channel_name, "still here")
            assert (await alice.next_message())["body"] == "still here"
            log = mixd.log()
            assert "panicked" not in log and "component link lost" not in log

    run(scenario())
