"""Administration the standard way (XEP-0406), through slixmpp's pubsub plugin against
Prosody and ejabberd: an owner publishes the configuration form to the configuration node,
which changes roles, settings and the name as the mixd admin namespace does, is told to the
node's subscribers and kept in history; the node's one item is named by the date-time of the
last change; only owners publish (XEP-0060's forbidden for anyone else); a malformed form is
a bad request with a text. Banning the users' own domain keeps its users out."""

from datetime import datetime

from slixmpp.exceptions import IqError

from conftest import connected, run
from harness.client import form_values
from harness.servers import USER_DOMAIN

CONFIG = "urn:xmpp:mix:nodes:config"
INFO = "urn:xmpp:mix:nodes:info"
PARTICIPANTS = "urn:xmpp:mix:nodes:participants"
NODES = {"urn:xmpp:mix:nodes:messages", PARTICIPANTS, INFO, CONFIG}
NOTICES = "{urn:mixd:mam:0}notices"


def date_time(item_id):
    """An XEP-0082 date-time item id as a datetime; fails on anything else."""
    assert item_id.endswith("Z"), item_id
    return datetime.fromisoformat(item_id[:-1] + "+00:00")


async def publish_config(client, name, form_type="submit", **fields):
    """Publishes a configuration form (FORM_TYPE urn:xmpp:mix:admin:0) with `fields`, a list
    value making a jid-multi field (text-multi for mixd's); returns the result's item id."""
    form = client.plugin["xep_0004"].make_form(ftype=form_type)
    form.add_field("FORM_TYPE", ftype="hidden", value="urn:xmpp:mix:admin:0")
    for var, value in fields.items():
        multi = "text-multi" if var.startswith("mixd#") else "jid-multi"
        form.add_field(var, ftype=multi if isinstance(value, list) else None, value=value)
    result = await client.plugin["xep_0060"].publish(client.channel(name), CONFIG, payload=form, timeout=10)
    return result["pubsub"]["publish"]["item"]["id"]


async def config_item(client, name):
    """The configuration node's one item: (its id, {var: [values]})."""
    (item,) = await client.items(name, CONFIG)
    return item.get("id"), form_values(item)


async def next_event_item(client, node):
    """The next item published on `node`, as an XML element."""
    while True:
        kind, event = await client.next_event(node)
        if kind == "pubsub_publish":
            return event.xml.find(".//{http://jabber.org/protocol/pubsub#event}item")


def test_an_owner_publishes_the_configuration_form(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob", "carol") as (alice, bob, carol):
            await alice.create_live(channel_name, bob, carol, nodes=NODES)
            created_id, before = await config_item(alice, channel_name)
            assert before["Owner"] == [alice.bare]

            item_id = await publish_config(
                alice, channel_name,
                Owner=[alice.bare, bob.bare], Administrator=[carol.bare],
                **{"mixd#join-policy": "request", "Name": "The coven"},
            )
            assert date_time(item_id) > date_time(created_id)

            # Subscribers see the whole form, who changed it, under the same date-time id,
            # and the new name on the info node.
            while True:
                event = await next_event_item(carol, CONFIG)
                values = form_values(event)
                if values["Owner"] == [alice.bare, bob.bare]:
                    break
            assert values["Last Change Made By"] == [alice.bare]
            assert values["Administrator"] == [carol.bare]
            assert values["mixd#join-policy"] == ["request"]
            assert event.get("id") == item_id
            info = form_values(await next_event_item(carol, INFO))
            assert info["Name"] == ["The coven"]

            read_id, now = await config_item(carol, channel_name)
            assert read_id == item_id
            assert (now["Owner"], now["Administrator"]) == ([alice.bare, bob.bare], [carol.bare])

            # The new owner has an owner's rights: it hands the channel over by publishing.
            await publish_config(bob, channel_name, Owner=[bob.bare], Administrator=[alice.bare])
            _, after = await config_item(carol, channel_name)
            assert (after["Owner"], after["Administrator"]) == ([bob.bare], [alice.bare])
            condition, _ = await alice.iq_error(publish_config(alice, channel_name, Owner=[alice.bare]))
            assert condition == "forbidden"

            # Muted members are a list too: carol muted until then.
            until = "2099-01-01T00:00:00.000000Z"
            await publish_config(bob, channel_name, **{"mixd#muted-members": [f"{carol.bare} {until}"]})
            carol.post(channel_name, "am I muted?")
            error = await carol.next_error()
            assert error["error"]["condition"] == "forbidden" and until in error["error"]["text"]

            # Kept in history as any change of roles and settings.
            page = await carol.mam(carol.channel(channel_name), fields={NOTICES: "true"}, max=50)
            notices = [n for n in (r["mam_result"]["forwarded"]["stanza"].xml.find("{urn:mixd:notice:0}notice")
                                   for r in page["mam"]["results"]) if n is not None]
            rows = [(n.get("kind"), n.get("by"), n.get("jid")) for n in notices]
            assert rows[-7:] == [
                ("settings-changed", alice.bare, None),
                ("profile-updated", alice.bare, None),
                ("made-owner", alice.bare, bob.bare),
                ("made-admin", alice.bare, carol.bare),
                ("made-admin", bob.bare, alice.bare),
                ("admin-revoked", bob.bare, carol.bare),
                ("muted", bob.bare, carol.bare),
            ]

    run(scenario())


def test_only_owners_publish_and_bad_forms_are_refused_with_a_text(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob", "carol", "dave") as (alice, bob, carol, dave):
            await alice.create_live(channel_name, bob, carol, nodes=NODES)
            await alice.admin(channel_name, "role", jid=bob.bare, role="admin")
            assert form_values(await next_event_item(carol, CONFIG))["Administrator"] == [bob.bare]
            item_id, before = await config_item(alice, channel_name)

            # Admin, member, outsider: XEP-0060's forbidden, with a text; nothing changes.
            for client in (bob, carol, dave):
                condition, text = await client.iq_error(
                    publish_config(client, channel_name, Owner=[client.bare], **{"mixd#muted": "true"}))
                assert condition == "forbidden", client.user
                assert text == f"only an owner of '{channel_name}' may change its configuration"
            assert await config_item(alice, channel_name) == (item_id, before)

            for fields, form_type, expected in [
                ({"Owner": ["not a jid@@"]}, "submit", ("bad-request", "Owner: 'not a jid@@' is not a bare JID")),
                ({"mixd#join-policy": "anarchy"}, "submit",
                 ("bad-request", "mixd#join-policy: 'anarchy' is not one of open, invite, request")),
                ({}, "form", ("bad-request", "the configuration form must be of type 'submit', not 'form'")),
                # XEP-0406: a channel always has an owner (XEP-0060: not-acceptable).
                ({"Owner": []}, "submit", ("not-acceptable", f"'{channel_name}' must keep an owner")),
                ({"Administrator": [dave.bare]}, "submit",
                 ("item-not-found", f"{dave.bare} is not a participant of '{channel_name}'")),
            ]:
                assert await alice.iq_error(publish_config(alice, channel_name, form_type, **fields)) == expected
            assert await config_item(alice, channel_name) == (item_id, before)

            # An item without a form is XEP-0060's bad payload (bad-request).
            try:
                await alice.plugin["xep_0060"].publish(alice.channel(channel_name), CONFIG, id="current", timeout=10)
                raise AssertionError("a publish without a form succeeded")
            except IqError as e:
                assert e.iq["error"]["condition"] == "bad-request"
                assert e.iq["error"]["text"] == "the configuration item carries one jabber:x:data form and nothing else"

            # Fields mixd does not know are ignored (XEP-0004), and so is the one it writes
            # itself: the form as read comes back as no change, under the same id.
            multi = {"Owner", "Administrator", "mixd#muted-members"}
            same = await publish_config(
                alice, channel_name,
                **{"Mandatory Nicks": "true", "End of Life": "2099-01-01T00:00:00Z",
                   "Last Change Made By": dave.bare,
                   **{var: values if var in multi else values[0] for var, values in before.items()
                      if var != "FORM_TYPE" and var != "Last Change Made By"}})
            assert same == item_id

            # None of the refused or empty publishes was told to carol: the first configuration
            # event she gets is the change that follows.
            await publish_config(alice, channel_name, **{"mixd#muted": "true"})
            values = form_values(await next_event_item(carol, CONFIG))
            assert values["mixd#muted"] == ["true"] and values["Last Change Made By"] == [alice.bare]

    run(scenario())


def test_banning_the_users_own_domain_keeps_its_users_out(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob", "carol", "dave") as (alice, bob, carol, dave):
            await alice.create_live(channel_name, bob, carol, nodes=NODES)
            await alice.ban(channel_name, USER_DOMAIN)

            # Every participant of the domain but the owner is taken out...
            gone = set()
            while len(gone) < 2:
                kind, event = await alice.next_event(PARTICIPANTS)
                if kind == "pubsub_retract":
                    gone.add(event["pubsub_event"]["items"]["retract"]["id"])
            participants = await alice.plugin["xep_0369"].list_participants(alice.channel(channel_name), timeout=10)
            assert [str(j) for _, _, j in participants] == [alice.bare]
            assert [i.get("id") for i in await alice.items(channel_name, "urn:xmpp:mix:nodes:banned")] == [USER_DOMAIN]

            # ...and kept out, newcomers too; the owner stays and posts.
            for client in (bob, dave):
                condition, text = await client.iq_error(
                    client.plugin["xep_0369"].join_channel(client.channel(channel_name), client.user, timeout=10))
                assert (condition, text) == ("forbidden", f"{client.bare} is banned from '{channel_name}'")
            alice.post(channel_name, "alone now")
            assert (await alice.next_message())["body"] == "alone now"

            # Lifting the ban lets them back.
            await alice.ban(channel_name, USER_DOMAIN, retract=True)
            await dave.join_live(channel_name, "dave")

    run(scenario())
