"""Channel history through MAM (XEP-0313) with RSM paging (XEP-0059), via slixmpp's
xep_0313 plugin: pages forward and backward, filters, flip-page, errors."""

import asyncio
import datetime

from conftest import connected, run

TOTAL = 13


def ids(result):
    return [m["mam_result"]["id"] for m in result["mam"]["results"]]


def bodies(result):
    return [m["mam_result"]["forwarded"]["stanza"]["body"] for m in result["mam"]["results"]]


def rsm_of(result):
    return result["mam_fin"]["rsm"]


async def seeded(server, channel_name, alice, bob):
    await alice.create_live(channel_name, bob)
    stamps = []
    for i in range(TOTAL):
        sender = alice if i % 3 else bob
        sender.post(channel_name, f"message {i}")
        for participant in (alice, bob):
            reflected = await participant.next_message()
            assert reflected["body"] == f"message {i}"
        stamps.append(datetime.datetime.now(datetime.timezone.utc))
        await asyncio.sleep(0.002)
    return stamps


def test_paging_forward_backward_and_filters(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob", "carol") as (alice, bob, carol):
            stamps = await seeded(server, channel_name, alice, bob)
            channel = alice.channel(channel_name)
            mam = bob.plugin["xep_0313"]

            # Forward over three pages of 5, 5 and 3.
            first = await mam.retrieve(jid=channel, rsm={"max": 5})
            assert bodies(first) == [f"message {i}" for i in range(5)]
            assert rsm_of(first)["count"] == str(TOTAL) and rsm_of(first)["first_index"] == "0"
            assert first.xml.find(".//{urn:xmpp:mam:2}fin").get("complete") is None
            second = await mam.retrieve(jid=channel, rsm={"max": 5, "after": rsm_of(first)["last"]})
            assert bodies(second) == [f"message {i}" for i in range(5, 10)]
            third = await mam.retrieve(jid=channel, rsm={"max": 5, "after": rsm_of(second)["last"]})
            assert bodies(third) == [f"message {i}" for i in range(10, 13)]
            assert third.xml.find(".//{urn:xmpp:mam:2}fin").get("complete") == "true"

            # Backward from the newest page, three pages again.
            last = await bob.mam(channel, max=5, before="")
            assert bodies(last) == [f"message {i}" for i in range(8, 13)]
            middle = await bob.mam(channel, max=5, before=rsm_of(last)["first"])
            assert bodies(middle) == [f"message {i}" for i in range(3, 8)]
            oldest = await bob.mam(channel, max=5, before=rsm_of(middle)["first"])
            assert bodies(oldest) == ["message 0", "message 1", "message 2"]
            assert oldest.xml.find(".//{urn:xmpp:mam:2}fin").get("complete") == "true"

            # slixmpp's own iterator pages backward through everything.
            collected = [m["mam_result"]["forwarded"]["stanza"]["body"]
                         async for m in mam.iterate(jid=channel, reverse=True, rsm={"max": 4})]
            assert collected == [f"message {i}" for i in reversed(range(TOTAL))]

            # Every archived message is the reflection: channel JID, <mix>, archive id.
            message = first["mam"]["results"][0]["mam_result"]["forwarded"]["stanza"]
            assert message["from"] == channel and message["mix"]["jid"] == bob.bare
            assert message["id"] == ids(first)[0]
            delay = first["mam"]["results"][0]["mam_result"]["forwarded"]["delay"]["stamp"]
            assert abs((delay - stamps[0]).total_seconds()) < 5

            # Filters: with, start, end.
            by_bob = await mam.retrieve(jid=channel, with_jid=bob.boundjid.bare, rsm={"max": 50})
            assert bodies(by_bob) == [f"message {i}" for i in range(0, TOTAL, 3)]
            late = await mam.retrieve(jid=channel, start=stamps[9], rsm={"max": 50})
            assert bodies(late) == [f"message {i}" for i in range(10, 13)]
            early = await mam.retrieve(jid=channel, end=stamps[1], rsm={"max": 50})
            assert bodies(early) == ["message 0", "message 1"]

            # By index, and flip-page.
            indexed = await bob.mam(channel, max=2, index=4)
            assert bodies(indexed) == ["message 4", "message 5"]
            flipped = await bob.mam(channel, max=3, flip=True)
            assert bodies(flipped) == ["message 2", "message 1", "message 0"]
            assert rsm_of(flipped)["first"] == ids(first)[0]

            # Errors: unknown ids, bad filters, non-participants.
            for rsm in ({"after": "999999999"}, {"before": "not-an-id"}):
                condition, _ = await bob.iq_error(bob.mam(channel, **rsm))
                assert condition == "item-not-found"
            condition, text = await bob.iq_error(bob.mam(channel, start="yesterday"))
            assert condition == "bad-request" and "start" in text
            condition, _ = await carol.iq_error(carol.mam(channel, max=5))
            assert condition == "forbidden"

    run(scenario())


def test_page_size_defaults_and_caps(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            await seeded(server, channel_name, alice, bob)
            channel = alice.channel(channel_name)
            everything = await alice.plugin["xep_0313"].retrieve(jid=channel)
            assert len(set(ids(everything))) == TOTAL
            assert bodies(everything) == [f"message {i}" for i in range(TOTAL)]
            capped = await alice.plugin["xep_0313"].retrieve(jid=channel, rsm={"max": 100000})
            assert len(ids(capped)) == TOTAL
            count_only = await alice.mam(channel, max=0)
            assert ids(count_only) == [] and rsm_of(count_only)["count"] == str(TOTAL)

    run(scenario())


def test_the_query_form_and_the_extended_fields(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            await seeded(server, channel_name, alice, bob)
            channel = alice.channel(channel_name)

            # XEP-0313 §4.1.5: the form lists the fields, `ids` open to any value.
            form = await bob.plugin["xep_0313"].get_fields(channel, timeout=10)
            fields = {field["var"]: field for field in form["fields"]}
            assert {"with", "start", "end", "before-id", "after-id", "ids"} <= set(fields)
            assert fields["FORM_TYPE"].xml.find("{jabber:x:data}value").text == "urn:xmpp:mam:2"
            assert fields["with"]["type"] == "jid-single" and fields["ids"]["type"] == "list-multi"
            validate = fields["ids"].xml.find("{http://jabber.org/protocol/xdata-validate}validate")
            assert validate is not None and validate.find("{http://jabber.org/protocol/xdata-validate}open") is not None

            # §4.1.5: a field the archive does not know is feature-not-implemented.
            condition, text = await bob.iq_error(bob.mam(channel, fields={"{urn:example}color": "red"}))
            assert condition == "feature-not-implemented" and "color" in text

            # §4.1.4 (#extended): after-id and before-id bound, ids picks.
            everything = ids(await bob.mam(channel, max=50))
            between = await bob.mam(channel, fields={"after-id": everything[2], "before-id": everything[6]})
            assert bodies(between) == ["message 3", "message 4", "message 5"]
            assert rsm_of(between)["count"] == "3"
            picked = await bob.mam(channel, fields={"ids": [everything[9], everything[1]]})
            assert bodies(picked) == ["message 1", "message 9"]
            for field in ("after-id", "before-id", "ids"):
                condition, _ = await bob.iq_error(bob.mam(channel, fields={field: "AAAAAAAAAAA"}))
                assert condition == "item-not-found", field

    run(scenario())
