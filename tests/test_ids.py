"""Identifiers clients see are opaque and unpredictable (issue 13 item 5, docs/security.md
"Identifiers"): stanza-ids, MAM result and RSM ids, retraction references and FlyChat row
ids are a keyed permutation of the archive's integer keys, which no client sees or can use.
Checked through real clients on Prosody and ejabberd: slixmpp for MIX, the FlyChat SDK's
stanzas (sent through slixmpp) for FlyChat."""

import asyncio
import xml.etree.ElementTree as ET

from conftest import connected, run
from harness.client import fields
from harness.servers import MIX_DOMAIN

RETRACT = "urn:xmpp:message-retract:1"
RECEIPTS = "urn:mixd:receipts:0"
G = "jabber:iq:mixgroupchat"
H = "jabber:iq:user_activities"


def archive_id(mixd, body):
    """The archive's own integer key of the message with `body`, read from the database: what
    a client would have to guess to name a message it was never shown."""
    [(key,)] = mixd.query(
        "SELECT id FROM messages WHERE content LIKE ? ORDER BY id DESC LIMIT 1", f"%{body}%"
    )
    return key


def results(page):
    return [(m["mam_result"]["id"], m["mam_result"]["forwarded"]["stanza"]["body"])
            for m in page["mam"]["results"]]


def test_stanza_ids_are_opaque_and_mam_ids_are_the_same(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            await alice.create_live(channel_name, bob)
            stanza_ids = []
            for body in ("one", "two", "three"):
                alice.post(channel_name, body)
                reflected = await bob.next_message()
                assert reflected["body"] == body
                stanza_id = reflected.xml.find("{urn:xmpp:sid:0}stanza-id").get("id")
                assert reflected["id"] == stanza_id
                stanza_ids.append(stanza_id)
                assert (await alice.next_message())["id"] == stanza_id, "the same id for everyone"
            # Not integers, let alone sequential ones; URL-safe, all different.
            for stanza_id in stanza_ids:
                assert not stanza_id.isdigit(), stanza_id
                assert len(stanza_id) == 11 and all(c.isalnum() or c in "-_" for c in stanza_id)
            assert len(set(stanza_ids)) == 3
            # MAM result ids and the archived stanza-ids are the ids the reflections carried.
            page = await bob.mam(alice.channel(channel_name))
            assert results(page) == list(zip(stanza_ids, ("one", "two", "three")))
            for m in page["mam"]["results"]:
                archived = m["mam_result"]["forwarded"]["stanza"]
                assert archived.xml.find("{urn:xmpp:sid:0}stanza-id").get("id") == m["mam_result"]["id"]
            assert page["mam_fin"]["rsm"]["first"] == stanza_ids[0]
            assert page["mam_fin"]["rsm"]["last"] == stanza_ids[-1]

    run(scenario())


def test_rsm_paging_through_opaque_ids(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            await alice.create_live(channel_name, bob)
            for i in range(7):
                alice.post(channel_name, f"p{i}")
                await bob.next_message()
            channel = bob.channel(channel_name)
            first = await bob.mam(channel, max=3)
            assert [b for _, b in results(first)] == ["p0", "p1", "p2"]
            assert not first["mam_fin"]["rsm"]["last"].isdigit()
            second = await bob.mam(channel, max=3, after=first["mam_fin"]["rsm"]["last"])
            assert [b for _, b in results(second)] == ["p3", "p4", "p5"]
            third = await bob.mam(channel, max=3, after=second["mam_fin"]["rsm"]["last"])
            assert [b for _, b in results(third)] == ["p6"]
            back = await bob.mam(channel, max=2, before=second["mam_fin"]["rsm"]["first"])
            assert [b for _, b in results(back)] == ["p1", "p2"]
            # The archive's integer key of a message of this very channel names nothing.
            key = archive_id(mixd, "p3")
            for rsm in ({"after": str(key)}, {"before": str(key)}):
                condition, text = await bob.iq_error(bob.mam(channel, **rsm))
                assert condition == "item-not-found", rsm
                assert f"'{key}'" in text

    run(scenario())


def test_a_retraction_names_the_opaque_id_and_made_up_ids_name_nothing(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            await alice.create_live(channel_name, bob)
            alice.post(channel_name, "regrettable")
            reflected = await alice.next_message()
            await bob.next_message()
            stanza_id = reflected["id"]
            assert not stanza_id.isdigit()

            def retract(reference):
                msg = alice.make_message(mto=alice.channel(channel_name), mtype="groupchat")
                ET.SubElement(msg.xml, f"{{{RETRACT}}}retract", id=reference)
                msg.send()

            # Made up: the archive's own integer key (what counting would give), an altered
            # id, and garbage. None names the message, and nothing is retracted.
            key = archive_id(mixd, "regrettable")
            altered = stanza_id[:-1] + ("B" if stanza_id[-1] != "B" else "C")
            for made_up in (str(key), altered, "AAAAAAAAAAA", "not-an-id"):
                retract(made_up)
                error = await alice.next_error()
                assert error["error"]["condition"] == "item-not-found", made_up
                payload = ET.Element(f"{{{RECEIPTS}}}message-state", id=made_up)
                condition, _ = await alice.iq_error(alice.request(alice.channel(channel_name), payload, get=True))
                assert condition == "item-not-found", made_up
            await bob.nothing_more(bob.mix_messages)

            # The id the message was reflected with retracts it.
            retract(stanza_id)
            for client in (alice, bob):
                retraction = await client.next("message_retract")
                assert retraction.xml.find(f"{{{RETRACT}}}retract").get("id") == stanza_id
            # The retraction is archived with an opaque id of its own (XEP-0424 §6).
            assert retraction["id"] != stanza_id and not retraction["id"].isdigit()
            page = await bob.mam(bob.channel(channel_name))
            (archived, archived_retraction) = page["mam"]["results"]
            assert archived["mam_result"]["id"] == stanza_id
            tombstone = archived["mam_result"]["forwarded"]["stanza"].xml.find(f"{{{RETRACT}}}retracted")
            assert tombstone.get("id") == retraction["id"]
            assert archived_retraction["mam_result"]["id"] == retraction["id"]

    run(scenario())


def test_flychat_history_pages_with_opaque_row_ids_to_the_first_message(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice/Web-1", "bob/Web-2") as (alice, bob):
            group = f"{channel_name}@{MIX_DOMAIN}"
            create = alice.make_iq(ito=MIX_DOMAIN, itype="set")
            query = ET.SubElement(create.xml, f"{{{G}}}query", status="create_group", group_id=channel_name)
            vcard = ET.SubElement(ET.SubElement(query, f"{{{G}}}profile"), "{vcard-temp}vCard")
            ET.SubElement(vcard, "{vcard-temp}nickName").text = "Rows"
            ET.SubElement(ET.SubElement(query, f"{{{G}}}participants"), f"{{{G}}}participant").text = bob.bare
            await create.send(timeout=10)
            received = []
            bob.add_event_handler("message", lambda m: received.append(m))
            sent = [f"fly-{i}" for i in range(5)]
            for msgid in sent:
                alice.send_raw(
                    f"<message xmlns='jabber:client' to='{group}' type='normal' id='{msgid}'>"
                    "<chatcontent xmlns='urn:xmpp:content' message_type='text'/><subject>text</subject>"
                    f"<body>ENC:{msgid}</body></message>"
                )
            for _ in range(200):
                if sum(1 for m in received if m["body"].startswith("ENC:fly-")) == len(sent):
                    break
                await asyncio.sleep(0.05)

            async def page(row_id, position="up", limit="2"):
                # Asked of bob's own server, as the SDK asks; its module brings it to mixd.
                iq = bob.make_iq_get()
                ET.SubElement(iq.xml, f"{{{H}}}query", status="group_chat", to_user=group,
                              position=position, row_id=row_id, limit=limit)
                return [fields(r) for r in (await iq.send(timeout=10)).xml.iter(f"{{{H}}}message")]

            # Up from the newest, two rows a page, each page from the last row of the one
            # before, until nothing is older: the first message and the notices before it.
            rows, row_id = [], ""
            for _ in range(20):
                got = await page(row_id)
                if not got:
                    break
                rows.extend(got)
                row_id = got[-1]["row_id"]
            messages = [r for r in rows if r["msgtype"] != "0"]
            assert [r["msgid"] for r in messages] == list(reversed(sent))
            assert rows[-1]["msgtype"] == "0" and rows[-1]["message_notification"] == "1"
            # Row ids are digits (the SDK pages only with those), opaque: no two neighbours
            # are consecutive numbers, and the live stanza-id is the same value.
            row_ids = [r["row_id"] for r in rows]
            assert all(r.isdigit() for r in row_ids) and len(set(row_ids)) == len(row_ids)
            assert all(abs(int(a) - int(b)) != 1 for a, b in zip(row_ids, row_ids[1:])), row_ids
            live = {m["body"]: m.xml.find("{urn:xmpp:sid:0}stanza-id").get("id")
                    for m in received if m["body"].startswith("ENC:")}
            assert {r["msgid"]: r["row_id"] for r in messages} == {
                body[len("ENC:"):]: stanza_id for body, stanza_id in live.items()}
            # Down from a row reaches the newer ones again.
            oldest = messages[-1]["row_id"]
            assert [r["msgid"] for r in await page(oldest, "down", "10")] == sent[1:]
            # The archive's integer key names no row.
            key = archive_id(mixd, "ENC:fly-2")
            condition, _ = await bob.iq_error(page(str(key)))
            assert condition == "item-not-found"

    run(scenario())
