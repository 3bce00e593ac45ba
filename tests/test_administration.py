"""Group administration for standard clients (slixmpp, against Prosody and ejabberd): the
permission table of docs/protocol.md cell by cell, the membership policies (invitations with
XEP-0407, open join, requests where the first decision stands), ownership passing, the last
member out, mutes, access lists, limits, the user's own groups, and every change as a
configuration-node event at another participant and as a notice in history."""

import asyncio
import xml.etree.ElementTree as ET

import pytest
from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from conftest import connected, run
from harness.client import ADMIN, FLYCHAT, MISC, form_values
from harness.servers import MIX_DOMAIN, USER_DOMAIN

CONFIG = "urn:xmpp:mix:nodes:config"
NODES = {"urn:xmpp:mix:nodes:messages", "urn:xmpp:mix:nodes:participants", "urn:xmpp:mix:nodes:info", CONFIG}
PARTICIPANTS = "urn:xmpp:mix:nodes:participants"
BANNED = "urn:xmpp:mix:nodes:banned"
NOTICES = "{urn:mixd:mam:0}notices"


def jid(user):
    return f"{user}@{USER_DOMAIN}"


async def info_form(client, name, **fields):
    form = client.plugin["xep_0004"].make_form(ftype="submit")
    form.add_field("FORM_TYPE", ftype="hidden", value="urn:xmpp:mix:core:1")
    for var, value in fields.items():
        form.add_field(var, value=value)
    return await client.plugin["xep_0060"].publish(client.channel(name), "urn:xmpp:mix:nodes:info", payload=form, timeout=10)


def flychat_profile(image):
    query = ET.Element(f"{{{FLYCHAT}}}query", status="set_group_info")
    vcard = ET.SubElement(ET.SubElement(query, f"{{{FLYCHAT}}}profile"), "{vcard-temp}vCard")
    ET.SubElement(vcard, "{vcard-temp}image").text = image
    return query


async def state(owner, name):
    """Everything an operation could change, as the owner reads it; None once the channel
    is gone."""
    try:
        participants = sorted((nick, str(j)) for _, nick, j in
                              await owner.plugin["xep_0369"].list_participants(owner.channel(name), timeout=10))
        config = await owner.config(name)
        info = await owner.plugin["xep_0369"].get_channel_info(owner.channel(name))
        banned = [i.get("id") for i in await owner.items(name, BANNED)]
        pending = await owner.admin(name, "pending", get=True)
        profile = await owner.flychat(name, "get_group_profile", get=True)
    except IqError as e:
        assert e.iq["error"]["condition"] == "item-not-found"
        return None
    config.pop("Last Change Made By", None)
    return (participants, config, dict(info), banned,
            [ET.tostring(p) for p in pending.xml.find(f"{{{ADMIN}}}pending")],
            profile.xml.find(".//{vcard-temp}image").text)


# Each operation: what it does, done by `actor` in channel `name`. The cast of each channel:
# alice owner, bob and frank admins, carol and grace members, dave outside, eve banned; the
# operations on an admin concern frank, those on a member grace.
OPERATIONS = {
    "rename": lambda c, n: info_form(c, n, Name=f"renamed by {c.user}"),
    "describe": lambda c, n: info_form(c, n, Description=f"described by {c.user}"),
    "change avatar": lambda c, n: c.request(c.channel(n), flychat_profile(f"avatar-of-{c.user}")),
    "add": lambda c, n: c.flychat(n, "add_participants", [jid("dave")]),
    "invite": lambda c, n: c.invite(n, jid("dave")),
    "remove member": lambda c, n: c.admin(n, "remove", jid=jid("grace")),
    "remove admin": lambda c, n: c.admin(n, "remove", jid=jid("frank")),
    "make admin": lambda c, n: c.admin(n, "role", jid=jid("grace"), role="admin"),
    "revoke admin": lambda c, n: c.admin(n, "role", jid=jid("frank"), role="member"),
    "transfer ownership": lambda c, n: c.admin(n, "transfer", jid=jid("grace")),
    "change policy": lambda c, n: c.admin(n, "settings", policy="invite"),
    "change member limit": lambda c, n: c.admin(n, "settings", **{"max-members": "50"}),
    "mute member": lambda c, n: c.admin(n, "mute", jid=jid("grace"), until="2099-01-01T00:00:00Z"),
    "mute group": lambda c, n: c.admin(n, "settings", muted="true"),
    "ban": lambda c, n: c.ban(n, jid("dave")),
    "delete": lambda c, n: c.destroy(n),
}

# The permission table of docs/protocol.md: who may, by role.
ADMINS_MAY = {"rename", "describe", "change avatar", "add", "invite", "remove member", "make admin",
              "mute member", "mute group", "ban"}
ROLES = {"owner": "alice", "admin": "bob", "member": "carol", "non-member": "dave", "banned": "eve"}


def allowed(operation, role):
    return role == "owner" or (role == "admin" and operation in ADMINS_MAY)


@pytest.fixture
def prosody_only(server):
    if server.name != "prosody":
        pytest.skip("the permission matrix runs against Prosody")


def test_permission_matrix(server, mixd, channel_name, prosody_only):
    async def scenario():
        async with connected(server, "alice", "bob", "carol", "dave", "eve", "frank", "grace") as clients:
            by_user = {c.user: c for c in clients}
            alice, bob, carol, frank, grace = (by_user[u] for u in ("alice", "bob", "carol", "frank", "grace"))
            outcomes = {}
            for number, (operation, act) in enumerate(OPERATIONS.items()):
                for role, user in ROLES.items():
                    name = f"{channel_name}-{number}-{role}"
                    await alice.create_live(name, bob, frank, carol, grace, nodes=NODES)
                    await alice.admin(name, "role", jid=bob.bare, role="admin")
                    await alice.admin(name, "role", jid=frank.bare, role="admin")
                    await alice.ban(name, jid("eve"))
                    before = await state(alice, name)
                    try:
                        await act(by_user[user], name)
                        outcome = "allowed"
                    except IqError as e:
                        outcome = e.iq["error"]["condition"]
                        assert e.iq["error"]["text"], f"{operation} by {role}: an error without a text"
                    after = await state(alice, name)
                    if outcome == "allowed":
                        assert after != before, f"{operation} by {role} was accepted but changed nothing"
                    else:
                        assert after == before, f"{operation} by {role} was refused but changed something"
                    outcomes[(operation, role)] = outcome
            expected = {(op, role): "allowed" if allowed(op, role) else "forbidden"
                        for op in OPERATIONS for role in ROLES}
            assert outcomes == expected

    run(scenario())


async def config_event(client, by, until=lambda values: True):
    """The next configuration-node event `by` made (that `until` accepts), as
    {var: [values]}."""
    while True:
        _, event = await client.next_event(CONFIG)
        values = form_values(event.xml)
        if values.get("Last Change Made By") == [by] and until(values):
            return values


def test_invitation_then_join(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob", "dave") as (alice, bob, dave):
            await alice.create_live(channel_name, bob, nodes=NODES)
            await alice.admin(channel_name, "settings", policy="invite")
            condition, text = await dave.iq_error(dave.plugin["xep_0369"].join_channel(dave.channel(channel_name), "dave", timeout=10))
            assert condition == "forbidden" and "invitation" in text
            condition, _ = await bob.iq_error(bob.invite(channel_name, dave.bare))
            assert condition == "forbidden"

            invitation = await alice.invite(channel_name, dave.bare)
            fields = {child.tag.split("}")[1]: child.text for child in invitation}
            assert fields["inviter"] == alice.bare and fields["invitee"] == dave.bare
            assert fields["channel"] == str(alice.channel(channel_name)) and fields["token"]
            # The invitee is told, and receives nothing else from the group until it joins.
            received = await dave.next_notice()
            assert received.tag == f"{{{MISC}}}invitation"
            assert {c.tag.split("}")[1]: c.text for c in received} == fields
            # The participants following the configuration node see the invitation noted.
            noted = await bob.next_live_notice("invited")
            assert (noted.get("by"), noted.get("jid"), noted.get("code")) == (alice.bare, dave.bare, "15")
            alice.post(channel_name, "before dave")
            await bob.next_message()
            await dave.nothing_more(dave.mix_messages, wait=0.3)

            await dave.join_live(channel_name, "dave")
            kind, event = await bob.next_event(PARTICIPANTS)
            while event["pubsub_event"]["items"]["item"]["mix_participant"]["jid"] != dave.bare:
                kind, event = await bob.next_event(PARTICIPANTS)
            assert kind == "pubsub_publish"
            assert (await alice.admin(channel_name, "pending", get=True)).xml.find(f"{{{ADMIN}}}pending").findall("*") == []
            alice.post(channel_name, "welcome dave")
            assert (await dave.next_message())["body"] == "welcome dave"

            # An invitation declined: the inviter learns it, nothing waits any more.
            carol_jid = jid("carol")
            await alice.invite(channel_name, carol_jid)
            async with connected(server, "carol") as (carol,):
                await carol.admin(channel_name, "decline")
                decision = await alice.next_notice()
                while decision.tag != f"{{{ADMIN}}}decision":
                    decision = await alice.next_notice()
                assert (decision.get("kind"), decision.get("jid"), decision.get("accepted"), decision.get("by")) == \
                    ("invitation", carol_jid, "false", carol_jid)
                condition, _ = await carol.iq_error(carol.plugin["xep_0369"].join_channel(carol.channel(channel_name), "carol", timeout=10))
                assert condition == "forbidden"

            # Open again: anyone joins.
            await alice.admin(channel_name, "settings", policy="open")
            async with connected(server, "carol") as (carol,):
                await carol.join_live(channel_name, "carol")

    run(scenario())


def test_join_requests_first_decision_stands(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob", "carol", "dave", "eve") as (alice, bob, carol, dave, eve):
            await alice.create_live(channel_name, bob, carol, nodes=NODES)
            await alice.admin(channel_name, "role", jid=bob.bare, role="admin")
            await alice.admin(channel_name, "settings", policy="request")
            condition, text = await dave.iq_error(dave.plugin["xep_0369"].join_channel(dave.channel(channel_name), "dave", timeout=10))
            assert condition == "forbidden" and "request" in text

            await dave.admin(channel_name, "request")
            # Every owner and admin is told; plain members are not.
            for decider in (alice, bob):
                request = await decider.next_notice()
                assert request.tag == f"{{{ADMIN}}}join-request"
                assert request.get("jid") == dave.bare and request.get("channel") == str(dave.channel(channel_name))
            await carol.nothing_more(carol.notices, wait=0.3)
            noted = await carol.next_live_notice("join-requested")
            assert (noted.get("by"), noted.get("jid")) == (dave.bare, dave.bare)

            # Two admins answer; the first answer stands, the second is refused.
            await bob.admin(channel_name, "decide", jid=dave.bare, approve="true")
            condition, text = await alice.iq_error(alice.admin(channel_name, "decide", jid=dave.bare, approve="false"))
            assert condition == "conflict" and "already approved" in text
            for told in (dave, alice, bob):
                decision = await told.next_notice()
                assert decision.tag == f"{{{ADMIN}}}decision"
                assert (decision.get("kind"), decision.get("jid"), decision.get("accepted"), decision.get("by")) == \
                    ("request", dave.bare, "true", bob.bare)
            participants = await alice.plugin["xep_0369"].list_participants(alice.channel(channel_name), timeout=10)
            assert dave.bare in {str(j) for _, _, j in participants}

            # Declined: the requester learns it, a later approval finds nothing to approve.
            await eve.admin(channel_name, "request")
            await alice.next_notice()
            await bob.next_notice()
            await alice.admin(channel_name, "decide", jid=eve.bare, approve="false")
            condition, _ = await bob.iq_error(bob.admin(channel_name, "decide", jid=eve.bare, approve="true"))
            assert condition == "item-not-found"
            decision = await eve.next_notice()
            assert (decision.get("accepted"), decision.get("by")) == ("false", alice.bare)
            condition, _ = await eve.iq_error(eve.plugin["xep_0369"].join_channel(eve.channel(channel_name), "eve", timeout=10))
            assert condition == "forbidden"

            # A FlyChat client asks, a MIX admin approves: it takes part in its own dialect.
            async with connected(server, "frank") as (frank,):
                copies = []
                frank.register_handler(Callback("flychat copies", MatchXPath("{jabber:client}message/{jabber:client}body"),
                                                copies.append))
                asked = await frank.flychat(channel_name, "join_group")
                assert asked.xml.find(f"{{{FLYCHAT}}}query").get("state") == "requested"
                await alice.next_notice()
                await bob.next_notice()
                await bob.admin(channel_name, "decide", jid=frank.bare, approve="true")
                alice.post(channel_name, "hello frank")
                await alice.next_message()
                for _ in range(50):
                    if any(m["body"] == "hello frank" for m in copies):
                        break
                    await asyncio.sleep(0.1)
                (copy,) = [m for m in copies if m["body"] == "hello frank"]
                assert copy["type"] == "normal" and copy.xml.find(".//{urn:xmpp:mix:core:1}submission-id") is not None

    run(scenario())


def test_roles_and_ownership_are_broadcast_on_the_config_node(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob", "carol", "dave") as (alice, bob, carol, dave):
            await alice.create_live(channel_name, bob, carol, dave, nodes=NODES)
            await alice.admin(channel_name, "role", jid=carol.bare, role="admin")
            seen = await dave.config(channel_name)
            assert seen["Owner"] == [alice.bare] and seen["Administrator"] == [carol.bare]
            event = await config_event(dave, alice.bare)
            assert event["Owner"] == [alice.bare] and event["Administrator"] == [carol.bare]
            assert event["FORM_TYPE"] == ["urn:xmpp:mix:admin:0"]
            assert event["mixd#join-policy"] == ["open"] and event["mixd#muted"] == ["false"]

            # Transfer: bob owns, alice stays on as an admin.
            await alice.admin(channel_name, "transfer", jid=bob.bare)
            event = await config_event(dave, alice.bare, lambda v: alice.bare in v["Administrator"])
            assert event["Owner"] == [bob.bare]
            assert sorted(event["Administrator"]) == sorted([alice.bare, carol.bare])

            # The owner leaves: the longest-standing admin (alice, before carol) owns it.
            await bob.plugin["xep_0369"].leave_channel(bob.channel(channel_name), timeout=10)
            event = await config_event(dave, bob.bare)
            assert event["Owner"] == [alice.bare] and event["Administrator"] == [carol.bare]

            # Revoked, then the owner leaves again: no admin is left, so the longest-standing
            # member owns it (carol, who joined before dave).
            await alice.admin(channel_name, "role", jid=carol.bare, role="member")
            event = await config_event(dave, alice.bare)
            assert event["Administrator"] == []
            await alice.plugin["xep_0369"].leave_channel(alice.channel(channel_name), timeout=10)
            event = await config_event(dave, alice.bare)
            assert event["Owner"] == [carol.bare]

            # The last ones leave: the group is gone.
            await dave.plugin["xep_0369"].leave_channel(dave.channel(channel_name), timeout=10)
            await carol.plugin["xep_0369"].leave_channel(carol.channel(channel_name), timeout=10)
            condition, _ = await dave.iq_error(dave.plugin["xep_0030"].get_info(dave.channel(channel_name), timeout=10))
            assert condition == "item-not-found"

    run(scenario())


def test_mutes_access_lists_and_limits(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob", "carol", "dave", "eve") as (alice, bob, carol, dave, eve):
            await alice.create_live(channel_name, bob, carol, nodes=NODES)
            until = "2099-01-01T00:00:00.000000Z"
            await alice.admin(channel_name, "mute", jid=bob.bare, until=until)
            event = await config_event(carol, alice.bare)
            assert event["mixd#muted-members"] == [f"{bob.bare} {until}"]
            bob.post(channel_name, "am I muted?")
            error = await bob.next_error()
            assert error["error"]["condition"] == "forbidden" and "2099-01-01" in error["error"]["text"]
            await alice.admin(channel_name, "mute", jid=bob.bare)
            bob.post(channel_name, "free again")
            assert (await carol.next_message())["body"] == "free again"

            # The whole group muted: only owners and admins post.
            await alice.admin(channel_name, "settings", muted="true")
            await config_event(carol, alice.bare, lambda v: v["mixd#muted"] == ["true"])
            carol.post(channel_name, "may I?")
            assert "muted" in (await carol.next_error())["error"]["text"]
            alice.post(channel_name, "announcement")
            assert (await carol.next_message())["body"] == "announcement"
            await alice.admin(channel_name, "settings", muted="false")

            # A domain on the allowed list keeps other domains out; banned wins over allowed;
            # banning a participant removes it. Admins see the list change on the node.
            await alice.ban(channel_name, USER_DOMAIN, node="urn:xmpp:mix:nodes:allowed")
            await alice.ban(channel_name, carol.bare)
            kind, event = await alice.next_event(BANNED)
            assert kind == "pubsub_publish" and event["pubsub_event"]["items"]["item"]["id"] == carol.bare
            kind, event = await bob.next_event(PARTICIPANTS)
            while kind != "pubsub_retract":
                kind, event = await bob.next_event(PARTICIPANTS)
            condition, text = await carol.iq_error(carol.plugin["xep_0369"].join_channel(carol.channel(channel_name), "carol", timeout=10))
            assert condition == "forbidden" and "banned" in text
            assert [i.get("id") for i in await alice.items(channel_name, BANNED)] == [carol.bare]
            condition, _ = await bob.iq_error(bob.items(channel_name, BANNED))
            assert condition == "forbidden"
            await alice.ban(channel_name, carol.bare, retract=True)
            await carol.join_live(channel_name, "carol")

            # The member limit: not below the participants, and full means resource-constraint.
            condition, _ = await alice.iq_error(alice.admin(channel_name, "settings", **{"max-members": "2"}))
            assert condition == "not-acceptable"
            await alice.admin(channel_name, "settings", **{"max-members": "3"})
            condition, text = await dave.iq_error(dave.plugin["xep_0369"].join_channel(dave.channel(channel_name), "dave", timeout=10))
            assert condition == "resource-constraint" and "limit of 3" in text
            condition, _ = await alice.iq_error(alice.flychat(channel_name, "add_participants", [dave.bare]))
            assert condition == "resource-constraint"
            assert len(await alice.plugin["xep_0369"].list_participants(alice.channel(channel_name), timeout=10)) == 3

    run(scenario())


def test_history_shows_who_did_what(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob", "carol") as (alice, bob, carol):
            await alice.create_live(channel_name, bob, nodes=NODES)
            await alice.admin(channel_name, "role", jid=bob.bare, role="admin")
            await alice.admin(channel_name, "settings", policy="invite")
            await bob.invite(channel_name, carol.bare)
            await carol.join_live(channel_name, "carol")
            await bob.admin(channel_name, "mute", jid=carol.bare, until="2099-01-01T00:00:00Z")
            alice.post(channel_name, "a message among the notices")
            await alice.next_message()
            await alice.admin(channel_name, "role", jid=bob.bare, role="member")
            await alice.admin(channel_name, "remove", jid=carol.bare)

            plain = await bob.mam(bob.channel(channel_name))
            assert [m["mam_result"]["forwarded"]["stanza"]["body"] for m in plain["mam"]["results"]] == \
                ["a message among the notices"]
            page = await bob.mam(bob.channel(channel_name), fields={NOTICES: "true"}, max=50)
            rows = []
            for result in page["mam"]["results"]:
                stanza = result["mam_result"]["forwarded"]["stanza"]
                notice = stanza.xml.find("{urn:mixd:notice:0}notice")
                if notice is None:
                    rows.append(("message", str(stanza["mix"]["jid"]), stanza["body"]))
                else:
                    rows.append((notice.get("kind"), notice.get("by"), notice.get("jid")))
            assert rows == [
                ("created", alice.bare, None),
                ("added", alice.bare, alice.bare),
                ("added", bob.bare, bob.bare),
                ("made-admin", alice.bare, bob.bare),
                ("settings-changed", alice.bare, None),
                ("invited", bob.bare, carol.bare),
                ("added", carol.bare, carol.bare),
                ("muted", bob.bare, carol.bare),
                ("message", alice.bare, "a message among the notices"),
                ("admin-revoked", alice.bare, bob.bare),
                ("left", alice.bare, carol.bare),
            ]

    run(scenario())


def submitted_form(parent, fields):
    form = ET.SubElement(parent, "{jabber:x:data}x", type="submit")
    for var, value in {"FORM_TYPE": "urn:xmpp:mix:core:1", **fields}.items():
        field = ET.SubElement(form, "{jabber:x:data}field", var=var)
        ET.SubElement(field, "{jabber:x:data}value").text = value


PICTURE = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def test_group_created_with_name_description_and_picture(server, mixd, channel_name):
    """The group's name, description and picture (its bytes as a data: URI, with their type)
    given with the create request; a new picture later, seen by a participant in the info
    event, in the info node and in the FlyChat profile."""
    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            create = ET.Element("{urn:xmpp:mix:core:1}create", channel=channel_name)
            submitted_form(create, {"Name": "Coven", "Description": "Three witches",
                                    "mixd#avatar": "https://pics.example/coven.png", "mixd#avatar-type": "image/png"})
            await alice.request(MIX_DOMAIN, create)
            for client in (alice, bob):
                await client.join_live(channel_name, client.user, NODES)
            (item,) = await bob.items(channel_name, "urn:xmpp:mix:nodes:info")
            fields = form_values(item)
            assert (fields["Name"], fields["Description"], fields["mixd#avatar"], fields["mixd#avatar-type"]) == \
                (["Coven"], ["Three witches"], ["https://pics.example/coven.png"], ["image/png"])

            await info_form(alice, channel_name, **{"mixd#avatar": PICTURE, "mixd#avatar-type": "image/png"})
            _, event = await bob.next_event("urn:xmpp:mix:nodes:info")
            fields = form_values(event.xml)
            assert (fields["Name"], fields["mixd#avatar"], fields["mixd#avatar-type"]) == (["Coven"], [PICTURE], ["image/png"])
            profile = await bob.flychat(channel_name, "get_group_profile", get=True)
            assert profile.xml.find(".//{vcard-temp}image").text == PICTURE
            assert profile.xml.find(".//{vcard-temp}nickName").text == "Coven"
            condition, _ = await alice.iq_error(info_form(alice, channel_name, **{"mixd#avatar-type": "png"}))
            assert condition == "bad-request"
            # A refused create leaves nothing behind.
            bad = ET.Element("{urn:xmpp:mix:core:1}create", channel=f"{channel_name}-bad")
            submitted_form(bad, {"Name": "x" * 300})
            condition, _ = await alice.iq_error(alice.request(MIX_DOMAIN, bad))
            assert condition == "not-acceptable"
            condition, _ = await alice.iq_error(alice.plugin["xep_0030"].get_info(alice.channel(f"{channel_name}-bad"), timeout=10))
            assert condition == "item-not-found"

    run(scenario())


def test_my_groups_in_both_dialects(server, mixd, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            await alice.create_live(f"{channel_name}-a", bob, nodes=NODES)
            await bob.create_live(f"{channel_name}-b", alice, nodes=NODES)
            await bob.admin(f"{channel_name}-b", "role", jid=alice.bare, role="admin")
            result = await alice.request(MIX_DOMAIN, ET.Element(f"{{{ADMIN}}}groups"), get=True)
            mine = {g.get("jid"): g.get("role") for g in result.xml.iter(f"{{{ADMIN}}}group")}
            assert mine[f"{channel_name}-a@{MIX_DOMAIN}"] == "owner"
            assert mine[f"{channel_name}-b@{MIX_DOMAIN}"] == "admin"
            query = ET.Element(f"{{{FLYCHAT}}}query", status="get_user_groups")
            result = await bob.request(MIX_DOMAIN, query, get=True)
            items = {i.get("groupjid"): (i.get("role"), i.get("affiliation")) for i in result.xml.iter(f"{{{FLYCHAT}}}item")}
            assert items[f"{channel_name}-a@{MIX_DOMAIN}"] == ("member", "n")
            assert items[f"{channel_name}-b@{MIX_DOMAIN}"] == ("owner", "o")

    run(scenario())


def test_group_limits_and_kept_archive(server, mixd, channel_name):
    """With --max-groups-per-creator 2 and --keep-archive true: a third group is refused, and
    a deleted group's messages stay in the database while its participants are told."""
    mixd.stop()
    mixd.extra = ["--max-groups-per-creator", "2", "--keep-archive", "true"]
    mixd.start()
    try:
        async def scenario():
            async with connected(server, "frank", "bob") as (frank, bob):
                await frank.create_live(f"{channel_name}-1", bob, nodes=NODES)
                await frank.create_live(f"{channel_name}-2", nodes=NODES)
                condition, text = await frank.iq_error(
                    frank.plugin["xep_0369"].create_channel(frank.channel("x"), f"{channel_name}-3", timeout=10))
                assert condition == "resource-constraint" and "2 groups" in text
                frank.post(f"{channel_name}-1", "kept for the operator")
                await bob.next_message()
                await frank.destroy(f"{channel_name}-1")
                kind, _ = await bob.next_event()
                while kind != "pubsub_delete":
                    kind, _ = await bob.next_event()
                # Deleting freed a place.
                await frank.plugin["xep_0369"].create_channel(frank.channel("x"), f"{channel_name}-3", timeout=10)
        run(scenario())
        kept = mixd.query("SELECT content FROM messages WHERE content LIKE '%kept for the operator%'")
        deleted = mixd.query("SELECT count(*) FROM messages WHERE notice = 18 AND sender = ?", f"frank@{USER_DOMAIN}")
        assert len(kept) == 1 and deleted == [(1,)]
    finally:
        mixd.stop()
        mixd.extra = []
        mixd.start()
