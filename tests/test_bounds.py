"""Bounded memory and presence (issue 13), through real clients on Prosody and ejabberd:
a change that changes nothing is told to nobody; one participant's clients online in a channel
are capped; an operation on many users is told in stanzas linear in its size; and who is
online survives a crash of mixd, so live delivery resumes without clients sending presence
again.

"Nothing arrives" is shown by a later stanza arriving first, never by waiting."""

import asyncio
import os
import signal
import tempfile
import xml.etree.ElementTree as ET

import pytest
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from conftest import connected, run
from harness.servers import MIX_DOMAIN, Mixd

G = "jabber:iq:mixgroupchat"
EVENT = "{http://jabber.org/protocol/pubsub#event}event"
PARTICIPANTS = "urn:xmpp:mix:nodes:participants"
# This module's mixd lets a participant have this many clients online in a channel.
CAP = 4
CAP_VARIABLE = "MIXD_MAX_RESOURCES_PER_PARTICIPANT"


class CappedMixd(Mixd):
    """mixd with a small resource cap, given through the environment (a binary that does not
    know the setting ignores it, and then fails the tests for what they check)."""

    def start(self):
        os.environ[CAP_VARIABLE] = str(CAP)
        try:
            super().start()
        finally:
            os.environ.pop(CAP_VARIABLE, None)


@pytest.fixture(scope="module")
def mixd(server):
    daemon = CappedMixd(server, tempfile.mkdtemp(prefix="mixd-db-"))
    daemon.start()
    yield daemon
    daemon.stop()


def drain(queue):
    while not queue.empty():
        queue.get_nowait()


def participant_events(client):
    """The participants-node events queued at `client`, taken off its queue."""
    events = []
    while not client.events.empty():
        kind, msg = client.events.get_nowait()
        event = msg.xml.find(EVENT)
        if event is not None and len(event) and event[0].get("node") == PARTICIPANTS:
            events.append((kind, msg))
    return events


def test_rejoining_from_many_resources_tells_the_others_nothing(server, mixd, channel_name):
    """A user whose every resource joins again, as it already is, makes no event: neither the
    other participants nor its own clients hear of it."""
    resources = [f"bob/r{i}" for i in range(12)]

    async def scenario():
        async with connected(server, "alice", "bob/r-main", *resources) as (alice, bob, *others):
            await alice.create_live(channel_name, bob)
            await alice.next_event(PARTICIPANTS)
            drain(alice.events)
            drain(bob.events)
            for client in others:
                refused = await client.plugin["xep_0369"].join_channel(client.channel(channel_name), "bob",
                                                                       timeout=10)
                assert refused == set(), "the join is answered as before"
            # A later stanza: once it arrives, anything the joins made would have come first.
            bob.post(channel_name, "after the joins")
            assert (await alice.next_message())["body"] == "after the joins"
            assert (await bob.next_message())["body"] == "after the joins"
            assert participant_events(alice) == [], "alice was told of an unchanged participant"
            assert participant_events(bob) == [], "bob's own client was told"

            # A nick that is already bob's changes nothing either.
            await others[0].plugin["xep_0369"].set_nick(others[0].channel(channel_name), "bob", timeout=10)
            bob.post(channel_name, "after the nick")
            assert (await alice.next_message())["body"] == "after the nick"
            assert participant_events(alice) == []

            # A real change is still told.
            await others[1].plugin["xep_0369"].set_nick(others[1].channel(channel_name), "robert", timeout=10)
            _, msg = await alice.next_event(PARTICIPANTS)
            assert msg.xml.find(f".//{{urn:xmpp:mix:core:1}}nick").text == "robert"

    run(scenario())


def test_clients_beyond_the_cap_are_refused_with_resource_constraint(server, mixd, channel_name):
    resources = [f"carol/c{i}" for i in range(CAP + 1)]

    async def scenario():
        async with connected(server, "alice", *resources) as (alice, *carols):
            errors = asyncio.Queue()
            for client in carols:
                client.add_event_handler("presence_error", errors.put_nowait)
            await alice.create_live(channel_name)
            await carols[0].plugin["xep_0369"].join_channel(carols[0].channel(channel_name), "carol", timeout=10)
            for client in carols[:CAP]:
                await client.online_in(channel_name)
            last = carols[CAP]
            last.send_presence(pto=last.channel(channel_name))
            error = await asyncio.wait_for(errors.get(), 10)
            assert error["from"].bare == f"{channel_name}@{MIX_DOMAIN}"
            assert error["to"] == last.boundjid
            assert error["error"]["condition"] == "resource-constraint"
            assert f"{CAP} clients" in error["error"]["text"]
            assert errors.empty()

            # The clients within the cap get the channel's messages; the refused one does not:
            # its ping, answered after the message went out, arrives with nothing before it.
            alice.post(channel_name, "to the first four")
            for client in carols[:CAP]:
                assert (await client.next_message())["body"] == "to the first four"
            await last.plugin["xep_0199"].ping(last.channel(channel_name), timeout=10)
            assert last.mix_messages.empty()

            # One going away frees a place.
            carols[0].send_presence(pto=carols[0].channel(channel_name), ptype="unavailable")
            await carols[0].plugin["xep_0199"].ping(carols[0].channel(channel_name), timeout=10)
            await last.online_in(channel_name)
            assert errors.empty()
            alice.post(channel_name, "now to the last")
            assert (await last.next_message())["body"] == "now to the last"

    run(scenario())


def test_a_flychat_group_created_with_many_members_tells_each_once(server, mixd, channel_name):
    """create_group naming 60 users (two of them real) tells each member of its own addition
    once, not of every member: at bob, one userAdded and one profile update come before the
    group's first message (the old fan-out sent him 60 userAdded)."""
    ghosts = [f"ghost{i}@localhost" for i in range(57)]

    async def scenario():
        async with connected(server, "alice/Web-1", "bob/Web-2", "carol/Web-3") as (alice, bob, carol):
            group = f"{channel_name}@{MIX_DOMAIN}"
            arrived = {bob.bare: [], carol.bare: []}
            for client in (bob, carol):
                client.register_handler(Callback(
                    f"all-{client.user}", MatchXPath("{jabber:client}message"),
                    lambda msg, seen=arrived[client.bare]: seen.append(msg)))
            iq = alice.make_iq(ito=MIX_DOMAIN, itype="set")
            query = ET.SubElement(iq.xml, f"{{{G}}}query", status="create_group", group_id=channel_name)
            vcard = ET.SubElement(ET.SubElement(query, f"{{{G}}}profile"), "{vcard-temp}vCard")
            ET.SubElement(vcard, "{vcard-temp}nickName").text = "Crowd"
            participants = ET.SubElement(query, f"{{{G}}}participants")
            for member in [alice.bare, bob.bare, carol.bare, *ghosts]:
                ET.SubElement(participants, f"{{{G}}}participant").text = member
            await iq.send(timeout=10)
            alice.send_raw(
                f"<message xmlns='jabber:client' to='{group}' type='normal' id='crowd-1'>"
                "<chatcontent xmlns='urn:xmpp:content' message_type='text'/><subject>text</subject>"
                "<body>ENC:first</body></message>")
            for client in (bob, carol):
                seen = arrived[client.bare]
                for _ in range(200):
                    if any(m["body"] == "ENC:first" for m in seen):
                        break
                    await asyncio.sleep(0.05)
                before = [m for m in seen[:next(i for i, m in enumerate(seen) if m["body"] == "ENC:first")]
                          if m["from"].bare == group]
                added = [m.xml.find(".//{urn:xmpp:mix:core:1}participant") for m in before]
                added = [p.get("jid") for p in added if p is not None]
                assert added == [client.bare], f"{client.bare} was told of {len(added)} additions"
                profiles = [m for m in before
                            if m.xml.find(f"{EVENT}/{{http://jabber.org/protocol/pubsub#event}}info") is not None]
                assert len(profiles) == 1
                assert len(before) == 2, [ET.tostring(m.xml) for m in before]

    run(scenario())


def test_live_delivery_resumes_after_a_crash_without_new_presence(server, mixd, channel_name):
    """SIGKILL, restart: the clients that were online get the next post at once, though none
    sends presence again."""

    async def scenario():
        async with connected(server, "alice", "bob/phone", "bob/laptop") as (alice, phone, laptop):
            await alice.plugin["xep_0369"].create_channel(alice.channel("x"), channel_name, timeout=10)
            await alice.join_live(channel_name, "alice")
            await phone.join_live(channel_name, "bob")
            await laptop.online_in(channel_name)
            alice.post(channel_name, "before")
            for client in (alice, phone, laptop):
                assert (await client.next_message())["body"] == "before"

            mixd.stop(signal.SIGKILL)
            mixd.start()
            alice.post(channel_name, "after the crash")
            for client in (alice, phone, laptop):
                assert (await client.next_message(timeout=15))["body"] == "after the crash"

    run(scenario())
