"""`mixd admin` on a live mixd (docs/operations.md, "Administration"): listing, searching and
showing channels slixmpp clients made; removing a participant and deleting a channel through
the control socket, which the channel's participants are told of as of any removal; the
archive exported as JSON lines; a backup taken while a client posts, restored and checked;
`check` finding planted inconsistencies; and SIGHUP applying a limit live while saying what
it did not apply. On PostgreSQL (MIXD_STORE=postgres) all of it runs alike but the backup and
restore, which copy SQLite files and are refused naming the PostgreSQL tool that does the
job."""

import asyncio
import json
import os
import socket
import sqlite3
import stat
import subprocess
import tempfile

import pytest
from slixmpp.plugins.xep_0369.stanza import Subscribe

from conftest import connected, run
from harness.servers import MIX_DOMAIN, STORE, USER_DOMAIN, Mixd

PARTICIPANTS = "urn:xmpp:mix:nodes:participants"
MESSAGES = "urn:xmpp:mix:nodes:messages"
NODES = {MESSAGES, PARTICIPANTS, "urn:xmpp:mix:nodes:info"}


# `mixd admin`'s backup and restore copy SQLite files (its reads and check work on both stores).
sqlite_only = pytest.mark.skipif(STORE != "sqlite", reason="copies SQLite files; PostgreSQL's refusal is tested instead")


def jid(user):
    return f"{user}@{USER_DOMAIN}"


@pytest.fixture(scope="module")
def live(server):
    """A mixd of this module's own, started with a configuration file that SIGHUP re-reads."""
    workdir = tempfile.mkdtemp(prefix="mixd-admin-")
    daemon = Mixd(server, workdir)
    daemon.config = os.path.join(workdir, "mixd.toml")
    with open(daemon.config, "w") as f:
        f.write("max_message_bytes = 65536\n")
    daemon.extra = ["--config", daemon.config]
    daemon.start()
    yield daemon
    daemon.stop()


def admin(daemon, *args, database=None):
    """`mixd admin` on the daemon's database and control socket, or on another `database`
    (its control socket found beside it)."""
    place = ["--database", str(database)] if database else [
        "--database", str(daemon.database), "--control-socket", str(daemon.control_socket)]
    return subprocess.run(
        [daemon.binary, "admin", *place, *args],
        capture_output=True, text=True, timeout=120)


async def admin_async(daemon, *args, database=None):
    return await asyncio.to_thread(admin, daemon, *args, database=database)


async def channel_of(owner, name, *members):
    """Channel `name` created by `owner`, who joins it first, then `members`, all live."""
    await owner.plugin["xep_0369"].create_channel(owner.channel("x"), name, timeout=10)
    ids = {}
    for client in (owner, *members):
        iq = client.make_iq_set(ito=client.channel(name))
        iq["mix_join"]["nick"] = client.user
        for node in NODES:
            subscribe = Subscribe()
            subscribe["node"] = node
            iq["mix_join"].append(subscribe)
        result = await iq.send(timeout=10)
        ids[client.user] = result.xml.find("{urn:xmpp:mix:core:1}join").get("id")
        await client.online_in(name)
    return ids


async def post_and_see(client, name, body):
    """Posts `body` and waits for its reflection: the service has stored it."""
    client.post(name, body)
    while True:
        reflected = await client.next_message()
        if reflected["body"] == body:
            return reflected


def test_list_search_and_show_reflect_what_clients_made(server, live, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            await channel_of(alice, channel_name, bob)
            await post_and_see(alice, channel_name, "one")
            listed = await admin_async(live, "list")
            assert listed.returncode == 0, listed.stderr
            rows = [line.split("\t") for line in listed.stdout.splitlines()]
            assert rows[0][:3] == ["channel", "participants", "messages"]
            row = next(r for r in rows if r[0] == channel_name)
            assert row[1:4] == ["2", "1", jid("alice")]

            found = await admin_async(live, "search", channel_name[3:12].upper())
            assert channel_name in [line.split("\t")[0] for line in found.stdout.splitlines()]
            missing = await admin_async(live, "search", "no-such-channel-anywhere")
            assert missing.stdout.splitlines()[1:] == []

            shown = await admin_async(live, "show", f"{channel_name}@{MIX_DOMAIN}")
            assert shown.returncode == 0, shown.stderr
            lines = shown.stdout.splitlines()
            assert f"channel: {channel_name}" in lines
            assert f"owners: {jid('alice')}" in lines
            assert "participants: 2" in lines and "messages: 1" in lines
            assert "join policy: open" in lines
            members = sorted(line for line in lines if line.startswith("participant: "))
            assert members[0].startswith(f"participant: {jid('alice')}\tnick=alice\trole=owner\tdialect=mix")
            assert members[1].startswith(f"participant: {jid('bob')}\tnick=bob\trole=member\tdialect=mix")

            nothing = await admin_async(live, "show", "no-such-channel")
            assert nothing.returncode == 2 and "no channel 'no-such-channel'" in nothing.stderr
    run(scenario())


def test_removal_through_the_control_socket_is_told_to_the_participants(server, live, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob", "carol") as (alice, bob, carol):
            ids = await channel_of(alice, channel_name, bob, carol)
            removed = await admin_async(live, "remove-participant", channel_name, jid("bob"))
            assert removed.returncode == 0, removed.stderr
            assert f"removed {jid('bob')}" in removed.stdout
            for client in (alice, carol):
                kind, event = await client.next_event(PARTICIPANTS)
                while kind != "pubsub_retract":  # the joins after each one's own
                    kind, event = await client.next_event(PARTICIPANTS)
                assert event["pubsub_event"]["items"]["retract"]["id"] == ids["bob"]
            bob.post(channel_name, "am I still in?")
            assert (await bob.next_error())["error"]["condition"] == "forbidden"
            participants = await alice.plugin["xep_0369"].list_participants(alice.channel(channel_name), timeout=10)
            assert sorted(str(j) for _, _, j in participants) == [jid("alice"), jid("carol")]

            # The archive says the service did it.
            exported = await admin_async(live, "export", "--notices", channel_name)
            notices = [json.loads(line) for line in exported.stdout.splitlines()]
            assert {"notice": "left", "from": MIX_DOMAIN, "target": jid("bob")}.items() <= notices[-1].items()

            # What cannot be done is refused with the rules' text; nothing is told.
            again = await admin_async(live, "remove-participant", channel_name, jid("bob"))
            assert again.returncode == 2 and "is not a participant" in again.stderr
            bad = await admin_async(live, "remove-participant", channel_name, "not a jid@")
            assert bad.returncode == 2 and "is not a JID" in bad.stderr
            await post_and_see(alice, channel_name, "after the refusals")
            assert carol.events.empty(), "a refused removal told nobody"
    run(scenario())


def test_destroy_through_the_control_socket(server, live, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            await channel_of(alice, channel_name, bob)
            destroyed = await admin_async(live, "destroy", channel_name)
            assert destroyed.returncode == 0, destroyed.stderr
            for client in (alice, bob):
                kind, event = await client.next_event()
                while kind != "pubsub_delete":
                    kind, event = await client.next_event()
                assert event.xml.find("{urn:xmpp:mix:core:1}destroy").get("channel") == channel_name
            listed = await admin_async(live, "list")
            assert listed.returncode == 0, listed.stderr
            assert channel_name not in [line.split("\t")[0] for line in listed.stdout.splitlines()]
            condition, _ = await bob.iq_error(
                bob.plugin["xep_0369"].join_channel(bob.channel(channel_name), "b", timeout=10))
            assert condition == "item-not-found"
    run(scenario())


def test_the_control_socket_is_private_and_answers_nonsense_with_an_error(live):
    socket_path = str(live.control_socket)
    assert stat.S_IMODE(os.stat(socket_path).st_mode) == 0o600
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(socket_path)
        reader = s.makefile("r")
        for nonsense in (b"drop everything\n", b'{"op":"format_disk"}\n', b'{"op":"destroy_channel"}\n'):
            s.sendall(nonsense)
            answer = json.loads(reader.readline())
            assert answer["ok"] is False and answer["text"], answer
        # The connection survives and still serves a request.
        s.sendall(b'{"op":"destroy_channel","channel":"never-made"}\n')
        answer = json.loads(reader.readline())
        assert answer == {"ok": False, "text": "no channel 'never-made'"}


def test_export_holds_exactly_the_posted_messages_with_the_ids_clients_saw(server, live, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            await channel_of(alice, channel_name, bob)
            sent = []
            for body in ("first", "second <with> & markup", "third"):
                reflected = await post_and_see(alice, channel_name, body)
                sent.append((reflected.xml.find("{urn:xmpp:sid:0}stanza-id").get("id"), body))
            exported = await admin_async(live, "export", channel_name)
            assert exported.returncode == 0, exported.stderr
            lines = [json.loads(line) for line in exported.stdout.splitlines()]
            assert [(m["id"], m["from"], m["nick"]) for m in lines] == [(i, jid("alice"), "alice") for i, _ in sent]
            for (_, body), line in zip(sent, lines):
                escaped = body.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                assert f"<body>{escaped}</body>" in line["content"], line
                assert "notice" not in line
    run(scenario())


@sqlite_only
def test_a_backup_under_load_restores_and_holds_every_acknowledged_message(server, live, channel_name):
    workdir = tempfile.mkdtemp(prefix="mixd-backup-")
    backup = os.path.join(workdir, "backup.db")
    restored = os.path.join(workdir, "restored.db")

    async def scenario():
        async with connected(server, "alice") as (alice,):
            await channel_of(alice, channel_name)
            acknowledged = []
            stop = asyncio.Event()

            async def keep_posting():
                n = 0
                while not stop.is_set():
                    body = f"load {n}"
                    await post_and_see(alice, channel_name, body)
                    acknowledged.append(body)
                    n += 1

            poster = asyncio.create_task(keep_posting())
            while len(acknowledged) < 20:
                await asyncio.sleep(0.01)
            before = list(acknowledged)
            result = await admin_async(live, "backup", backup)
            assert result.returncode == 0, result.stderr
            during = len(acknowledged)
            # Go on a little, so the copy is known to have been made under load.
            while len(acknowledged) < during + 5:
                await asyncio.sleep(0.01)
            stop.set()
            await poster
            assert len(acknowledged) > len(before)
            return before

    before = run(scenario())
    again = admin(live, "backup", backup)
    assert again.returncode == 2 and "does not overwrite" in again.stderr
    # Restoring over the running mixd's database is refused.
    refused = admin(live, "restore", backup)
    assert refused.returncode == 2 and "stop it before restoring" in refused.stderr
    result = admin(live, "restore", backup, database=restored)
    assert result.returncode == 0, result.stderr
    checked = admin(live, "check", database=restored)
    assert checked.returncode == 0, checked.stdout
    assert "no findings" in checked.stdout
    exported = admin(live, "export", channel_name, database=restored)
    bodies = [json.loads(line)["content"] for line in exported.stdout.splitlines()]
    held = {b.removeprefix("<body>").removesuffix("</body>") for b in bodies}
    assert set(before) <= held, sorted(set(before) - held)

    # A planted inconsistency: a participant of a channel that does not exist.
    db = sqlite3.connect(restored)
    db.execute("INSERT INTO participants (channel, jid, id, nick, nodes, role, joined_at) "
               "VALUES (987654, 'ghost@localhost', 'g', 'ghost', 1, 0, 0)")
    db.commit()
    db.close()
    planted = admin(live, "check", database=restored)
    assert planted.returncode == 1, planted.stdout
    assert "participant ghost@localhost of channel key 987654, which does not exist" in planted.stdout


def test_check_finds_nothing_in_a_live_database_and_names_what_was_planted(server, live, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            await channel_of(alice, channel_name, bob)
            await post_and_see(alice, channel_name, "counted")
    run(scenario())
    clean = admin(live, "check")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.strip().endswith(": no findings"), clean.stdout
    # Behind mixd's back: a receipt of a message that was never archived, a count that is off.
    live.execute("INSERT INTO receipts (message, member, delivered_at) VALUES (987654321, 'ghost@localhost', 1)")
    live.execute("UPDATE channels SET message_count = message_count + 5 WHERE name = ?", channel_name)
    try:
        planted = admin(live, "check")
    finally:
        live.execute("DELETE FROM receipts WHERE message = 987654321")
        live.execute("UPDATE channels SET message_count = message_count - 5 WHERE name = ?", channel_name)
    assert planted.returncode == 1, planted.stdout + planted.stderr
    assert sorted(planted.stdout.splitlines()) == sorted([
        "1 receipts of message 987654321, which is not in the archive",
        f"channel {channel_name} counts 6 messages but its archive holds 1",
    ]), planted.stdout


@pytest.mark.skipif(STORE != "postgres", reason="PostgreSQL's refusal; SQLite's backup is tested above")
def test_on_postgresql_backup_and_restore_name_the_postgresql_tool(live):
    backup = tempfile.mktemp(prefix="mixd-backup-", suffix=".dump")
    for args, tool in ((["backup", backup], "pg_dump"), (["restore", backup], "pg_restore")):
        refused = admin(live, *args)
        assert refused.returncode == 2, (args, refused)
        assert f"`mixd admin {args[0]}` works on SQLite files only" in refused.stderr and tool in refused.stderr, refused
    assert not os.path.exists(backup)


def test_reads_of_a_database_that_is_not_there_are_refused_with_a_sentence(live):
    if STORE == "postgres":
        missing = live.database.rsplit("/", 1)[0] + "/no_such_database"
        reason = 'database "no_such_database" does not exist'
    else:
        missing = tempfile.mktemp(prefix="mixd-missing-", suffix=".db")
        reason = f"no database at {missing}"
    for args in (["list"], ["show", "coven"], ["export", "coven"], ["check"]):
        refused = admin(live, *args, database=missing)
        assert refused.returncode == 2, (args, refused)
        assert refused.stderr.startswith("mixd admin: ") and reason in refused.stderr, refused.stderr
    assert not os.path.exists(missing)


def test_sighup_applies_the_history_quota_live(server, live, channel_name):
    async def scenario():
        async with connected(server, "carol", "dave") as (carol, dave):
            await channel_of(carol, channel_name, dave)
            await post_and_see(carol, channel_name, "on the record")
            offset = len(live.log())
            with open(live.config, "w") as f:
                f.write("max_message_bytes = 65536\nhistory_burst = 2\nhistory_per_minute = 1\n")
            try:
                live.process.send_signal(1)  # SIGHUP
                await asyncio.to_thread(live.wait_for_log, "reload: applied", offset)
                applied = [line for line in live.log()[offset:].splitlines() if "reload: applied" in line]
                assert len(applied) == 2, applied
                assert any("history_burst" in line for line in applied), applied
                assert any("history_per_minute" in line for line in applied), applied
                # Two reads at once, then one a minute: dave's third is refused, carol's passes.
                answers = await dave.mam_at_once(dave.channel(channel_name), 3)
                assert answers[:2] == [("result", ["on the record"])] * 2, answers
                condition, text, kind = answers[2][1:]
                assert (answers[2][0], condition, kind) == ("error", "policy-violation", "modify"), answers
                assert text.startswith(
                    "you are reading history too fast: at most 2 reads at once, then 1 a minute; try again in "), text
                assert await carol.mam_at_once(carol.channel(channel_name), 1) == [("result", ["on the record"])]
            finally:
                # And back: the file as it was, the quota as it was.
                offset = len(live.log())
                with open(live.config, "w") as f:
                    f.write("max_message_bytes = 65536\n")
                live.process.send_signal(1)
                await asyncio.to_thread(live.wait_for_log, "reload: applied", offset)
    run(scenario())


def test_sighup_applies_a_limit_live_and_says_what_waits_for_a_restart(server, live, channel_name):
    big = "x" * 3000

    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            await channel_of(alice, channel_name, bob)
            await post_and_see(alice, channel_name, big)
            offset = len(live.log())
            with open(live.config, "w") as f:
                f.write("max_message_bytes = 2048\nkeepalive = 7\n")
            live.process.send_signal(1)  # SIGHUP
            await asyncio.to_thread(live.wait_for_log, "reload: changed but not applied", offset)
            lines = live.log()[offset:].splitlines()
            applied = [line for line in lines if "reload: applied" in line]
            assert len(applied) == 1 and "max_message_bytes" in applied[0] and "2048" in applied[0], lines
            waiting = [line for line in lines if "reload: changed but not applied" in line]
            assert len(waiting) == 1 and "keepalive" in waiting[0] and "restart" in waiting[0], lines

            alice.post(channel_name, big)
            error = await alice.next_error()
            assert error["error"]["condition"] == "not-acceptable"
            await post_and_see(alice, channel_name, "small enough")

            # And back: the file as it was, the limit as it was.
            offset = len(live.log())
            with open(live.config, "w") as f:
                f.write("max_message_bytes = 65536\n")
            live.process.send_signal(1)
            await asyncio.to_thread(live.wait_for_log, "reload: applied", offset)
            await post_and_see(alice, channel_name, big)
    run(scenario())
