"""Hostile stanzas on the wire (issue 13): what any user can make the server pass on to mixd
must neither take mixd down nor drop its link. A stanza nested thousands of levels deep, a
token longer than a parser's default limit, a 20 MB body and a stanza of a million empty
children each get exactly one error reply (or, within the limits, their normal answer);
mixd stays up with its link up, its memory stays bounded, and a normal exchange works right
after each.

Prosody only: ejabberd 23.01's VM crashes routing a deeply nested stanza (platform-notes), so
it cannot carry these to mixd. deploy/prosody.cfg.lua.in raises Prosody's c2s stanza limit so
that the 20 MB stanzas reach mixd at all; mixd's own limit (max_stanza_bytes, 256 KiB by
default) is what refuses them.
"""

import asyncio
import tempfile

import pytest
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from conftest import USERS, connected, run
from harness.client import error_of
from harness.servers import MIX_DOMAIN, Mixd, Prosody, started

# Growth of mixd's resident memory allowed over the whole module. The old reader kept a 20 MB
# body whole and a million children as 98 MB of tree.
RSS_GROWTH_KIB = 48 * 1024


@pytest.fixture(scope="module")
def wire():
    server = started(Prosody, USERS[:2])
    daemon = Mixd(server, tempfile.mkdtemp(prefix="mixd-db-"))
    daemon.start()
    daemon.baseline_kib = daemon.rss_kib()
    daemon.peak_kib = daemon.baseline_kib
    yield server, daemon
    daemon.stop()
    server.stop()


def catch_errors(client):
    """Every error stanza the client receives, as (element, id, condition, text), in order."""
    errors = asyncio.Queue()

    def caught(stanza):
        if stanza.xml.get("type") != "error":
            return
        condition, text, _ = error_of(stanza)
        errors.put_nowait((stanza.xml.tag.split("}")[1], stanza.xml.get("id"), condition, text))

    for kind in ("message", "presence", "iq"):
        client.register_handler(Callback(f"errors-{kind}", MatchXPath(f"{{jabber:client}}{kind}"), caught))
    return errors


async def settle(wire, alice, channel_name, errors):
    """mixd is up with its link up, a normal post comes back, no error arrived before it that
    was not taken already, and memory is within bounds."""
    server, mixd = wire
    alice.post(channel_name, "still here")
    assert (await alice.next_message())["body"] == "still here"
    # The reflection went out after any reply to what was sent before it: nothing more is due.
    assert errors.empty(), f"more error replies than stanzas refused: {errors.get_nowait()}"
    assert mixd.process.poll() is None, mixd.log()
    log = mixd.log()
    assert "component link lost" not in log and "panicked" not in log
    rss = mixd.rss_kib()
    mixd.peak_kib = max(mixd.peak_kib, rss)
    print(f"mixd VmRSS {rss} KiB (baseline {mixd.baseline_kib} KiB)")
    assert rss - mixd.baseline_kib < RSS_GROWTH_KIB, f"mixd grew from {mixd.baseline_kib} to {rss} KiB"


async def setup(server, alice, channel_name):
    await alice.create_live(channel_name)
    return catch_errors(alice), str(alice.channel(channel_name))


def deep(element, to, stanza_id, depth, extra=""):
    inner = "<a xmlns='urn:example:deep'>" * (depth - 1) + "</a>" * (depth - 1)
    return f"<{element} to='{to}' id='{stanza_id}'{extra}>{inner}</{element}>"


def test_stanzas_nested_5000_deep_are_refused_one_error_each(wire, channel_name):
    server, mixd = wire

    async def scenario():
        async with connected(server, "alice") as (alice,):
            errors, channel = await setup(server, alice, channel_name)
            alice.send_raw(deep("message", channel, "deep-m", 5000, " type='groupchat'"))
            alice.send_raw(deep("presence", channel, "deep-p", 5000))
            alice.send_raw(deep("iq", channel, "deep-i", 5000, " type='get'"))
            for element, stanza_id in (("message", "deep-m"), ("presence", "deep-p"), ("iq", "deep-i")):
                got = await asyncio.wait_for(errors.get(), 20)
                assert got[:3] == (element, stanza_id, "policy-violation"), got
                assert "levels deep" in got[3]
            await settle(wire, alice, channel_name, errors)

    run(scenario())


def test_tokens_longer_than_8192_bytes_are_read(wire, channel_name):
    server, mixd = wire

    async def scenario():
        async with connected(server, "alice") as (alice,):
            errors, channel = await setup(server, alice, channel_name)
            long_id = "i" * 20_000
            meta = "m" * 20_000
            # An iq with a 20 KB id: answered normally (a join to a channel that is not there).
            alice.send_raw(
                f"<iq type='set' to='nowhere@{MIX_DOMAIN}' id='{long_id}'>"
                f"<join xmlns='urn:xmpp:mix:core:1'><nick>x</nick></join></iq>"
            )
            got = await asyncio.wait_for(errors.get(), 20)
            assert got[:3] == ("iq", long_id, "item-not-found"), got[:3]
            # A presence with a 20 KB attribute value, to a channel that is not there.
            alice.send_raw(f"<presence to='nowhere@{MIX_DOMAIN}' id='long-attr' meta='{meta}'/>")
            got = await asyncio.wait_for(errors.get(), 20)
            assert got[:2] == ("presence", "long-attr"), got
            # A message to the channel with one (a reference to a 20 KB data: URI, an
            # extension the payload allow-list keeps): posted like any other.
            alice.send_raw(
                f"<message to='{channel}' type='groupchat' id='long-msg'>"
                "<body>with a long attribute</body>"
                f"<reference xmlns='urn:xmpp:reference:0' type='data' uri='data:,{meta}'/></message>"
            )
            assert (await alice.next_message())["body"] == "with a long attribute"
            await settle(wire, alice, channel_name, errors)

    run(scenario())


def test_a_20_mb_body_is_skipped_unread(wire, channel_name):
    server, mixd = wire

    async def scenario():
        async with connected(server, "alice") as (alice,):
            errors, channel = await setup(server, alice, channel_name)
            body = "x" * (20 << 20)
            alice.send_raw(f"<message to='{channel}' type='groupchat' id='huge'><body>{body}</body></message>")
            got = await asyncio.wait_for(errors.get(), 60)
            assert got[:3] == ("message", "huge", "policy-violation"), got[:3]
            assert "262144" in got[3]
            await settle(wire, alice, channel_name, errors)
            history = await alice.mam(alice.channel(channel_name))
            assert [m["mam_result"]["forwarded"]["stanza"]["body"] for m in history["mam"]["results"]] == ["still here"]

    run(scenario())


def test_a_million_empty_children_are_skipped_unread(wire, channel_name):
    server, mixd = wire

    async def scenario():
        async with connected(server, "alice") as (alice,):
            errors, channel = await setup(server, alice, channel_name)
            children = "<a/>" * 1_000_000
            alice.send_raw(f"<message to='{channel}' type='groupchat' id='many'><body>x</body>{children}</message>")
            got = await asyncio.wait_for(errors.get(), 120)
            assert got[:3] == ("message", "many", "policy-violation"), got[:3]
            await settle(wire, alice, channel_name, errors)

    run(scenario())


def test_memory_stayed_bounded(wire):
    server, mixd = wire
    print(f"mixd VmRSS: baseline {mixd.baseline_kib} KiB, peak {mixd.peak_kib} KiB, now {mixd.rss_kib()} KiB")
    assert mixd.peak_kib - mixd.baseline_kib < RSS_GROWTH_KIB
    assert mixd.process.poll() is None
