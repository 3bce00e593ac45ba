"""One group, both dialects, on Prosody and on ejabberd: a FlyChat client (the SDK's exact
stanzas, sent here through slixmpp) and a standard MIX client (slixmpp's xep_0369) post to
one group and each receives the other's messages in its own shape. The FlyChat client's
history query and receipts go where the SDK sends them — its own server and the sender's
bare JID — and the server module in deploy/ brings them to mixd."""

import asyncio
import xml.etree.ElementTree as ET

from conftest import connected, run
from harness.client import fields
from harness.servers import MIX_DOMAIN

G = "jabber:iq:mixgroupchat"
H = "jabber:iq:user_activities"


def flychat_iq(client, to, kind, status, **attrs):
    iq = client.make_iq(ito=to, itype=kind)
    query = ET.SubElement(iq.xml, f"{{{G}}}query", status=status, **attrs)
    return iq, query


def test_flychat_and_mix_clients_share_a_group(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice/Web-1", "bob", "carol/Web-2") as (alice, bob, carol):
            group = f"{channel_name}@{MIX_DOMAIN}"
            # alice creates the group the FlyChat way, with carol; bob joins the MIX way.
            iq, query = flychat_iq(alice, MIX_DOMAIN, "set", "create_group", group_id=channel_name)
            vcard = ET.SubElement(ET.SubElement(query, f"{{{G}}}profile"), "{vcard-temp}vCard")
            ET.SubElement(vcard, "{vcard-temp}nickName").text = "Mixed"
            participants = ET.SubElement(query, f"{{{G}}}participants")
            ET.SubElement(participants, f"{{{G}}}participant").text = carol.bare
            await iq.send(timeout=10)
            await bob.join_live(channel_name, "bob")

            # FlyChat → MIX: bob gets a groupchat reflection with <mix>.
            alice.send_raw(
                f"<message xmlns='jabber:client' to='{group}' type='normal' id='fly-1'>"
                "<chatcontent xmlns='urn:xmpp:content' message_type='text'/><subject>text</subject>"
                "<body>ENC:from-flychat</body></message>"
            )
            reflected = await bob.next_message()
            assert reflected["body"] == "ENC:from-flychat"
            assert reflected["mix"]["jid"] == alice.bare and reflected["type"] == "groupchat"
            assert reflected.xml.find("{urn:xmpp:content}chatcontent").get("message_type") == "text"

            # MIX → FlyChat: alice and carol get a normal message with submission-id and jid.
            flychat_seen = []
            for client in (alice, carol):
                client.add_event_handler("message", lambda m, seen=flychat_seen: seen.append(m))
            sent = bob.post(channel_name, "hello from MIX", origin_id="mix-1")
            await bob.next_message()
            for _ in range(100):
                if sum(1 for m in flychat_seen if m["body"] == "hello from MIX") >= 2:
                    break
                await asyncio.sleep(0.05)
            copies = [m for m in flychat_seen if m["body"] == "hello from MIX"]
            assert {str(m["to"].bare) for m in copies} == {alice.bare, carol.bare}
            for copy in copies:
                assert copy["type"] == "normal" and copy["from"].bare == group
                assert copy.xml.find(".//{urn:xmpp:mix:core:1}submission-id").text == sent["id"]
                assert copy.xml.find(".//{urn:xmpp:mix:core:1}jid").text == bob.bare

            # carol's receipt goes to alice's bare JID, as the SDK sends it; mixd records it.
            carol.send_raw(
                f"<message xmlns='jabber:client' to='{alice.bare}' type='chat' id='r-1'>"
                f"<delivered xmlns='urn:xmpp:receipts' id='fly-1' group_id='{channel_name}'/></message>"
            )
            for _ in range(100):
                iq, _ = flychat_iq(alice, group, "get", "group_message_status", message_id="fly-1")
                items = {f["user"]: f["status"] for f in map(fields, (await iq.send(timeout=10)).xml.iter(f"{{{G}}}item"))}
                if items.get(carol.bare) == "1":
                    break
                await asyncio.sleep(0.05)
            assert items == {carol.bare: "1", bob.bare: "0"}

            # History asked of alice's own server, as the SDK asks it.
            iq = alice.make_iq_get()
            ET.SubElement(iq.xml, f"{{{H}}}query", status="group_chat", to_user=group, position="up",
                          row_id="", limit="20")
            rows = [fields(r) for r in (await iq.send(timeout=10)).xml.iter(f"{{{H}}}message")]
            messages = [r for r in rows if r["msgtype"] != "0"]
            assert [(r["body"], r["fromuser"]) for r in messages] == [
                ("hello from MIX", bob.bare), ("ENC:from-flychat", alice.bare)]
            assert messages[1]["msgid"] == "fly-1"
            notices = [(r["message_notification"], r["to_notification"]) for r in rows if r["msgtype"] == "0"]
            assert ("2", "bob") in notices and ("1", "") in notices

            # The MIX client's history shows both messages and no notices.
            mam = await bob.mam(bob.channel(channel_name))
            bodies = [m["mam_result"]["forwarded"]["stanza"]["body"] for m in mam["mam"]["results"]]
            assert bodies == ["ENC:from-flychat", "hello from MIX"]

    run(scenario())

