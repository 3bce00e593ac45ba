"""Real XMPP servers on loopback, configured from the templates in deploy/, and mixd itself.

Each server runs in the foreground in its own temporary directory, on free ports, and is
stopped by the harness. The same templates are what docs/operations.md describes.
"""

import asyncio
import glob
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
USER_DOMAIN = "localhost"
MIX_DOMAIN = "mix.localhost"
SECRET = "mixd-test-secret"
PASSWORD = "password"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def render(template, path, values):
    text = (DEPLOY / template).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    path.write_text(text)


class Server:
    """What the tests need of any server: ports, users, stop and start."""

    name = "server"

    def __init__(self, workdir):
        self.dir = pathlib.Path(workdir) / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.c2s_port = free_port()
        self.component_port = free_port()
        self.http_port = free_port()
        self.process = None

    def values(self):
        return {
            "DIR": self.dir,
            "C2S_PORT": self.c2s_port,
            "COMPONENT_PORT": self.component_port,
            "HTTP_PORT": self.http_port,
            "USER_DOMAIN": USER_DOMAIN,
            "DOMAIN": MIX_DOMAIN,
            "SECRET": SECRET,
            "PLUGINS": DEPLOY / "prosody-modules",
        }

    @property
    def ws_url(self):
        """The server's WebSocket (RFC 7395), as both configurations in deploy/ serve it."""
        return f"ws://127.0.0.1:{self.http_port}/xmpp-websocket"

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self):
        self.stop()
        self.start()


class Prosody(Server):
    name = "prosody"

    def __init__(self, workdir):
        super().__init__(workdir)
        (self.dir / "data").mkdir(exist_ok=True)
        self.config = self.dir / "prosody.cfg.lua"
        render("prosody.cfg.lua.in", self.config, self.values())

    def start(self):
        self.process = subprocess.Popen(
            ["prosody", "--config", str(self.config), "-F"],
            stdout=open(self.dir / "stdout.log", "ab"),
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.c2s_port)
        wait_for_port(self.component_port)

    def register(self, user):
        subprocess.run(
            ["prosodyctl", "--config", str(self.config), "register", user, USER_DOMAIN, PASSWORD],
            check=True,
            capture_output=True,
        )


class Ejabberd(Server):
    """ejabberd runs as its own system user (ejabberdctl insists), so its directory is theirs."""

    name = "ejabberd"

    def __init__(self, workdir):
        # ejabberdctl runs the server as the `ejabberd` user, which cannot enter a root-only
        # temporary directory: it gets a directory of its own.
        super().__init__(tempfile.mkdtemp(prefix="mixd-ejabberd-"))
        os.chmod(self.dir.parent, 0o755)
        self.node = f"mixdtest{self.c2s_port}@localhost"
        self.config = self.dir / "ejabberd.yml"
        render("ejabberd.yml.in", self.config, self.values())
        ebin = self.dir / "ebin"
        ebin.mkdir(exist_ok=True)
        compile_module(ebin)
        self.ctl_config = self.dir / "ejabberdctl.cfg"
        self.ctl_config.write_text(
            f'ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0 -pa {ebin}"\n'
            f"EJABBERD_CONFIG_PATH={self.config}\n"
            f"EJABBERD_PID_PATH={self.dir}/ejabberd.pid\n"
        )
        for sub in ("spool", "logs"):
            (self.dir / sub).mkdir(exist_ok=True)
        for path in [self.dir, *self.dir.rglob("*")]:
            shutil.chown(path, "ejabberd", "ejabberd")

    def ctl(self, *args, check=True):
        return subprocess.run(
            ["ejabberdctl", "--ctl-config", str(self.ctl_config), "--node", self.node, *args],
            check=check,
            capture_output=True,
            text=True,
        )

    def start(self):
        self.process = subprocess.Popen(
            [
                "ejabberdctl", "--ctl-config", str(self.ctl_config), "--config", str(self.config),
                "--spool", str(self.dir / "spool"), "--logs", str(self.dir / "logs"),
                "--node", self.node, "foreground",
            ],
            stdout=open(self.dir / "stdout.log", "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.c2s_port, timeout=60)
        wait_for_port(self.component_port, timeout=60)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.ctl("stop", check=False)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def register(self, user):
        self.ctl("register", user, USER_DOMAIN, PASSWORD)


def compile_module(out):
    """Builds mixd's ejabberd modules (deploy/ejabberd-modules/*.erl: mod_mixd_flychat,
    mod_mixd_pam) against the installed ejabberd."""
    ejabberd = next(os.path.dirname(d) for d in sorted(glob.glob("/usr/lib/*/ejabberd-*/include")))
    (xmpp,) = glob.glob("/usr/lib/erlang/lib/p1_xmpp-*")
    sources = sorted(str(p) for p in (DEPLOY / "ejabberd-modules").glob("*.erl"))
    subprocess.run(
        ["erlc", "-I", f"{ejabberd}/include", "-I", f"{xmpp}/include", "-pa", f"{ejabberd}/ebin",
         "-o", str(out), *sources],
        check=True, capture_output=True,
    )


SERVERS = {"prosody": Prosody, "ejabberd": Ejabberd}


class Mixd:
    """The mixd binary under test, attached to a server's component port."""

    def __init__(self, server, workdir, binary=None):
        self.binary = binary or os.environ.get("MIXD_BIN", str(ROOT / "target" / "debug" / "mixd"))
        self.server = server
        self.database = pathlib.Path(workdir) / "mixd.db"
        self.log_path = pathlib.Path(workdir) / "mixd.log"
        self.process = None
        self.extra = []

    def command(self, secret=SECRET):
        return [
            self.binary, "run",
            "--server", f"127.0.0.1:{self.server.component_port}",
            "--jid", MIX_DOMAIN,
            "--secret", secret,
            "--database", str(self.database),
            "--user-domain", USER_DOMAIN,
        ] + self.extra

    def log(self):
        return self.log_path.read_text() if self.log_path.exists() else ""

    def start(self):
        offset = len(self.log())
        self.process = subprocess.Popen(
            self.command(),
            stdout=subprocess.DEVNULL,
            stderr=open(self.log_path, "ab"),
            env={**os.environ, "MIXD_LOG": "info,mixd=debug", "NO_COLOR": "1"},
        )
        self.wait_for_log("component connected", offset)

    def wait_for_log(self, text, offset=0, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log()[offset:]:
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"mixd exited ({self.process.returncode}):\n{self.log()[offset:]}")
            time.sleep(0.05)
        raise TimeoutError(f"mixd did not log {text!r}:\n{self.log()[offset:]}")

    async def wait_for_log_async(self, text, timeout=10.0):
        await asyncio.to_thread(self.wait_for_log, text, 0, timeout)

    def rss_kib(self):
        """The resident memory of the running mixd (VmRSS), in KiB."""
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS for mixd")

    def stop(self, sig=signal.SIGTERM):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=15)
        code = self.process.returncode if self.process else None
        self.process = None
        return code
