"""mixd's administration in the FlyChat dialect, which the SDK has no calls for: the
JavaScript suite in flychat/ (Node's test runner, a hand-written client on @xmpp/client over
Prosody's WebSocket) against Prosody and mixd. Everything the SDK itself sends is tested with
the real SDK in test_flychat_sdk.py."""

import os
import pathlib
import re
import subprocess
import tempfile

import pytest

from conftest import USERS
from harness.servers import MIX_DOMAIN, PASSWORD, USER_DOMAIN, Mixd, Prosody, started

SUITE = pathlib.Path(__file__).parent / "flychat"


@pytest.fixture(scope="module")
def prosody_with_mixd():
    server = started(Prosody, USERS)
    daemon = Mixd(server, tempfile.mkdtemp(prefix="mixd-db-"))
    daemon.start()
    yield server, daemon
    daemon.stop()
    server.stop()


def test_flychat_sdk_calls(prosody_with_mixd):
    server, mixd = prosody_with_mixd
    # Node 18 (Debian 12's) has no --test-timeout: there the run's own timeout bounds a hang.
    node_help = subprocess.run(["node", "--help"], capture_output=True, text=True).stdout
    per_test = ["--test-timeout=60000"] if "--test-timeout" in node_help else []
    result = subprocess.run(
        ["node", "--test", "--test-reporter=spec", *per_test],
        cwd=SUITE,
        capture_output=True,
        text=True,
        timeout=240,
        env={
            **os.environ,
            "MIXD_TEST_WS": f"ws://127.0.0.1:{server.http_port}/xmpp-websocket",
            "MIXD_TEST_DOMAIN": USER_DOMAIN,
            "MIXD_TEST_MIX_DOMAIN": MIX_DOMAIN,
            "MIXD_TEST_PASSWORD": PASSWORD,
        },
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\nmixd log:\n{mixd.log()[-4000:]}"
    summary = dict(re.findall(r"^ℹ (pass|fail) (\d+)$", result.stdout, re.MULTILINE))
    assert summary == {"pass": "6", "fail": "0"}, result.stdout
