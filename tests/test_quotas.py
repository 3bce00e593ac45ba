"""Quotas (issue 13), through real clients on Prosody and ejabberd, with mixd started with
small limits through its environment (a binary without quotas ignores the variables, and then
fails these tests for what they check): a user posting faster than its message rate gets
`policy-violation` with a text saying when to retry, and its message after the refill passes;
the quota is the user's, not each client's; chat states, reactions and receipts beyond their
rate get `policy-violation`; creating channels beyond the hourly limit, joining beyond the
limit a minute, adding and inviting users beyond the hourly limit get `resource-constraint`;
a flood of MAM queries beyond the history rate gets `policy-violation` while another user's
query is answered, and once a user is out of reads the link refuses its queries before they are
read;
the real FlyChat SDK's calls meet the same quotas (through harness/sdk.py, on both servers).

Each quota is the acting user's, and this module's mixd is shared by its tests: each test
acts as users of its own where a quota is reached.

"Nothing more arrives" is shown by a later stanza arriving first, never by waiting."""

import asyncio
import os
import tempfile
import time
import xml.etree.ElementTree as ET

import pytest
from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from conftest import connected, run
from harness.client import ADMIN, MISC, error_of
from harness.sdk import sdk_users, serve_bootstrap
from harness.servers import USER_DOMAIN, Mixd

# This module's mixd: three messages at once, then one every five seconds (slow enough that four
# sends in a row meet the burst even on a loaded machine, where they may take over a second);
# three signals a minute; two channels an hour; two joins a minute; two users added or invited
# an hour; five reads of the archive at once, then one a second.
LIMITS = {
    "MIXD_MESSAGE_BURST": "3",
    "MIXD_MESSAGES_PER_MINUTE": "12",
    "MIXD_SIGNALS_PER_MINUTE": "3",
    "MIXD_CHANNELS_PER_HOUR": "2",
    "MIXD_JOINS_PER_MINUTE": "2",
    "MIXD_ADDS_PER_HOUR": "2",
    "MIXD_HISTORY_BURST": "5",
    "MIXD_HISTORY_PER_MINUTE": "60",
}

# The FlyChat users, whom no other test of this module acts as.
FLYCHAT_USERS = ("hana", "ivan", "judy")


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
    daemon.api = serve_bootstrap(daemon, server)
    daemon.start()
    daemon.wait_for_log("bootstrap listening")
    yield daemon
    daemon.stop()


def catch_message_errors(client):
    """Every message error the client receives, as (id, condition, text, type), in order."""
    errors = asyncio.Queue()

    def caught(stanza):
        if stanza.xml.get("type") == "error":
            errors.put_nowait((stanza.xml.get("id"), *error_of(stanza)))

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
            assert got[2].startswith("you are sending messages too fast: at most 3 at once, then 12 a minute; "
                                     "try again in "), got[2]
            wait = float(got[2].rsplit(" ", 2)[1])
            assert 0 < wait <= 5.0, got[2]
            # Bob's own quota is untouched, and nothing of "four" reached him before his post.
            bob.post(channel_name, "bob's")
            assert (await bob.next_message())["body"] == "bob's"

            # After the refill (one every five seconds) the next message passes, once.
            await asyncio.sleep(max(0.0, started + wait + 0.2 - time.monotonic()))
            laptop.post(channel_name, "five")
            assert (await bob.next_message())["body"] == "five"
            assert errors.empty()
            # The history holds what passed and nothing refused.
            history = await bob.mam(bob.channel(channel_name))
            bodies = [m["mam_result"]["forwarded"]["stanza"]["body"] for m in history["mam"]["results"]]
            assert sorted(bodies[:3]) == ["one", "three", "two"] and bodies[3:] == ["bob's", "five"], bodies

    run(scenario())


def test_a_flood_of_history_queries_is_refused_while_another_user_reads(server, mixd, channel_name):
    async def scenario():
        # (alice and dave: whose join and channel quotas the other tests leave room in.)
        async with connected(server, "alice", "dave") as (alice, dave):
            await dave.create_live(channel_name, alice)
            dave.post(channel_name, "for the record")
            assert (await alice.next_message())["body"] == "for the record"

            # Alice asks for twenty pages at once, then dave for one.
            flood = asyncio.ensure_future(alice.mam_at_once(alice.channel(channel_name), 20))
            await asyncio.sleep(0)
            # Dave's query is answered, whatever alice's flood does.
            assert await dave.mam_at_once(dave.channel(channel_name), 1) == [("result", ["for the record"])]
            answers = await flood
            answered = [answer for answer in answers if answer[0] == "result"]
            refused = [answer[1:] for answer in answers if answer[0] == "error"]
            assert len(answered) + len(refused) == 20, answers
            # The burst (five), and at most the few that refilled (one a second) meanwhile.
            assert 5 <= len(answered) <= 8, answers
            assert all(bodies == ["for the record"] for _, bodies in answered), answered
            for condition, text, kind in refused:
                assert (condition, kind) == ("policy-violation", "modify"), (condition, text, kind)
                assert text.startswith("you are reading history too fast: at most 5 reads at once, "
                                       "then 60 a minute; try again in "), text

    run(scenario())


def test_once_out_of_reads_history_queries_are_refused_before_they_are_read(server, mixd, channel_name):
    """The link refuses the history queries of a user whom the history quota has refused, on
    their envelope (src/read_gate.rs): told by the one answer that differs from the rules' own,
    a query to a channel that does not exist gets the quota's `policy-violation` instead of
    `item-not-found` until the bucket has a token again, then `item-not-found` as before."""
    async def scenario():
        server.register("kim")
        async with connected(server, "kim") as (kim,):
            await kim.create_live(channel_name)
            nowhere = kim.channel(f"{channel_name}-nowhere")
            # Before the quota is reached, the rules answer for the channel.
            assert (await kim.mam_at_once(nowhere, 1))[0][:2] == ("error", "item-not-found")
            answers = await kim.mam_at_once(kim.channel(channel_name), 6)
            # The burst: five (the query to no channel was refused before it was a read, and
            # took no token), then the quota's refusal, which tells the link until when.
            assert [a[0] for a in answers[:5]] == ["result"] * 5, answers
            assert answers[5][:2] == ("error", "policy-violation"), answers
            started = time.monotonic()
            wait = float(answers[5][2].rsplit(" ", 2)[1])
            assert 0 < wait <= 1.0, answers[5]
            # Out of reads: the link answers with the quota's refusal, whatever the channel.
            (refused,) = await kim.mam_at_once(nowhere, 1)
            assert refused[0] == "error", refused
            condition, text, kind = refused[1:]
            assert (condition, kind) == ("policy-violation", "modify"), refused
            assert text.startswith("you are reading history too fast: at most 5 reads at once, "
                                   "then 60 a minute; try again in "), text
            # Once the bucket refills, the rules answer again.
            await asyncio.sleep(max(0.0, started + wait + 0.2 - time.monotonic()))
            assert (await kim.mam_at_once(nowhere, 1))[0][:2] == ("error", "item-not-found")

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


def test_chat_states_reactions_and_receipts_over_their_rate_are_refused(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "frank", "bob") as (frank, bob):
            errors = catch_message_errors(frank)
            await frank.create_live(channel_name, bob)
            asked = bob.post(channel_name, "lunch?")
            question = (await frank.next_message())["stanza_id"]["id"]
            await bob.next_message()

            # Three signals a minute, of any kind: a chat state, a reaction, a receipt pass.
            typing = frank.groupchat(channel_name)
            typing["chat_state"] = "composing"
            typing.send()
            assert (await bob.next("chatstate"))["chat_state"] == "composing"
            reaction = frank.groupchat(channel_name)
            frank.plugin["xep_0444"].set_reactions(reaction, question, ["👍"])
            reaction.send()
            assert set((await bob.next("reactions"))["reactions"]["values"]) == {"👍"}
            receipt = frank.groupchat(channel_name)
            receipt["receipt"] = question
            receipt.send()
            # (The author learning it proves it counted: a receipt waits for the archive,
            # and a later chat state could otherwise take the token before it.)
            # (by the id bob sent, XEP-0184 §5)
            assert (await bob.next("receipt_received"))["receipt"] == asked["id"]
            # The fourth, a chat state, is over the rate: refused, with when to retry.
            over = frank.groupchat(channel_name)
            over["chat_state"] = "paused"
            over["id"] = "over-the-signal-rate"
            over.send()
            got = await asyncio.wait_for(errors.get(), 10)
            assert got[:2] == ("over-the-signal-rate", "policy-violation"), got
            assert got[3] == "modify", got
            assert got[2].startswith("you are sending chat states, receipts, reactions and retractions too fast: "
                                     "at most 3 a minute; try again in "), got[2]
            # A reaction, too (the same quota), refused before the archive is read for it.
            another = frank.groupchat(channel_name)
            frank.plugin["xep_0444"].set_reactions(another, question, ["🍕"])
            another["id"] = "over-with-a-reaction"
            another.send()
            got = await asyncio.wait_for(errors.get(), 10)
            assert got[:2] == ("over-with-a-reaction", "policy-violation"), got
            # Posts are apart: frank's next message passes, and reaches bob before anything
            # of the refused signals could have (nothing of them is relayed).
            frank.post(channel_name, "pizza")
            assert (await bob.next_message())["body"] == "pizza"
            assert bob.received["chatstate"].empty() and bob.received["reactions"].empty()
            assert errors.empty()

    run(scenario())


def test_joining_beyond_the_limit_a_minute_is_refused(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "grace", "eve", "frank") as (grace, eve, frank):
            await grace.create_live(channel_name)
            mix = eve.plugin["xep_0369"]
            # Two joins a minute: join, leave, join again (each changes something).
            await mix.join_channel(eve.channel(channel_name), "eve", timeout=10)
            await mix.leave_channel(eve.channel(channel_name), timeout=10)
            await mix.join_channel(eve.channel(channel_name), "eve", timeout=10)
            # Joining again as one already is changes nothing and costs nothing.
            await mix.join_channel(eve.channel(channel_name), "eve", timeout=10)
            await mix.leave_channel(eve.channel(channel_name), timeout=10)
            with pytest.raises(IqError) as refused:
                await mix.join_channel(eve.channel(channel_name), "eve", timeout=10)
            error = refused.value.iq["error"]
            assert error["condition"] == "resource-constraint"
            assert error["type"] == "wait"
            assert error["text"].startswith("you are joining channels too fast: at most 2 a minute; try again in ")
            # The refused join changed nothing: eve is not a participant. Another user's joins
            # are his own.
            await frank.join_live(channel_name, "frank")
            participants = await grace.plugin["xep_0369"].list_participants(grace.channel(channel_name), timeout=10)
            jids = {str(j) for _, _, j in participants}
            assert eve.bare not in jids and frank.bare in jids, jids

    run(scenario())


def test_adding_and_inviting_beyond_the_hourly_limit_is_refused(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "grace", "dave") as (grace, dave):
            await grace.create_live(channel_name)
            # Two users an hour, invited (XEP-0407) or added (the FlyChat operation) alike.
            await grace.invite(channel_name, dave.bare)
            assert (await dave.next_notice()).tag == f"{{{MISC}}}invitation"
            await grace.flychat(channel_name, "add_participants", [f"carol@{USER_DOMAIN}"])
            for refused_request in (grace.invite(channel_name, f"alice@{USER_DOMAIN}"),
                                    grace.flychat(channel_name, "add_participants", [f"bob@{USER_DOMAIN}"])):
                with pytest.raises(IqError) as refused:
                    await refused_request
                error = refused.value.iq["error"]
                assert error["condition"] == "resource-constraint"
                assert error["type"] == "wait"
                assert error["text"].startswith(
                    "you have added or invited users too fast: at most 2 an hour; try again in "), error["text"]
                assert error["text"].endswith(" minutes"), error["text"]
            # Nothing of the refused requests was done: carol is in, bob is not, and no
            # invitation for alice waits.
            participants = await grace.plugin["xep_0369"].list_participants(grace.channel(channel_name), timeout=10)
            jids = {str(j) for _, _, j in participants}
            assert f"carol@{USER_DOMAIN}" in jids and f"bob@{USER_DOMAIN}" not in jids, jids
            pending = (await grace.admin(channel_name, "pending", get=True)).xml.find(f"{{{ADMIN}}}pending")
            assert [p.get("jid") for p in pending] == [dave.bare], [ET.tostring(p) for p in pending]

    run(scenario())


def test_flychat_sdk_calls_meet_the_same_quotas(server, mixd):
    """The real FlyChat SDK (harness/sdk.py) meets the same quotas. The SDK shows the app a
    refused iq only as `statusCode` 500 (never the condition or text, which the MIX tests
    above check), and a refused message not at all (sendTextMessage has settled with 200
    before the error comes back, and no listener is called for it): so what is asserted is
    the refusal the app sees and that nothing was done — no group, nobody added, nothing
    relayed, shown by a later stanza arriving first."""
    def ok(result):
        assert result["statusCode"] == 200, result
        return result.get("data")

    def refused(result):
        assert result["statusCode"] == 500, result

    def jid(user):
        return f"{user}@{USER_DOMAIN}"

    async def scenario():
        for user in FLYCHAT_USERS:
            server.register(user)
        async with sdk_users(server, mixd.api, *FLYCHAT_USERS) as (hana, ivan, judy):
            # Two groups an hour (the SDK wants a participant: the creator herself adds nobody).
            first = ok(await hana.call("createGroup", "First", [jid("ivan")], ""))["groupJid"]
            second = ok(await hana.call("createGroup", "Second", [jid("hana")], ""))["groupJid"]
            refused(await hana.call("createGroup", "Third", [jid("hana")], ""))
            groups = ok(await hana.call("getGroupsList"))
            assert sorted(g["groupName"] for g in groups) == ["First", "Second"], groups

            # Two users added an hour: ivan (at creation), then judy; ivan again is one too many.
            mark = judy.mark()
            ok(await hana.call("addParticipants", first, "First", [jid("judy")]))
            await judy.event("groupProfileListener", lambda d: d.get("msgType") == "userAdded", since=mark)
            refused(await hana.call("addParticipants", second, "Second", [jid("ivan")]))
            listed = ok(await hana.call("getGroupParticipants", second))["participants"]
            assert [p["userJid"] for p in listed] == [jid("hana")], listed
            assert second not in {g["groupJid"] for g in ok(await ivan.call("getGroupsList"))}

            # Three signals a minute (before anyone receives a message, whose delivery
            # receipts the SDK sends by itself and which count too): judy's fourth typing is
            # refused and not relayed; hana's, her own quota, passes and reaches ivan first.
            typing = lambda who: lambda d: d.get("msgType") == "composing" and d.get("fromUserId") == who
            mark = ivan.mark()
            for _ in range(3):
                ok(await judy.call("sendTypingStatus", first))
            refused(await judy.call("sendTypingStatus", first))
            ok(await hana.call("sendTypingStatus", first))
            await ivan.event("messageListener", typing("hana"), since=mark)
            assert len([d for e, d in ivan.events[mark:] if e == "messageListener" and typing("judy")(d)]) == 3

            # Three messages at once: ivan's fourth is refused and reaches nobody. His typing
            # after it (same stream, its own quota) and judy's message reach hana and judy
            # first.
            mark_hana, mark_judy = hana.mark(), judy.mark()
            sent = [ok(await ivan.call("sendTextMessage", first, f"message {n}"))["msgId"] for n in range(4)]
            ok(await ivan.call("sendTypingStatus", first))
            later = ok(await judy.call("sendTextMessage", first, "judy's"))["msgId"]
            for member, mark in ((hana, mark_hana), (judy, mark_judy)):
                for msg_id in sent[:3]:
                    await member.event("messageListener", lambda d, i=msg_id: d.get("msgId") == i, since=mark)
                await member.event("messageListener", typing("ivan"), since=mark)
            await hana.event("messageListener", lambda d: d.get("msgId") == later, since=mark_hana)
            for member, mark in ((hana, mark_hana), (judy, mark_judy)):
                assert not [d for _, d in member.events[mark:] if d and d.get("msgId") == sent[3]]
            # Nor is it in the history.
            rows = (await hana.call("getChatMessages", first, "down", "", 50))["data"]
            assert sent[3] not in {r["msgId"] for r in rows}
            assert set(sent[:3]) <= {r["msgId"] for r in rows}

    run(scenario())
