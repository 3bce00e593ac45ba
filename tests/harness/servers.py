"""Real XMPP servers on loopback, configured from the templates in deploy/, and mixd itself.

Each server runs in the foreground in its own temporary directory, on free ports, and is
stopped by the harness. The same templates are what docs/operations.md describes.

mixd stores in SQLite unless `MIXD_STORE=postgres`: then one PostgreSQL server (Debian's
`postgresql`, started here on a free loopback port) serves the whole run, and each mixd gets a
database of its own on it. Run as a script, this file starts that server around a command:
`python3 tests/harness/servers.py with-postgres -- CMD…` runs CMD with `MIXD_TEST_POSTGRES` set
to the server's URL (what the Rust tests of the PostgreSQL backend read).
"""

import asyncio
import atexit
import glob
import itertools
import os
import pathlib
import random
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
USER_DOMAIN = "localhost"
MIX_DOMAIN = "mix.localhost"
SECRET = "mixd-test-secret"
PASSWORD = "password"


def unused_ports():
    """Loopback ports below the kernel's ephemeral range, in a random order (so that two runs
    on one machine seldom try the same ones first), each tried once per run."""
    low = int(pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = list(range(min(20000, low - 4096), low))
    random.shuffle(ports)
    return iter(ports)


PORTS = unused_ports()


def free_port():
    """A free loopback port for a server yet to start. Not one from bind(0): that is an
    ephemeral port, which, between our closing it and the server binding it, any outgoing
    connection or bind(0) on the machine (an Erlang node's distribution listener, a test
    client) may take; the server then starts without that listener (an ejabberd cluster node
    whose component port never opened failed a CI run). Ports below the ephemeral range are
    only ever handed out by a bind asking for them, and this run asks for each one once."""
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port left below the ephemeral range")


def wait_for_port(port, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def wait_for_component_host(port, timeout=30.0):
    """Waits until the component port accepts a stream to the MIX domain. Prosody opens the port
    when mod_component loads globally and knows the component host only a moment later, when the
    module is added to it: a stream opened in between is closed at once with host-unknown. A
    stream to a known host stays open, waiting for the handshake."""
    wait_for_port(port, timeout)
    header = (
        "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
        f"xmlns:stream='http://etherx.jabber.org/streams' to='{MIX_DOMAIN}'>"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as probe:
            probe.sendall(header.encode())
            answer = b""
            while b"</stream:stream>" not in answer:
                probe.settimeout(0.3 if b" id=" in answer else 5)
                try:
                    chunk = probe.recv(4096)
                except socket.timeout:
                    break
                if not chunk:
                    break
                answer += chunk
        if b" id=" in answer and b"</stream:stream>" not in answer:
            return
        time.sleep(0.1)
    raise TimeoutError(f"the server on 127.0.0.1:{port} does not know {MIX_DOMAIN} after {timeout} s")


def started(kind, users):
    """A server of `kind` (Prosody, Ejabberd, EjabberdCluster) in a directory of its own,
    started, with `users` registered."""
    server = kind(tempfile.mkdtemp(prefix="mixd-test-"))
    server.start()
    for user in users:
        server.register(user)
    return server


def wait_or_kill_group(process, timeout=30):
    """Waits for `process`, asked to stop, to end; past `timeout` seconds kills its whole
    process group (it was started in a session of its own), so that no child outlives it."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


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
        wait_for_component_host(self.component_port)

    def register(self, user):
        subprocess.run(
            ["prosodyctl", "--config", str(self.config), "register", user, USER_DOMAIN, PASSWORD],
            check=True,
            capture_output=True,
        )


class Ejabberd(Server):
    """ejabberd runs as its own system user (ejabberdctl insists), so its directory is theirs."""

    name = "ejabberd"

    def __init__(self, workdir, cookie=None):
        # ejabberdctl runs the server as the `ejabberd` user, which cannot enter a root-only
        # temporary directory: it gets a directory of its own.
        super().__init__(tempfile.mkdtemp(prefix="mixd-ejabberd-"))
        os.chmod(self.dir.parent, 0o755)
        self.node = f"mixdtest{self.c2s_port}@localhost"
        # Without one, the node takes the ejabberd user's cookie (~ejabberd/.erlang.cookie),
        # the same for every node on the machine: a cluster gets one of its own, so that no
        # other node (another test run's) can reach it.
        cookie_option = f" -setcookie {cookie}" if cookie else ""
        self.config = self.dir / "ejabberd.yml"
        render("ejabberd.yml.in", self.config, self.values())
        ebin = self.dir / "ebin"
        ebin.mkdir(exist_ok=True)
        compile_module(ebin)
        self.ctl_config = self.dir / "ejabberdctl.cfg"
        self.ctl_config.write_text(
            f'ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0 -pa {ebin}{cookie_option}"\n'
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
        self.wait_for_listeners()
        self.wait_until_started()

    def wait_until_started(self, timeout=60.0):
        """Waits until `ejabberdctl status` says the node has started. Its ports open while its
        applications are still starting, and a command sent then can find a Mnesia table not
        made yet: registering a user once failed with `{no_exists,passwd,storage_type}`."""
        deadline = time.monotonic() + timeout
        while (status := self.ctl("status", check=False)).returncode != 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"ejabberd node {self.node} not started after {timeout} s: {status.stdout}")
            time.sleep(0.2)

    def wait_for_listeners(self):
        """Waits for the client and component ports; if one never opens, says why in the
        error with the end of the node's logs (its listeners' failures are logged there)."""
        try:
            wait_for_port(self.c2s_port, timeout=60)
            wait_for_port(self.component_port, timeout=60)
        except TimeoutError as error:
            logs = [self.dir / "stdout.log", self.dir / "logs" / "error.log"]
            tails = "".join(
                f"\n--- {log} ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
                for log in logs
                if log.exists()
            )
            raise TimeoutError(f"{error} (ejabberd node {self.node}){tails}") from None

    def stop(self):
        if self.process and self.process.poll() is None:
            self.ctl("stop", check=False)
            wait_or_kill_group(self.process)
        self.process = None

    def register(self, user):
        self.ctl("register", user, USER_DOMAIN, PASSWORD)


class EjabberdCluster:
    """Two ejabberd nodes clustered on loopback: distinct node names and ports, one cookie of
    their own. The second joins the first (`ejabberdctl join_cluster`), which makes it share the
    first's Mnesia tables (users, rosters, routes): a user of either may log in on either, and
    a component connected to either node serves users of both (docs/operations.md)."""

    name = "ejabberd-cluster"

    def __init__(self, workdir):
        cookie = f"mixd{secrets.token_hex(12)}"
        self.nodes = [Ejabberd(workdir, cookie=cookie) for _ in range(2)]

    def start(self):
        first, second = self.nodes
        for node in self.nodes:
            node.start()
        joined = second.ctl("join_cluster", first.node, check=False)
        if joined.returncode != 0:
            raise RuntimeError(f"join_cluster failed: {joined.stdout}{joined.stderr}")
        # Joining restarts the second node's services: wait until it listens again and both
        # list each other.
        deadline = time.monotonic() + 60
        while True:
            listed = [set(node.ctl("list_cluster", check=False).stdout.split()) for node in self.nodes]
            if all({first.node, second.node} <= nodes for nodes in listed):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the nodes do not list each other: {listed}")
            time.sleep(0.2)
        second.wait_for_listeners()
        second.wait_until_started()

    def stop(self):
        for node in reversed(self.nodes):
            node.stop()

    def register(self, user):
        """Registered on the first node; Mnesia gives the account to both."""
        self.nodes[0].register(user)


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

# Where mixd stores: "sqlite" (a file per mixd) or "postgres" (a database per mixd).
STORE = os.environ.get("MIXD_STORE", "sqlite")
if STORE not in ("sqlite", "postgres"):
    raise ValueError(f"MIXD_STORE={STORE!r}: sqlite or postgres")

PG_BIN = pathlib.Path(
    os.environ.get("MIXD_PG_BIN")
    or max(glob.glob("/usr/lib/postgresql/*/bin") or ["/usr/lib/postgresql/15/bin"],
           key=lambda d: int(d.split("/")[-2]))
)


class Postgres:
    """A throwaway PostgreSQL on a free loopback port, in a temporary directory.

    PostgreSQL refuses to run as root: as root the server runs as the `postgres` user that
    Debian's package creates (and the directory is theirs). It trusts every connection from
    loopback and skips fsync (unless `durable`, for benchmarks): it is for tests. Its superuser
    is `mixd`."""

    user = "mixd"

    def __init__(self, durable=False):
        self.durable = durable
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="mixd-postgres-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.process = None
        self._names = itertools.count()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            os.chmod(self.dir, 0o755)
            shutil.chown(self.dir, "postgres", "postgres")

    def _run_as(self, command):
        if self.as_postgres:
            return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *command]
        return command

    def start(self):
        subprocess.run(
            self._run_as([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", self.user,
                          "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"]),
            check=True, capture_output=True,
        )
        self.process = subprocess.Popen(
            self._run_as([
                str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                "-c", "max_connections=200",
            ] + ([] if self.durable else ["-c", "fsync=off", "-c", "full_page_writes=off"])),
            stdout=open(self.dir / "postgres.log", "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port)
        # Accepting connections comes a moment after listening.
        deadline = time.monotonic() + 30
        while self.psql("postgres", "SELECT 1", check=False).returncode != 0:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"PostgreSQL did not start: {(self.dir / 'postgres.log').read_text()}")
            time.sleep(0.1)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown: ends the sessions
            wait_or_kill_group(self.process)
        self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database="postgres"):
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self):
        name = f"mixd_{os.getpid()}_{next(self._names)}"
        self.psql("postgres", f"CREATE DATABASE {name}")
        return name

    def psql(self, database, sql, variables=(), check=True):
        """Runs `sql` (from standard input, so that `:'name'` takes a variable quoted)."""
        command = ["psql", "-X", "-q", "-A", "-t", "-F", "\x1f", "-0", "-v", "ON_ERROR_STOP=1",
                   "-d", self.url(database)]
        for name, value in variables:
            command += ["-v", f"{name}={value}"]
        return subprocess.run(command, input=sql, capture_output=True, text=True, check=check)

    def query(self, database, sql, params=()):
        """Rows of `sql`, whose `?` take `params` in order, as tuples like sqlite3's."""
        names = iter(range(len(params)))
        text = re.sub(r"\?", lambda _: f":'p{next(names)}'", sql)
        out = self.psql(database, text, [(f"p{i}", v) for i, v in enumerate(params)]).stdout
        records = [r for r in out.split("\0") if r.strip("\n")]
        convert = lambda field: int(field) if re.fullmatch(r"-?\d+", field) else field  # noqa: E731
        return [tuple(convert(f) for f in r.strip("\n").split("\x1f")) for r in records]


_postgres = None


def postgres_server(durable=False):
    """The run's one PostgreSQL server, started on first use and stopped when the run ends."""
    global _postgres
    if _postgres is None:
        _postgres = Postgres(durable)
        _postgres.start()
        atexit.register(stop_postgres)
    return _postgres


def stop_postgres():
    global _postgres
    if _postgres is not None:
        _postgres.stop()
        _postgres = None


class Mixd:
    """The mixd binary under test, attached to a server's component port."""

    def __init__(self, server, workdir, binary=None, database=None):
        self.binary = binary or os.environ.get("MIXD_BIN", str(ROOT / "target" / "debug" / "mixd"))
        self.server = server
        self.store = STORE
        if STORE == "postgres":
            # A database of its own, unless it is to share one (standbys).
            self.pg_database = database or postgres_server().create_database()
            self.database = postgres_server().url(self.pg_database)
        else:
            self.database = pathlib.Path(workdir) / "mixd.db"
        self.log_path = pathlib.Path(workdir) / "mixd.log"
        # Each instance its own, standbys too: one on the same machine cannot share it.
        self.control_socket = pathlib.Path(workdir) / "mixd.sock"
        self.process = None
        self.extra = []
        # What mixd runs with beyond the caller's environment (benchmarks log less).
        self.env = {"MIXD_LOG": "info,mixd=debug"}

    def command(self, secret=SECRET, database=None):
        """This mixd's command line; with another `database`, a control socket of its own."""
        control_socket = tempfile.mktemp(prefix="mixd-", suffix=".sock") if database else self.control_socket
        return [
            self.binary, "run",
            "--server", f"127.0.0.1:{self.server.component_port}",
            "--jid", MIX_DOMAIN,
            "--secret", secret,
            "--database", str(database or self.database),
            "--control-socket", str(control_socket),
            "--user-domain", USER_DOMAIN,
        ] + self.extra

    def log(self):
        return self.log_path.read_text() if self.log_path.exists() else ""

    def other_database(self):
        """For a second mixd beside this one: a database of its own (one on the same database is
        refused, or on PostgreSQL waits for this one to go)."""
        if self.store == "postgres":
            return postgres_server().url(postgres_server().create_database())
        return tempfile.mktemp(prefix="mixd-second-", suffix=".db")

    def query(self, sql, *params):
        """Rows of `sql` (`?` for each of `params`) read from mixd's database, either store."""
        if self.store == "postgres":
            return postgres_server().query(self.pg_database, sql, params)
        db = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True)
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    def execute(self, sql, *params):
        """Changes mixd's database behind its back (`?` for each of `params`), either store: to
        plant what a check must find."""
        if self.store == "postgres":
            postgres_server().query(self.pg_database, sql, params)
            return
        with sqlite3.connect(self.database, timeout=10) as db:
            db.execute(sql, params)

    def check_integrity(self):
        """The store's own consistency check: SQLite's integrity_check, or amcheck's on the
        archive's B-tree indexes in PostgreSQL."""
        if self.store == "postgres":
            postgres_server().psql(self.pg_database, "CREATE EXTENSION IF NOT EXISTS amcheck")
            for index in ("messages_pkey", "messages_by_channel"):
                postgres_server().psql(self.pg_database, f"SELECT bt_index_check('{index}', true)")
            return
        with sqlite3.connect(self.database) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    def start(self, until="component connected"):
        """Starts mixd and waits until it logs `until` (a standby: "standing by")."""
        offset = len(self.log())
        self.process = subprocess.Popen(
            self.command(),
            stdout=subprocess.DEVNULL,
            stderr=open(self.log_path, "ab"),
            env={**os.environ, "NO_COLOR": "1", **self.env},
        )
        self.wait_for_log(until, offset)

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


def main(argv):
    """`with-postgres [--durable] -- CMD…`: CMD with a PostgreSQL server, its URL in
    MIXD_TEST_POSTGRES; `--durable` keeps fsync on (for benchmarks)."""
    durable = "--durable" in argv[:2]
    argv = [a for a in argv[:2] if a != "--durable"] + argv[2:]
    if len(argv) < 3 or argv[0] != "with-postgres" or argv[1] != "--":
        sys.exit("usage: servers.py with-postgres [--durable] -- CMD…")
    server = postgres_server(durable)
    try:
        code = subprocess.run(argv[2:], env={**os.environ, "MIXD_TEST_POSTGRES": server.url()}).returncode
    finally:
        stop_postgres()
    sys.exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
