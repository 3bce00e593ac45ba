"""Monitoring (`--metrics`): the Prometheus endpoint's counters move by exactly what clients
did, and /health follows the component link. A mixd of this module's own, with a database
of its own, so that its state gauges count only what these tests made."""

import asyncio
import json
import pathlib
import re
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from conftest import connected, run
from harness.servers import Mixd, free_port

SERIES = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@pytest.fixture(scope="module")
def monitored(server):
    daemon = Mixd(server, tempfile.mkdtemp(prefix="mixd-db-"))
    daemon.metrics_port = free_port()
    daemon.extra = ["--metrics", f"127.0.0.1:{daemon.metrics_port}"]
    daemon.start()
    yield daemon
    daemon.stop()


def get(daemon, path):
    """(status, body) of GET `path` on the metrics listener."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{daemon.metrics_port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def scrape(daemon):
    """Every series of /metrics: {(name, frozenset of labels): value}."""
    status, text = get(daemon, "/metrics")
    assert status == 200
    assert text.endswith("# EOF\n")
    series = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name, labels, value = SERIES.match(line).groups()
        series[(name, frozenset(LABEL.findall(labels or "")))] = float(value)
    return series


def one(series, name, **labels):
    return series[(name, frozenset(labels.items()))]


def moved(before, after):
    """The counters and gauges whose value changed, with by how much; and apart, the commit
    histograms' series that changed (every reply goes through the writer, so each stanza
    handled makes a commit batch, whose timing is not exact)."""
    changed = {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)}
    commits = {k: v for k, v in changed.items() if k[0].startswith("mixd_commit_")}
    return {k: v for k, v in changed.items() if k not in commits}, commits


def key(name, **labels):
    return (name, frozenset(labels.items()))


async def scrape_async(daemon):
    return await asyncio.to_thread(scrape, daemon)


def test_one_post_moves_its_counters_by_exactly_one_post(server, monitored, channel_name):
    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            await alice.create_live(channel_name, bob)
            before = await scrape_async(monitored)
            assert one(before, "mixd_link_up") == 1
            alice.post(channel_name, "counted")
            for client in (alice, bob):
                assert (await client.next_message())["body"] == "counted"
            after = await scrape_async(monitored)
            counted, commits = moved(before, after)
            # One message read, one message stored, a reflection written to each of the two
            # participants, in MIX's shape, and nothing else sent; in one commit of one job.
            assert counted == {
                key("mixd_stanzas_in_total", kind="message", dialect="mix"): 1,
                key("mixd_facts_stored_total", fact="posted"): 1,
                key("mixd_deliveries_total", dialect="mix"): 2,
                key("mixd_stanzas_out_total", kind="message"): 2,
            }
            assert commits[key("mixd_commit_batch_jobs_sum")] == 1
            assert commits[key("mixd_commit_batch_jobs_count")] == 1
            assert commits[key("mixd_commit_seconds_count")] == 1
            # What the service holds: this module's one channel and its two members.
            assert one(after, "mixd_channels") == 1
            assert one(after, "mixd_participants") == 2

    run(scenario())


def test_a_refused_stanza_counts_one_error_of_its_condition(server, monitored, channel_name):
    async def scenario():
        async with connected(server, "alice", "carol") as (alice, carol):
            await alice.plugin["xep_0369"].create_channel(alice.channel("x"), channel_name, timeout=10)
            before = await scrape_async(monitored)
            carol.post(channel_name, "not a participant")
            error = await carol.next_error()
            condition = error["error"]["condition"]
            after = await scrape_async(monitored)
            counted, _ = moved(before, after)
            assert counted == {
                key("mixd_stanzas_in_total", kind="message", dialect="mix"): 1,
                key("mixd_errors_total", condition=condition): 1,
                key("mixd_stanzas_out_total", kind="message"): 1,
            }

    run(scenario())


def test_the_dashboard_shows_only_series_mixd_exports(monitored):
    """deploy/grafana/mixd.json is a Grafana dashboard whose every query names metrics that a
    scrape has (histograms by their _bucket, _sum and _count series)."""
    dashboard = json.loads((pathlib.Path(__file__).parent.parent / "deploy/grafana/mixd.json").read_text())
    assert dashboard["uid"] == "mixd" and dashboard["schemaVersion"] >= 30
    exported = {name for name, _ in scrape(monitored)}
    queried = set()
    for panel in dashboard["panels"]:
        assert {"id", "type", "title", "gridPos"} <= panel.keys(), panel
        for target in panel.get("targets", []):
            queried |= set(re.findall(r"\bmixd_[a-z_]+", target["expr"]))
    assert len(queried) >= 15
    assert queried <= exported, queried - exported


def health(daemon):
    status, body = get(daemon, "/health")
    return status, json.loads(body)


def wait_for_health(daemon, status, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        got, body = health(daemon)
        if got == status or time.monotonic() > deadline:
            return got, body
        time.sleep(0.1)


def test_health_follows_the_link(server, monitored):
    status, body = health(monitored)
    assert status == 200, body
    assert body["status"] == "ok" and body["link"] == "up"
    assert body["writer_oldest_pending_ms"] < 5000

    reconnects = one(scrape(monitored), "mixd_link_reconnects_total")
    offset = len(monitored.log())
    server.stop()
    status, body = wait_for_health(monitored, 503)
    assert status == 503, body
    assert body["status"] == "unavailable" and body["link"] == "down"
    assert any("link" in problem for problem in body["problems"]), body
    assert one(scrape(monitored), "mixd_link_up") == 0

    server.start()
    monitored.wait_for_log("component connected", offset, timeout=60)
    status, body = wait_for_health(monitored, 200)
    assert status == 200, body
    after = scrape(monitored)
    assert one(after, "mixd_link_up") == 1
    assert one(after, "mixd_link_reconnects_total") == reconnects + 1
