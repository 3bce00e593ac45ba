"""The Debian package, installed into a clean Debian 12 root (debootstrap minbase + Prosody):
its files, its unit (checked by `systemd-analyze verify`), the service started as its unit
says, attached to Prosody in that root, and a client from this machine creating a channel and
posting in it. Then an upgrade to a newer version keeps the edited configuration and the data.

systemd does not run in a chroot, so the unit is carried out by hand, as close as can be:
its ExecStart= line with ${CREDENTIALS_DIRECTORY} and the credential it loads, a user of its
own (DynamicUser=) with no capabilities and no_new_privs, its state directory (with the
/var/lib/private indirection), WorkingDirectory=, UMask=, Environment=, and stderr as a
journal stream (JOURNAL_STREAM), so mixd logs as it would into the journal.

Needs root, debootstrap and the package: scripts/test sets MIXD_DEB after scripts/package.
The root comes from tests/package/debian-root, which caches it after the first download.
"""

import os
import pathlib
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from conftest import connected, run  # noqa: E402
from harness.servers import DEPLOY, MIX_DOMAIN, PASSWORD, SECRET, USER_DOMAIN, free_port, render, wait_for_port  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
DEBIAN_ROOT = HERE / "debian-root"
DEB = os.environ.get("MIXD_DEB")
SERVICE_UID = 61913  # in systemd's DynamicUser= range (61184–65519)
UNIT = "lib/systemd/system/mixd.service"  # /lib is /usr/lib on Debian 12

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (debootstrap, chroot, mounts)"),
    pytest.mark.skipif(shutil.which("debootstrap") is None, reason="debootstrap is missing (apt-get install debootstrap)"),
    pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is missing (apt-get install systemd)"),
    pytest.mark.skipif(not DEB, reason="MIXD_DEB is not set: scripts/test builds the package with scripts/package and sets it"),
]


def sh(*args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{shlex.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def chroot(root, *args, **kwargs):
    return sh("chroot", str(root), *args, **kwargs)


@pytest.fixture(scope="module")
def root():
    """A fresh Debian 12 root with Prosody (unpacked from the cache), mounted for chroot."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="mixd-package-", dir="/var/tmp")) / "root"
    started = time.monotonic()
    # A Debian 12 server: systemd (not running: the package's scripts meet it as on a real
    # machine, and `systemd-analyze verify --root` finds the units the service refers to).
    sh(str(DEBIAN_ROOT), str(path), "systemd", "prosody")
    print(f"debian root ready in {time.monotonic() - started:.1f} s")
    sh(str(DEBIAN_ROOT), "--mount", str(path))
    yield path
    sh(str(DEBIAN_ROOT), "--remove", str(path))
    shutil.rmtree(path.parent)


def install(root, deb):
    shutil.copy(deb, root / "tmp" / pathlib.Path(deb).name)
    # As an operator would; its dependencies are already in the root, nothing is downloaded.
    return chroot(root, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q",
                  f"/tmp/{pathlib.Path(deb).name}")


class Prosody:
    """Debian's Prosody in the root, configured from deploy/ with the packaged module."""

    def __init__(self, root):
        self.root = root
        self.dir = pathlib.Path("/srv/prosody-test")
        (root / "srv/prosody-test/data").mkdir(parents=True)
        self.c2s_port, self.component_port, self.http_port = free_port(), free_port(), free_port()
        self.config = self.dir / "prosody.cfg.lua"
        render("prosody.cfg.lua.in", root / self.config.relative_to("/"), {
            "DIR": self.dir, "C2S_PORT": self.c2s_port, "COMPONENT_PORT": self.component_port,
            "HTTP_PORT": self.http_port, "USER_DOMAIN": USER_DOMAIN, "DOMAIN": MIX_DOMAIN,
            "SECRET": SECRET, "PLUGINS": "/usr/share/mixd/prosody-modules",
        })
        self.process = subprocess.Popen(
            ["chroot", str(root), "prosody", "--config", str(self.config), "-F"],
            stdout=open(root / "srv/prosody-test/stdout.log", "ab"), stderr=subprocess.STDOUT,
        )
        wait_for_port(self.c2s_port)
        wait_for_port(self.component_port)
        for user in ("alice", "bob"):
            chroot(root, "prosodyctl", "--config", str(self.config), "register", user, USER_DOMAIN, PASSWORD)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


def unit_settings(text):
    """The [Service] section of a unit as {key: [values...]}."""
    settings, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service":
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


class Service:
    """mixd started the way deploy/mixd.service tells systemd to start it."""

    def __init__(self, root, log):
        self.root, self.log_path = root, log
        unit = unit_settings((root / UNIT).read_text())
        self.unit = unit
        assert unit["DynamicUser"] == ["yes"] and unit["StateDirectory"] == ["mixd"], unit
        self.process = None

    def prepare(self):
        root, unit, uid = self.root, self.unit, SERVICE_UID
        # StateDirectory= with DynamicUser=: /var/lib/private/mixd, reached by a symlink.
        private = root / "var/lib/private"
        private.mkdir(mode=0o700, exist_ok=True)
        os.chmod(private, 0o700)
        state = private / "mixd"
        state.mkdir(exist_ok=True)
        for path in [state, *state.rglob("*")]:
            os.chown(path, uid, uid)
        os.chmod(state, int(unit["StateDirectoryMode"][0], 8))
        link = root / "var/lib/mixd"
        if not link.is_symlink():
            link.symlink_to("private/mixd")
        # LoadCredential=ID:PATH: a private copy readable by the service's user only.
        credentials = root / "run/credentials/mixd.service"
        shutil.rmtree(credentials, ignore_errors=True)
        credentials.mkdir(parents=True)
        for entry in unit.get("LoadCredential", []):
            name, _, source = entry.partition(":")
            copy = credentials / name
            shutil.copy(root / source.lstrip("/"), copy)
            os.chown(copy, uid, uid)
            os.chmod(copy, 0o400)
        os.chown(credentials, uid, uid)
        os.chmod(credentials, 0o500)
        return {"CREDENTIALS_DIRECTORY": "/run/credentials/mixd.service",
                "STATE_DIRECTORY": "/var/lib/mixd"}

    def start(self):
        env = self.prepare()
        env |= {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/",
                "LANG": "C.UTF-8"}
        for entry in self.unit.get("Environment", []):
            for pair in shlex.split(entry):
                key, _, value = pair.partition("=")
                env[key] = value
        (command,) = self.unit["ExecStart"]
        argv = [re.sub(r"\$\{(\w+)\}|%d", lambda m: env[m.group(1) or "CREDENTIALS_DIRECTORY"], word)
                for word in shlex.split(command)]
        log = open(self.log_path, "ab")
        stat = os.fstat(log.fileno())
        # What systemd sets when stderr is a stream to the journal.
        env["JOURNAL_STREAM"] = f"{stat.st_dev}:{stat.st_ino}"
        umask = int(self.unit.get("UMask", ["0022"])[0], 8)
        self.offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        service = ["chroot", str(self.root), "setpriv", f"--reuid={SERVICE_UID}", f"--regid={SERVICE_UID}",
                   "--clear-groups", "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all",
                   "env", "-i", "-C", self.unit["WorkingDirectory"][0],
                   *(f"{k}={v}" for k, v in env.items()), *argv]
        # systemd keeps /var/lib/private at 0700 and lets a DynamicUser= service through by
        # mounting, in the service's own mount namespace, a 0755 tmpfs over it with only the
        # service's directory bound in: the same here, in a namespace of mixd's own.
        # The root is a mount point (debian-root --mount): made private first, nothing done
        # in the namespace reaches this machine's mounts, even where / is not a mount point
        # (this test run inside a chroot, as tests/package/fresh-machine does).
        private, staging = self.root / "var/lib/private", self.root / "run/mixd-state"
        staging.mkdir(exist_ok=True)
        namespace = (f"mount --make-rprivate {self.root} && mount --bind {private}/mixd {staging} && "
                     f"mount -t tmpfs -o mode=0755 tmpfs {private} && mkdir {private}/mixd && "
                     f"mount --bind {staging} {private}/mixd && umount -l {staging} && exec {shlex.join(service)}")
        self.process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "unchanged", "sh", "-c", namespace],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=lambda: os.umask(umask),
        )
        self.wait_for_log("component connected")

    def log(self):
        return self.log_path.read_text()[self.offset:]

    def wait_for_log(self, text, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"mixd exited ({self.process.returncode}):\n{self.log()}")
            time.sleep(0.05)
        raise TimeoutError(f"mixd did not log {text!r}:\n{self.log()}")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        return self.process.returncode


def configure(root, prosody):
    """Edits the example configuration as an operator would: server, jid, secret."""
    path = root / "etc/mixd/mixd.toml"
    text = path.read_text()
    for key, value in (("server", f"127.0.0.1:{prosody.component_port}"), ("jid", MIX_DOMAIN), ("secret", SECRET)):
        text, count = re.subn(rf'^{key} = ".*"$', f'{key} = "{value}"', text, flags=re.MULTILINE)
        assert count == 1, f"the example configuration has no single `{key} = ...` line"
    path.write_text(text)


def post_and_read(server, channel, body, create):
    async def scenario():
        async with connected(server, "alice", "bob") as (alice, bob):
            if create:
                created = await alice.plugin["xep_0369"].create_channel(alice.channel("x"), channel, timeout=10)
                assert created == channel
                await alice.join_live(channel, "alice")
                await bob.join_live(channel, "bob")
            else:
                await alice.online_in(channel)
                await bob.online_in(channel)
            alice.post(channel, body)
            for client in (alice, bob):
                msg = await client.next_message()
                # From the channel, with the sender's participant id as resource (XEP-0369 §7.1.6).
                assert msg["body"] == body and msg["from"].bare == alice.channel(channel).bare
            history = await bob.mam(alice.channel(channel))
            return [m["mam_result"]["forwarded"]["stanza"]["body"] for m in history["mam"]["results"]]

    return run(scenario())


def test_package_installs_and_serves(root, tmp_path):
    deb = pathlib.Path(DEB).resolve()
    fields = sh("dpkg-deb", "--field", str(deb), "Package", "Version", "Depends").stdout
    print(fields)
    started = time.monotonic()
    install(root, deb)
    print(f"package installed in {time.monotonic() - started:.1f} s")

    # The files, with the right owners and modes; the example configuration is a conffile.
    assert (root / "usr/bin/mixd").stat().st_mode & 0o777 == 0o755
    config = (root / "etc/mixd/mixd.toml").stat()
    assert (config.st_uid, config.st_mode & 0o777) == (0, 0o600), "the configuration holds the secret"
    assert "/etc/mixd/mixd.toml" in (root / "var/lib/dpkg/info/mixd.conffiles").read_text().split()
    for module in ("prosody-modules/mod_mixd_flychat.lua", "ejabberd-modules/mod_mixd_flychat.erl",
                   "grafana/mixd.json"):
        assert (root / "usr/share/mixd" / module).is_file(), module
    assert (root / UNIT).read_text() == (DEPLOY / "mixd.service").read_text()

    # The unit is valid for this machine's systemd (the binary is looked up in the root).
    verify = subprocess.run(["systemd-analyze", "verify", f"--root={root}", "mixd.service"],
                            capture_output=True, text=True)
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    security = subprocess.run(["systemd-analyze", "security", "--offline=yes", f"--root={root}",
                               f"{root}/{UNIT}"], capture_output=True, text=True)
    exposure = re.search(r"Overall exposure level for mixd.service: ([\d.]+)", security.stdout)
    print(exposure.group(0) if exposure else security.stdout[-2000:] + security.stderr)
    assert exposure and float(exposure.group(1)) <= 2.0, security.stdout

    prosody = Prosody(root)
    try:
        configure(root, prosody)
        checked = chroot(root, "mixd", "check-config", "--config", "/etc/mixd/mixd.toml").stdout
        assert "configuration is valid" in checked and SECRET not in checked, checked

        service = Service(root, tmp_path / "mixd.journal")
        service.start()
        # Journal-style lines: no escape codes, no timestamp of mixd's own.
        first = service.log().splitlines()[0]
        assert "\x1b[" not in service.log() and re.match(r"\s*INFO mixd", first), first
        assert SECRET not in service.log()

        assert post_and_read(prosody, "packaged", "from the package", create=True) == ["from the package"]
        print("mixd's log, as the journal gets it:\n" + "\n".join(service.log().splitlines()[:4]))
        database = root / "var/lib/private/mixd/mixd.db"
        stat = database.stat()
        assert (stat.st_uid, stat.st_mode & 0o777) == (SERVICE_UID, 0o600), "UMask=0077 in the service's own directory"
        assert service.stop() == 0, service.log()

        # Upgrade: the same package as a newer version. The edited configuration stays (a
        # conffile the operator changed), the state directory too, and the channel with it.
        edited = (root / "etc/mixd/mixd.toml").read_text()
        started = time.monotonic()
        newer = upgraded_package(deb, tmp_path)
        install(root, newer)
        print(f"upgraded in {time.monotonic() - started:.1f} s")
        assert (root / "etc/mixd/mixd.toml").read_text() == edited
        version = chroot(root, "dpkg-query", "-W", "-f=${Version}", "mixd").stdout
        assert version.endswith("+upgrade"), version
        service.start()
        history = post_and_read(prosody, "packaged", "after the upgrade", create=False)
        assert history == ["from the package", "after the upgrade"], history
        assert service.stop() == 0, service.log()
        db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            assert db.execute("SELECT count(*) FROM messages").fetchone()[0] >= 2
        finally:
            db.close()
    finally:
        prosody.stop()


def upgraded_package(deb, tmp_path):
    """The package rebuilt with a higher version, as a release would be."""
    tree = tmp_path / "upgrade"
    sh("dpkg-deb", "-R", str(deb), str(tree))
    control = tree / "DEBIAN/control"
    control.write_text(re.sub(r"^Version: (.*)$", r"Version: \1+upgrade", control.read_text(), flags=re.MULTILINE))
    out = tmp_path / "mixd-upgrade.deb"
    sh("dpkg-deb", "--root-owner-group", "-Znone", "-b", str(tree), str(out))
    return out
