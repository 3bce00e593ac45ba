"""What mixd does when things break: a crash while messages flow loses nothing anyone was
told about; a server restart is survived by reconnecting; configuration mistakes end mixd
with an explanation instead of retrying forever."""

import asyncio
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import USERS, connected, run
from harness.servers import SERVERS, Mixd, started


@pytest.fixture(params=sorted(SERVERS))
def fresh(request):
    """A server and a mixd of this test's own, since these tests stop and kill them."""
    srv = started(SERVERS[request.param], USERS[:2])
    daemon = Mixd(srv, tempfile.mkdtemp(prefix="mixd-db-"))
    daemon.start()
    yield srv, daemon
    daemon.stop(signal.SIGKILL)
    srv.stop()


def test_sigkill_while_messages_flow_loses_nothing_reflected(fresh):
    server, mixd = fresh

    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            await alice.create_live("flow", bob)
            for i in range(400):
                alice.post("flow", f"m{i}")
            seen = {}
            while len(seen) < 60:
                msg = await bob.next_message()
                seen[msg["id"]] = msg["body"]
            mixd.stop(signal.SIGKILL)
            # Take in whatever was already on its way to bob.
            try:
                while True:
                    msg = await bob.next_message(timeout=1)
                    seen[msg["id"]] = msg["body"]
            except asyncio.TimeoutError:
                pass
            while not alice.mix_messages.empty():
                msg = alice.mix_messages.get_nowait()
                seen[msg["id"]] = msg["body"]

            mixd.start()
            archived = {}
            after = None
            while True:
                page = await bob.mam(bob.channel("flow"), max=250, **({"after": after} if after else {}))
                for m in page["mam"]["results"]:
                    archived[m["mam_result"]["id"]] = m["mam_result"]["forwarded"]["stanza"]["body"]
                if page.xml.find(".//{urn:xmpp:mam:2}fin").get("complete") == "true":
                    break
                after = page["mam_fin"]["rsm"]["last"]
            missing = {i: b for i, b in seen.items() if archived.get(i) != b}
            assert not missing, f"reflected but not archived: {missing}"
            assert len(seen) >= 60

            # The archive is intact and in order (ids are opaque: the bodies tell the order),
            # and the channel serves again.
            bodies = list(archived.values())
            assert bodies == sorted(bodies, key=lambda body: int(body[1:]))
            await alice.online_in("flow")
            alice.post("flow", "after the crash")
            while (await alice.next_message())["body"] != "after the crash":
                pass

    run(scenario())
    mixd.check_integrity()


def test_messages_named_by_their_ids_are_found_before_and_after_a_crash(fresh):
    """A post's look-up entries (by sender, by its sender's ids) are entered some posts
    later, many at once (docs/ARCHITECTURE.md, Storage): a message just posted, one whose
    entries were entered, and those a crash left without theirs are all found by corrections
    naming their origin-ids and by history with their sender."""
    server, mixd = fresh

    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            channel = alice.channel("refs")
            await alice.plugin["xep_0369"].create_channel(channel, "refs", timeout=10)
            await alice.join_live("refs", "alice")
            await bob.join_live("refs", "bob")
            # More posts than one channel's rows wait for their entries (64).
            for i in range(70):
                bob.post("refs", f"m{i}", origin_id=f"bob-{i}")
            ids = [(await bob.next_message())["id"] for _ in range(70)]

            async def correct(reference, body):
                bob.plugin["xep_0308"].build_correction(reference, channel, mtype="groupchat", mbody=body).send()
                return (await bob.next("message_correction"))["replace"]["id"]

            assert await correct("bob-69", "m69 fixed") == ids[69]
            assert await correct("bob-0", "m0 fixed") == ids[0]
            mixd.stop(signal.SIGKILL)
            mixd.start()
            await bob.online_in("refs")
            assert await correct("bob-68", "m68 fixed") == ids[68]
            page = await alice.mam(channel, with_jid=bob.bare, max=100)
            bodies = [m["mam_result"]["forwarded"]["stanza"]["body"] for m in page["mam"]["results"]]
            assert bodies == ["m0 fixed"] + [f"m{i}" for i in range(1, 68)] + ["m68 fixed", "m69 fixed"]

    run(scenario())
    mixd.check_integrity()


def test_server_restart_is_survived(fresh):
    server, mixd = fresh
    offset = len(mixd.log())
    server.restart()
    mixd.wait_for_log("component connected", offset)

    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            await alice.create_live("after", bob)
            alice.post("after", "back again")
            assert (await bob.next_message())["body"] == "back again"

    run(scenario())
    assert "component link lost; reconnecting" in mixd.log()[offset:]


def run_mixd(mixd, *extra, secret=None, same_database=False):
    """Another mixd beside the running one; on a database (and control socket) of its own
    unless told otherwise (a second mixd on the same database is refused before it connects,
    or on PostgreSQL stands by)."""
    command = mixd.command(**({"secret": secret} if secret else {}),
                           database=None if same_database else mixd.other_database())
    return subprocess.run(command + list(extra), capture_output=True, text=True, timeout=30)


def test_configuration_mistakes_are_explained(fresh):
    server, mixd = fresh
    wrong = run_mixd(mixd, secret="not-the-secret")
    assert wrong.returncode == 1 and "not-authorized" in wrong.stderr and "not-the-secret" not in wrong.stderr

    unknown = mixd.command(database=mixd.other_database())
    unknown[unknown.index("--jid") + 1] = "nomix.localhost"
    result = subprocess.run(unknown, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1, result.stderr
    assert "nomix.localhost" in result.stderr

    if server.name == "prosody":
        # Prosody takes one connection per component; ejabberd balances over several.
        second = run_mixd(mixd)
        assert second.returncode == 1 and "conflict" in second.stderr
    if mixd.store == "postgres":
        # On the same PostgreSQL database, a second mixd is a standby: it waits, unconnected,
        # before it binds the control socket.
        with tempfile.TemporaryFile() as err:
            standby = subprocess.Popen(mixd.command(), stdout=subprocess.DEVNULL, stderr=err)
            try:
                deadline = time.monotonic() + 15
                while b"standing by" not in (err.seek(0) or err.read()):
                    assert standby.poll() is None and time.monotonic() < deadline, err.read()
                    time.sleep(0.1)
            finally:
                standby.kill()
                standby.wait()
    else:
        # Two mixd on one database would each hold their own copy of its channels.
        beside = run_mixd(mixd, same_database=True)
        assert beside.returncode == 1 and "is one already running on this database" in beside.stderr

    checked = subprocess.run([mixd.binary, "check-config", "--jid", "mix.localhost", "--secret", "s3cr3t"],
                             capture_output=True, text=True)
    assert checked.returncode == 0 and "configuration is valid" in checked.stdout
    assert "s3cr3t" not in checked.stdout
    missing = subprocess.run([mixd.binary, "check-config"], capture_output=True, text=True,
                             env={"PATH": "/usr/bin:/bin"})
    assert missing.returncode == 2 and "--jid" in missing.stderr


def test_sigterm_closes_cleanly(fresh):
    server, mixd = fresh

    async def scenario():
        async with connected(server, "alice") as (alice,):
            await alice.create_live("bye")
            alice.post("bye", "last words")
            assert (await alice.next_message())["body"] == "last words"

    run(scenario())
    assert mixd.stop(signal.SIGTERM) == 0
    log = mixd.log()
    assert "shutting down" in log and "component stream closed" in log


def test_idle_link_is_kept_alive(fresh):
    server, mixd = fresh
    mixd.stop()
    mixd.extra = ["--keepalive", "1"]
    offset = len(mixd.log())
    mixd.start()
    # Five seconds of silence: mixd pings, the server answers, nothing is dropped.
    time.sleep(5)
    log = mixd.log()[offset:]
    assert log.count("keepalive ping") >= 3, log
    assert "component link lost" not in log

    async def scenario():
        async with connected(server, "alice") as (alice,):
            assert await alice.plugin["xep_0369"].can_create_channel(alice.channel("x"))

    run(scenario())
