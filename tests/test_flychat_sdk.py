"""The real FlyChat SDK (npm mirrorfly-sdk 4.25.10, unmodified, in Node: tests/flychat/real/,
driven by harness/sdk.py) against mixd on Prosody and on ejabberd: every group call of the
SDK's documentation, as an app sees its results — the settled promises and the listener
payloads — with the bootstrap (src/bootstrap/) as its REST server. No call may hang and
nothing may throw inside the SDK."""

import asyncio
import base64
import os
import tempfile

import pytest

from conftest import run
from harness.sdk import SdkError, SdkUser, serve_bootstrap
from harness.sdk import sdk_users as harness_sdk_users
from harness.servers import MIX_DOMAIN, USER_DOMAIN, Mixd


@pytest.fixture(scope="module")
def stack(server):
    daemon = Mixd(server, tempfile.mkdtemp(prefix="mixd-db-"))
    api = serve_bootstrap(daemon, server)
    daemon.start()
    daemon.wait_for_log("bootstrap listening")
    yield server, daemon, api
    daemon.stop()


def sdk_users(stack, *names):
    server, _, api = stack
    return harness_sdk_users(server, api, *names)


def jid(name):
    return f"{name}@{USER_DOMAIN}"


def ok(result):
    assert result["statusCode"] == 200, result
    return result.get("data")


async def create(owner, name, members, history=None):
    args = [name, [jid(m) for m in members], ""] + ([] if history is None else [history])
    data = ok(await owner.call("createGroup", *args))
    assert data["groupJid"] == f"{data['groupId']}@{MIX_DOMAIN}"
    assert len(data["groupId"]) == 36  # the SDK's own UUID, kept as the group's id
    return data["groupJid"]


def test_a_wrong_password_is_refused_at_login(stack):
    async def scenario():
        server, _, api = stack
        user = await SdkUser("alice").start(api, server.ws_url, tempfile.mkdtemp())
        try:
            result = await user.login("not-the-password")
            assert result["statusCode"] != 200, result
            assert result["message"], result
        finally:
            await user.stop()
    run(scenario())


def test_groups_profiles_and_participants(stack):
    async def scenario():
        async with sdk_users(stack, "alice", "bob", "carol") as (alice, bob, carol):
            group = await create(alice, "Garden", ["bob"], history=1)
            listed = ok(await alice.call("getGroupsList"))
            mine = {g["groupJid"]: g for g in listed}
            assert mine[group]["groupName"] == "Garden"
            assert mine[group]["userType"] == "o"
            assert {g["groupJid"]: g for g in ok(await bob.call("getGroupsList"))}[group]["userType"] == "n"

            profile = ok(await bob.call("getGroupProfile", group))
            assert profile["groupName"] == "Garden" and profile["groupJid"] == group

            participants = ok(await alice.call("getGroupParticipants", group))["participants"]
            roles = {p["userJid"]: p["userType"] for p in participants}
            assert roles == {jid("alice"): "o", jid("bob"): "n"}

            mark = bob.mark()
            ok(await alice.call("setGroupProfile", group, "Orchard", "https://img.test/o.png"))
            event = await bob.event("groupProfileListener", lambda d: d.get("msgType") == "profileUpdated", since=mark)
            assert event["groupProfile"]["nickName"] == "Orchard" and event["timestamp"] > 0
            message = await bob.event("messageListener", lambda d: d.get("profileUpdatedStatus") == "profileUpdated", since=mark)
            assert message["msgId"] and message["timestamp"] > 0
            profile = ok(await bob.call("getGroupProfile", group))
            assert profile["groupName"] == "Orchard" and profile["groupImage"] == "https://img.test/o.png"

            mark = bob.mark()
            ok(await alice.call("addParticipants", group, "Orchard", [jid("carol")]))
            added = await bob.event("groupProfileListener", lambda d: d.get("msgType") == "userAdded", since=mark)
            assert added["newUserJid"] == jid("carol")
            await carol.event("groupProfileListener", lambda d: d.get("msgType") == "userAdded")

            mark = carol.mark()
            ok(await alice.call("makeAsAdmin", group, jid("bob")))
            made = await carol.event("groupProfileListener", lambda d: d.get("msgType") == "madeAdmin", since=mark)
            assert made.get("newAdminJid", made.get("userJid", jid("bob"))) == jid("bob")
            roles = {p["userJid"]: p["userType"] for p in ok(await carol.call("getGroupParticipants", group))["participants"]}
            assert roles[jid("bob")] == "o" and roles[jid("carol")] == "n"

            mark = bob.mark()
            ok(await alice.call("removeParticipant", group, jid("carol")))
            removed = await bob.event("groupProfileListener", lambda d: d.get("msgType") == "userRemoved", since=mark)
            assert removed["removedUserJid" if "removedUserJid" in removed else "userJid"] == jid("carol")

            mark = alice.mark()
            ok(await bob.call("userExitGroup", group, jid("bob")))
            await alice.event("groupProfileListener", lambda d: d.get("msgType") == "userLeft", since=mark)
            roles = {p["userJid"] for p in ok(await alice.call("getGroupParticipants", group))["participants"]}
            assert roles == {jid("alice")}

            ok(await alice.call("userDeleteGroup", group))
            assert group not in {g["groupJid"] for g in ok(await alice.call("getGroupsList"))}
    run(scenario())


def test_the_owner_deletes_a_group_with_members_in_it(stack):
    """The SDK's userDeleteGroup is an exit, then a delete: the exit passes the ownership on
    (an event the SDK has no shape for), the delete still succeeds, and nobody's SDK throws
    (sdk_users checks)."""
    async def scenario():
        async with sdk_users(stack, "alice", "bob", "carol") as (alice, bob, carol):
            group = await create(alice, "Short-lived", ["bob", "carol"], history=1)
            ok(await alice.call("makeAsAdmin", group, jid("bob")))
            await carol.event("groupProfileListener", lambda d: d.get("msgType") == "madeAdmin")
            mark_bob, mark_carol = bob.mark(), carol.mark()
            ok(await alice.call("userDeleteGroup", group))
            for member, mark in ((bob, mark_bob), (carol, mark_carol)):
                await member.event("groupProfileListener", lambda d: d.get("msgType") == "deleteChat", since=mark)
                assert group not in {g["groupJid"] for g in ok(await member.call("getGroupsList"))}
    run(scenario())


def test_sdk_and_mix_members_share_a_group(stack, channel_name):
    """A group mixing dialects: an SDK user and a MIX client (slixmpp) see each other's
    messages and changes."""
    from conftest import connected

    async def scenario():
        server = stack[0]
        async with sdk_users(stack, "alice") as (alice,):
            async with connected(server, "bob") as (bob,):
                group = await create(alice, "Mixed", ["carol"], history=1)
                name = group.split("@")[0]
                mark = alice.mark()
                await bob.join_live(name, "bob")
                joined = await alice.event(
                    "groupProfileListener",
                    lambda d: d.get("msgType") == "userAdded" and d.get("newUserJid") == jid("bob"), since=mark)
                assert joined["groupJid"] == group

                sent = ok(await alice.call("sendTextMessage", group, "from the SDK"))
                reflected = await bob.next_message()
                assert reflected["mix"]["jid"] == jid("alice") and reflected["body"]

                mark = alice.mark()
                bob.post(name, "from MIX", origin_id="mix-1")
                heard = await alice.event("messageListener", lambda d: d.get("publisherJid") == jid("bob"), since=mark)
                assert heard["msgBody"] == "from MIX" and heard["timestamp"] > 0
                assert sent["msgId"] != heard["msgId"]
    run(scenario())


def test_messages_receipts_typing_and_recall(stack):
    async def scenario():
        async with sdk_users(stack, "alice", "bob") as (alice, bob):
            group = await create(alice, "Talk", ["bob"])
            sent = ok(await alice.call("sendTextMessage", group, "hello bob"))
            msg_id = sent["msgId"]
            received = await bob.event("messageListener", lambda d: d.get("msgId") == msg_id)
            assert received["msgBody"]["message"] == "hello bob"
            assert received["publisherJid"] == jid("alice") and received["fromUserJid"] == group
            assert received["timestamp"] > 0

            reply = ok(await bob.call("sendTextMessage", group, "hello alice"))
            back = await alice.event("messageListener", lambda d: d.get("msgId") == reply["msgId"])
            assert back["msgBody"]["message"] == "hello alice" and back["publisherJid"] == jid("bob")

            # bob's SDK acknowledges what it shows; alice learns it and can ask.
            await alice.event("messageListener", lambda d: d.get("msgType") == "delivered" and d.get("msgId") == msg_id)
            info = ok(await alice.call("getGroupMsgInfo", group, msg_id))
            members = {p["userId"]: p for p in info["participants"]}
            assert jid("bob") in members or "bob" in members, info
            bob_state = members.get(jid("bob"), members.get("bob"))
            assert bob_state["msgStatus"] in (1, 2) and bob_state["deliveredTime"]

            mark = bob.mark()
            ok(await alice.call("sendTypingStatus", group))
            typing = await bob.event("messageListener", lambda d: d.get("msgType") == "composing", since=mark)
            # Who types and in which group (the server module names the typist).
            assert typing["groupId"] == group.split("@")[0] and typing["fromUserId"] == "alice"
            ok(await alice.call("sendTypingGoneStatus", group))
            gone = await bob.event("messageListener", lambda d: d.get("msgType") == "gone", since=mark)
            assert gone["fromUserId"] == "alice" and gone["groupId"] == group.split("@")[0]

            mark = bob.mark()
            ok(await alice.call("deleteMessagesForEveryone", group, [msg_id]))
            recalled = await bob.event("messageListener", lambda d: d.get("msgType") == "recallMessage", since=mark)
            assert recalled["msgId"] == msg_id
    run(scenario())


def test_history_pages_up_and_down_to_the_first_message(stack):
    async def scenario():
        async with sdk_users(stack, "alice", "bob") as (alice, bob):
            group = await create(alice, "Archive", ["bob"])
            ids = []
            for n in range(7):
                sent = ok(await alice.call("sendTextMessage", group, f"line {n}"))
                ids.append(sent["msgId"])
            await bob.event("messageListener", lambda d: d.get("msgId") == ids[-1])

            seen, row = [], None
            for _ in range(10):
                args = [group, "up", row, 3] if row else [group, "up", "", 3]
                page = await bob.call("getChatMessages", *args)
                rows = page["data"]
                if not rows:
                    break
                seen.extend(r for r in rows if r["msgType"] == "text")
                row = rows[-1]["rowId"]
            texts = [r["msgBody"]["message"] for r in seen]
            assert sorted(texts) == sorted(f"line {n}" for n in range(7)), texts
            assert all(r["publisherId"] == "alice" and r["timestamp"] > 0 for r in seen)

            first = await bob.call("getChatMessages", group, "down", "", 50)
            texts = [r["msgBody"]["message"] for r in first["data"] if r["msgType"] == "text"]
            assert texts == [f"line {n}" for n in range(7)]
            own = await alice.call("getChatMessages", group, "down", "", 50)
            assert [r["msgId"] for r in own["data"] if r["msgType"] == "text"] == ids
    run(scenario())


def test_media_history_pages(stack):
    async def scenario():
        async with sdk_users(stack, "alice", "bob") as (alice, bob):
            group = await create(alice, "Pictures", ["bob"])
            ids = []
            for n in range(5):
                options = {"fileURL": f"token-{n}", "fileName": f"p{n}.png", "fileSize": 10, "caption": f"pic {n}"}
                sent = ok(await alice.call("sendMediaMessageData", group, "image", options))
                ids.append(sent["msgId"])
            await bob.event("messageListener", lambda d: d.get("msgId") == ids[-1])
            first = ok(await bob.call("getMediaMessages", group))
            assert [m["msgId"] for m in first] == ids[::-1][:3]
            rest = ok(await bob.call("getMediaMessages", group, first[-1]["msgId"]))
            assert [m["msgId"] for m in rest] == ids[::-1][3:]
    run(scenario())


def test_creation_is_visible_with_history_off(stack):
    async def scenario():
        async with sdk_users(stack, "alice", "bob", "carol", "dave") as (alice, bob, carol, dave):
            group = await create(alice, "Quiet", ["bob"])  # the SDK's default: history 0
            said = ok(await alice.call("sendTextMessage", group, "before carol"))
            await bob.event("messageListener", lambda d: d.get("msgId") == said["msgId"])
            ok(await alice.call("addParticipants", group, "Quiet", [jid("carol")]))
            await carol.event("groupProfileListener", lambda d: d.get("msgType") == "userAdded")
            later = ok(await alice.call("sendTextMessage", group, "after carol"))
            await carol.event("messageListener", lambda d: d.get("msgId") == later["msgId"])
            # Added later to a group without shared history: only what followed.
            carols = [r["msgId"] for r in (await carol.call("getChatMessages", group, "down", "", 20))["data"]
                      if r["msgType"] == "text"]
            assert carols == [later["msgId"]]
            # History is for members.
            strangers = await dave.call("getChatMessages", group, "down", "", 20)
            assert not strangers.get("data"), strangers
            rows = (await bob.call("getChatMessages", group, "down", "", 20))["data"]
            assert any(r.get("profileUpdatedStatus") == "groupCreated" for r in rows), [(r.get("status"), r.get("profileUpdatedStatus"), r.get("userId"), r.get("publisherId")) for r in rows]
    run(scenario())


def test_an_sdk_encrypted_file_downloads_for_members_only(stack):
    """The SDK's default: it encrypts an attachment itself (a key in the message's encrypted
    body) and uploads it in 5 MiB parts; another member's downloadMedia() looks the message up
    (the reply_message query, through the user's server), reads the parts by range and
    decrypts them. The bytes must come back as sent; a non-member's look-up finds nothing.
    The size is a multiple of 16: mirrorfly-sdk 4.25.10 pads a last part of any other size
    (PKCS#7) when it encrypts, but never unpads when it decrypts, so it gives the app the file
    with up to 16 bytes of padding after it, whatever the server."""
    async def scenario():
        async with sdk_users(stack, "alice", "bob", "carol") as (alice, bob, carol):
            group = await create(alice, "Files", ["bob"])
            content = os.urandom(5 * 1024 * 1024 + 4320)
            sent = await alice.call("sendMediaFile", group, base64.b64encode(content).decode(),
                                    "notes.zip", "application/zip", timeout=120)
            msg_id = sent["msgId"]
            received = await bob.event("messageListener", lambda d: d.get("msgId") == msg_id)
            media = received["msgBody"]["media"]
            assert media["file_key"] and media["isLargeFile"], media  # encrypted, in parts
            got = await bob.call("downloadMedia", msg_id, timeout=120)
            assert got["size"] == len(content) and base64.b64decode(got["base64"]) == content
            with pytest.raises(SdkError, match="Invalid msgId"):
                await carol.call("downloadMedia", msg_id)
    run(scenario())


def test_an_sdk_edit_is_kept_as_an_edit(stack):
    """editTextMessage() sends the message again under its id with a new edit_msg_id: the
    other SDK member gets it as an edit of that message (editMessageListener), a MIX member as
    an XEP-0308 correction of it, and history holds the message once, with the new text."""
    from conftest import connected

    async def scenario():
        server = stack[0]
        async with sdk_users(stack, "alice", "bob") as (alice, bob):
            async with connected(server, "carol") as (carol,):
                group = await create(alice, "Edits", ["bob"], history=1)
                await carol.join_live(group.split("@")[0], "carol")
                msg_id = ok(await alice.call("sendTextMessage", group, "helo wrld"))["msgId"]
                await bob.event("messageListener", lambda d: d.get("msgId") == msg_id)
                original = await carol.next_message()
                assert original["mix"]["jid"] == jid("alice")

                mark = bob.mark()
                edited = await alice.call("editTextMessage", {"messageId": msg_id, "editedTextContent": "hello world"})
                assert edited["statusCode"] == 200, edited
                edit = await bob.event("editMessageListener", lambda d: d.get("msgId") == msg_id, since=mark)
                assert edit["msgBody"]["message"] == "hello world" and edit["editedStatus"] == 1
                assert edit["publisherJid"] == jid("alice") and edit["editMessageId"] not in ("", msg_id)
                correction = await carol.next("message_correction")
                assert correction["replace"]["id"] == original["id"] and correction["mix"]["jid"] == jid("alice")

                for reader in (alice, bob):
                    rows = (await reader.call("getChatMessages", group, "down", "", 20))["data"]
                    texts = [(r["msgId"], r["msgBody"]["message"], r["editedStatus"]) for r in rows if r["msgType"] == "text"]
                    assert texts == [(msg_id, "hello world", 1)], texts

                # Only its sender edits a message: bob's SDK refuses before sending anything.
                theirs = await bob.call("editTextMessage", {"messageId": msg_id, "editedTextContent": "mine now"})
                assert theirs["statusCode"] != 200, theirs
    run(scenario())


def test_a_reply_shows_the_message_it_quotes(stack):
    """A reply carries the quoted message's id (replyTo, inside its encrypted body); the app
    asks getReplyMessage() for that message, which only a member of its group gets, and only
    if it may read it (not one added later to a group without shared history)."""
    async def scenario():
        async with sdk_users(stack, "alice", "bob", "carol") as (alice, bob, carol):
            group = await create(alice, "Replies", ["bob"])
            asked = ok(await alice.call("sendTextMessage", group, "lunch at noon?"))["msgId"]
            await bob.event("messageListener", lambda d: d.get("msgId") == asked)
            reply = ok(await bob.call("sendTextMessage", {"toJid": group, "messageText": "yes", "replyMessageId": asked}))
            heard = await alice.event("messageListener", lambda d: d.get("msgId") == reply["msgId"])
            assert heard["msgBody"]["replyTo"] == asked

            quoted = ok(await alice.call("getReplyMessage", heard["msgBody"]["replyTo"], "groupchat"))
            assert quoted["replyMsgContent"]["message"] == "lunch at noon?", quoted
            assert quoted["fromUserId"] == "alice" and quoted["groupId"] == group.split("@")[0]
            assert quoted["replyMsgId"] == asked and quoted["chatType"] == "groupchat"
            assert quoted["deleteStatus"] == 0
            heard = await alice.event("replyMessageListener", lambda d: d.get("replyMsgId") == asked)
            assert heard["replyMsgContent"]["message"] == "lunch at noon?"

            strangers = await carol.call("getReplyMessage", asked, "groupchat")
            assert strangers["statusCode"] != 200 and not strangers.get("data"), strangers
            # Added after it was said, to a group created without shared history (the SDK's
            # default): carol sees what follows, not the quoted message.
            ok(await alice.call("addParticipants", group, "Replies", [jid("carol")]))
            await carol.event("groupProfileListener", lambda d: d.get("msgType") == "userAdded")
            later = ok(await alice.call("sendTextMessage", group, "see you there"))["msgId"]
            await carol.event("messageListener", lambda d: d.get("msgId") == later)
            assert ok(await carol.call("getReplyMessage", later, "groupchat"))["replyMsgContent"]["message"] == "see you there"
            newcomer = await carol.call("getReplyMessage", asked, "groupchat")
            assert newcomer["statusCode"] != 200 and not newcomer.get("data"), newcomer
    run(scenario())
