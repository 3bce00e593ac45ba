"""Quotas (issue 13), through real clients on Prosody and ejabberd, with mixd started with
small limits through its environment (a binary without quotas ignores the variables, and then
fails these tests for what they check): a user posting faster than its message rate gets
`policy-violation` with a text saying when to retry, and its message after the refill passes;
the quota is the user's, not each client's; creating channels beyond the hourly limit gets
`resource-constraint`.

"Nothing more arrives" is shown by a later stanza arriving first, never by waiting."""

import asyncio
import os
import tempfile
import time

import pytest
from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from conftest import connected, run
from harness.servers import MIX_DOMAIN, Mixd

STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
# This module's mixd: three messages at once, then one a second; two channels an hour.
LIMITS = {
    "MIXD_MESSAGE_BURST": "3",
    "MIXD_MESSAGES_PER_MINUTE": "60",
    "MIXD_CHANNELS_PER_HOUR": "2",
}


class LimitedMixd(Mixd):
    def start(self):
        os.environ.update(LIMITS)
        try:
            super().start()
        finally:
            for variable in LIMITS:
                os.environ.pop(variable, None)


@pytest.fixture(scope="module")
def mixd(server):
    daemon = LimitedMixd(server, tempfile.mkdtemp(prefix="mixd-db-"))
    daemon.start()
    yield daemon
    daemon.stop()


def catch_message_errors(client):
    """Every message error the client receives, as (id, condition, text, type), in order.
    Read from the XML: slixmpp knows only RFC 3920's conditions, not policy-violation."""
    errors = asyncio.Queue()

    def caught(stanza):
        if stanza.xml.get("type") != "error":
            return
        error = stanza.xml.find("{jabber:client}error")
        condition = text = None
        for child in error if error is not None else ():
            if child.tag == f"{{{STANZAS}}}text":
                text = child.text
            elif child.tag.startswith(f"{{{STANZAS}}}"):
                condition = child.tag.split("}")[1]
        errors.put_nowait((stanza.xml.get("id"), condition, text, error.get("type")))

    client.register_handler(Callback(f"quota-errors-{client.boundjid}", MatchXPath("{jabber:client}message"), caught))
    return errors


def test_posting_over_the_rate_is_refused_until_the_refill(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice/phone", "alice/laptop", "bob") as (phone, laptop, bob):
            errors = catch_message_errors(phone)
            await phone.plugin["xep_0369"].create_channel(phone.channel("x"), channel_name, timeout=10)
            await phone.join_live(channel_name, "alice")
            await laptop.online_in(channel_name)
            await bob.join_live(channel_name, "bob")

            # The burst, from two clients of one user: all three pass.
            phone.post(channel_name, "one")
            laptop.post(channel_name, "two")
            phone.post(channel_name, "three")
            # (Two clients' stanzas reach mixd through two sessions: in either order.)
            assert {(await bob.next_message())["body"] for _ in range(3)} == {"one", "two", "three"}
            started = time.monotonic()
            # The fourth, from either client, is over the rate: refused, with when to retry.
            over = phone.make_message(mto=phone.channel(channel_name), mbody="four", mtype="groupchat")
            over["id"] = "over-the-rate"
            over.send()
            got = await asyncio.wait_for(errors.get(), 10)
            assert got[:2] == ("over-the-rate", "policy-violation"), got
            assert got[3] == "modify", got
            assert got[2].startswith("you are sending messages too fast: at most 3 at once, then 60 a minute; "
                                     "try again in "), got[2]
            wait = float(got[2].rsplit(" ", 2)[1])
            assert 0 < wait <= 1.0, got[2]
            # Bob's own quota is untouched, and nothing of "four" reached him before his post.
            bob.post(channel_name, "bob's")
            assert (await bob.next_message())["body"] == "bob's"

            # After the refill (one a second) the next message passes, once.
            await asyncio.sleep(max(0.0, started + wait + 0.2 - time.monotonic()))
            laptop.post(channel_name, "five")
            assert (await bob.next_message())["body"] == "five"
            assert errors.empty()
            # The history holds what passed and nothing refused.
            history = await bob.mam(bob.channel(channel_name))
            bodies = [m["mam_result"]["forwarded"]["stanza"]["body"] for m in history["mam"]["results"]]
            assert sorted(bodies[:3]) == ["one", "three", "two"] and bodies[3:] == ["bob's", "five"], bodies

    run(scenario())


def test_creating_channels_beyond_the_hourly_limit_is_refused(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "carol", "dave") as (carol, dave):
            for suffix in ("a", "b"):
                await carol.plugin["xep_0369"].create_channel(carol.channel("x"), f"{channel_name}-{suffix}",
                                                              timeout=10)
            with pytest.raises(IqError) as refused:
                await carol.plugin["xep_0369"].create_channel(carol.channel("x"), f"{channel_name}-c", timeout=10)
            error = refused.value.iq["error"]
            assert error["condition"] == "resource-constraint"
            assert error["text"].startswith("you have created channels too fast: at most 2 an hour; try again in ")
            assert error["text"].endswith(" minutes")
            # Nothing was created: the name is free for another user, whose quota is its own.
            await dave.plugin["xep_0369"].create_channel(dave.channel("x"), f"{channel_name}-c", timeout=10)

    run(scenario())
