"""The browser example (examples/web) in Debian's headless Chromium for two users, on Prosody:
log in through mixd's REST bootstrap, create a group, add a member, a message each way, a
rename seen by the other, a file sent by one SDK and downloaded byte for byte by the other
(tests/browser/two-users.mjs drives the pages)."""

import os
import pathlib
import subprocess
import tempfile

import pytest

from conftest import USERS
from harness.servers import PASSWORD, USER_DOMAIN, Mixd, Prosody, free_port

ROOT = pathlib.Path(__file__).resolve().parent.parent
DRIVER = ROOT / "tests" / "browser" / "two-users.mjs"


@pytest.fixture(scope="module")
def page():
    for needed in ("/usr/bin/chromium", ROOT / "tests/browser/node_modules/playwright-core",
                   ROOT / "examples/web/node_modules/mirrorfly-sdk"):
        if not os.path.exists(needed):
            pytest.fail(f"{needed} is missing: run scripts/install-deps")
    server = Prosody(tempfile.mkdtemp(prefix="mixd-test-"))
    server.start()
    for user in USERS:
        server.register(user)
    workdir = tempfile.mkdtemp(prefix="mixd-db-")
    api_port, page_port = free_port(), free_port()
    daemon = Mixd(server, workdir)
    daemon.extra = [
        "--bootstrap-listen", f"127.0.0.1:{api_port}",
        "--bootstrap-c2s", f"127.0.0.1:{server.c2s_port}",
        "--bootstrap-media-dir", f"{workdir}/media",
    ]
    daemon.start()
    daemon.wait_for_log("bootstrap listening")
    serving = subprocess.Popen(
        ["python3", str(ROOT / "examples/web/serve.py"), "--port", str(page_port),
         "--domain", USER_DOMAIN, "--api", f"http://127.0.0.1:{api_port}/api/v1",
         "--websocket", f"ws://127.0.0.1:{server.http_port}/xmpp-websocket"],
        stdout=subprocess.PIPE, text=True,
    )
    url = serving.stdout.readline().split()[-1]
    yield url, daemon
    serving.kill()
    serving.wait()
    daemon.stop()
    server.stop()


def test_two_browsers_chat_and_rename_a_group(page):
    url, mixd = page
    result = subprocess.run(
        ["node", str(DRIVER)], cwd=DRIVER.parent, capture_output=True, text=True, timeout=240,
        env={**os.environ, "MIXD_PAGE_URL": url, "MIXD_TEST_PASSWORD": PASSWORD},
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\nmixd log:\n{mixd.log()[-4000:]}"
    assert "two users chatted, renamed a group and shared a file" in result.stdout
