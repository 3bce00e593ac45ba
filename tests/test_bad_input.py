"""Bad input gets the right XMPP error with a text, and the link stays up: mixd answers a
normal request right after each, and never logs a lost link."""

from conftest import connected, run
from harness.servers import MIX_DOMAIN


def test_errors_keep_the_link_up(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "eve") as (alice, eve):
            await alice.create_live(channel_name)
            channel = str(alice.channel(channel_name))

            # A non-participant posting.
            eve.post(channel_name, "let me in")
            error = await eve.next_error()
            assert error["from"] == channel
            assert error["error"]["condition"] == "forbidden" and "not a participant" in error["error"]["text"]

            # A join to a missing channel.
            condition, text = await eve.iq_error(eve.plugin["xep_0369"].join_channel(eve.channel("nowhere"), "eve", timeout=10))
            assert condition == "item-not-found" and "nowhere" in text

            # An iq nobody handles, an iq set without payload, a join naming an unknown node.
            iq = eve.make_iq_get(ito=channel)
            iq.xml.append(eve.plugin["xep_0030"].stanza.DiscoInfo().xml.makeelement("{jabber:iq:version}query", {}))
            condition, text = await eve.iq_error(iq.send(timeout=10))
            assert condition == "service-unavailable" and "jabber:iq:version" in text
            condition, _ = await eve.iq_error(eve.make_iq_set(ito=MIX_DOMAIN).send(timeout=10))
            assert condition == "bad-request"
            raw = eve.make_iq_set(ito=channel)
            raw.xml.append(raw.xml.makeelement("{urn:xmpp:mix:core:1}join", {}))
            raw.xml[0].append(raw.xml.makeelement("{urn:xmpp:mix:core:1}subscribe", {"node": "urn:example:bogus"}))
            condition, text = await eve.iq_error(raw.send(timeout=10))
            # XEP-0369 §7.1.2: no node requested can be subscribed, the error names the first.
            assert condition == "item-not-found" and "urn:example:bogus" in text

            # Messages of an invalid type and of a wrong type.
            eve.send_raw(f"<message xmlns='jabber:client' to='{channel}' type='bogus' id='b1'><body>x</body></message>")
            error = await eve.next_error()
            # Prosody passes the type through; ejabberd rewrites an unknown type to normal.
            expected = "bad-request" if server.name == "prosody" else "not-acceptable"
            assert (error["id"], error["error"]["condition"]) == ("b1", expected)
            alice.send_raw(f"<message xmlns='jabber:client' to='{channel}' type='chat' id='c1'><body>x</body></message>")
            error = await alice.next_error()
            assert (error["id"], error["error"]["condition"]) == ("c1", "not-acceptable")

            # An oversized message is refused and not archived.
            alice.post(channel_name, "x" * 70_000)
            error = await alice.next_error()
            assert error["error"]["condition"] == "not-acceptable" and "65536" in error["error"]["text"]

            # Malformed MAM and an overlong nick.
            condition, _ = await alice.iq_error(alice.mam(alice.channel(channel_name), with_jid="not a jid@@"))
            assert condition in ("bad-request", "jid-malformed")
            condition, _ = await alice.iq_error(alice.plugin["xep_0369"].set_nick(alice.channel(channel_name), "n" * 200, timeout=10))
            assert condition == "not-acceptable"

            # The link is still up and nothing was stored of the refused messages.
            alice.post(channel_name, "still working")
            assert (await alice.next_message())["body"] == "still working"
            history = await alice.mam(alice.channel(channel_name))
            assert [m["mam_result"]["forwarded"]["stanza"]["body"] for m in history["mam"]["results"]] == ["still working"]
            assert "component link lost" not in mixd.log()
            assert "panicked" not in mixd.log()

    run(scenario())
