"""The real FlyChat SDK (npm mirrorfly-sdk, unmodified) as a test client: one Node process per
user (tests/flychat/real/user.mjs), each SDK call made through a line of JSON, every listener
call the SDK makes seen as an event. The SDK's REST calls go to mixd's bootstrap and its
WebSocket to the XMPP server, under the names it insists on (flychat-wire.md §6)."""

import asyncio
import contextlib
import json
import os
import pathlib
import tempfile

from harness.servers import PASSWORD, free_port

SUITE = pathlib.Path(__file__).resolve().parents[1] / "flychat"
# A host name, as the SDK's apiBaseUrl rule wants; user.mjs maps it to mixd's bootstrap.
API_URL = "http://api.chat.test/api/v1"
TIMEOUT = 20


class SdkError(AssertionError):
    pass


class SdkUser:
    def __init__(self, name):
        self.name = name
        self.process = None
        self.pending = {}
        self.events = []
        self.crashes = []
        self._changed = asyncio.Event()
        self._ids = 0
        self._reader = None
        self.stderr_path = None

    async def start(self, api_real, ws_url, workdir):
        self.stderr_path = pathlib.Path(workdir) / f"sdk-{self.name}.log"
        self.process = await asyncio.create_subprocess_exec(
            "node", str(SUITE / "real" / "user.mjs"),
            cwd=SUITE,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=open(self.stderr_path, "ab"),
            limit=16 << 20,
            env={**os.environ, "MIXD_API_URL": API_URL, "MIXD_API_REAL": api_real, "MIXD_WS_URL": ws_url},
        )
        self._reader = asyncio.create_task(self._read())
        await self.event("ready")
        init = await self.call("initializeSDK", {"apiBaseUrl": API_URL, "licenseKey": "mixd-tests"})
        assert init["statusCode"] == 200, init
        return self

    async def login(self, password=PASSWORD):
        """SDK.connect: the REST login, the configuration, then XMPP over the WebSocket."""
        return await self.call("connect", self.name, password)

    async def _read(self):
        while line := await self.process.stdout.readline():
            message = json.loads(line)
            if "id" in message:
                future = self.pending.pop(message["id"], None)
                if future and not future.done():
                    future.set_result(message)
            elif message.get("event") == "crash":
                self.crashes.append(message["data"])
            else:
                self.events.append((message["event"], message["data"]))
            self._changed.set()

    async def call(self, name, *args, timeout=TIMEOUT):
        """The settled value of SDK.<name>(*args); SdkError if it rejects or never settles."""
        self._ids += 1
        future = asyncio.get_running_loop().create_future()
        self.pending[self._ids] = future
        self.process.stdin.write((json.dumps({"id": self._ids, "call": name, "args": list(args)}) + "\n").encode())
        await self.process.stdin.drain()
        try:
            reply = await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise SdkError(f"{self.name}: SDK.{name} never settled ({self.log_tail()})") from None
        if "error" in reply:
            raise SdkError(f"{self.name}: SDK.{name} rejected: {reply['error']}")
        return reply["result"]

    async def event(self, name, match=lambda data: True, timeout=TIMEOUT, since=0):
        """The first listener call `name` (from index `since` on) whose payload matches."""
        async def seek():
            seen = since
            while True:
                for event, data in self.events[seen:]:
                    if event == name and match(data):
                        return data
                seen = len(self.events)
                self._changed.clear()
                await self._changed.wait()
        try:
            return await asyncio.wait_for(seek(), timeout)
        except asyncio.TimeoutError:
            raise SdkError(f"{self.name}: no {name} event came; had {self.events[since:][-10:]}") from None

    def mark(self):
        """An index into the events, for waiting on what comes after it."""
        return len(self.events)

    def log_tail(self):
        return self.stderr_path.read_text()[-1500:] if self.stderr_path and self.stderr_path.exists() else ""

    async def stop(self):
        if self.process and self.process.returncode is None:
            self.process.stdin.close()
            self.process.terminate()
            await self.process.wait()
        if self._reader:
            self._reader.cancel()


def serve_bootstrap(daemon, server, media_dir=None, *extra):
    """Has `daemon` (not started yet) serve the SDK's REST bootstrap, with attachments stored
    in `media_dir` (a new directory by default; the configuration offers them only where media
    is stored), and `extra` flags; its apiBaseUrl's real place."""
    port = free_port()
    daemon.extra = [
        "--bootstrap-listen", f"127.0.0.1:{port}",
        "--bootstrap-c2s", f"127.0.0.1:{server.c2s_port}",
        "--bootstrap-xmpp-port-web", str(server.http_port),
        "--bootstrap-media-dir", media_dir or tempfile.mkdtemp(prefix="mixd-media-"),
        *extra,
    ]
    return f"http://127.0.0.1:{port}/api/v1"


@contextlib.asynccontextmanager
async def sdk_users(server, api, *names):
    """SDK users `names`, logged in and connected; at the end, none of their SDKs may have thrown."""
    workdir = tempfile.mkdtemp(prefix="mixd-sdk-")
    users = []
    try:
        for name in names:
            user = await SdkUser(name).start(api, server.ws_url, workdir)
            users.append(user)
            login = await user.login()
            assert login["statusCode"] == 200, login
            await user.event("connectionListener", lambda d: d.get("status") == "CONNECTED")
        yield users
        for user in users:
            assert not user.crashes, f"{user.name}: the SDK threw: {user.crashes}"
    finally:
        for user in users:
            await user.stop()
