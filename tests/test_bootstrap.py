"""The REST bootstrap the FlyChat SDK calls before it speaks XMPP (src/bootstrap/), on Prosody
and on ejabberd: the password checked by the XMPP server itself, the encrypted configuration
the SDK decrypts, the caller's groups from mixd's directory, CORS for the browser."""

import base64
import hashlib
import json
import subprocess
import tempfile
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

import pytest

from conftest import connected, run
from harness.sdk import serve_bootstrap
from harness.servers import MIX_DOMAIN, PASSWORD, USER_DOMAIN, Mixd

G = "jabber:iq:mixgroupchat"


@pytest.fixture(scope="module")
def bootstrap(server):
    workdir = tempfile.mkdtemp(prefix="mixd-db-")
    daemon = Mixd(server, workdir)
    api = serve_bootstrap(daemon, server, f"{workdir}/media")
    daemon.start()
    daemon.wait_for_log("bootstrap listening")
    yield daemon, api
    daemon.stop()


def call(url, method="GET", body=None, token=None, headers=None):
    """(HTTP status, decoded JSON body, response headers)."""
    request = urllib.request.Request(url, method=method)
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("authorization", token)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None, response.headers
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None, error.headers


def login(base, user, password=PASSWORD):
    return call(f"{base}/login", "POST", {"username": user, "password": password, "type": "web"})


def sdk_decrypt(user, sealed):
    """What the SDK does with /users/config: AES-256-CBC, the key the UTF-8 text of the first
    32 hex digits of sha256(user * 3), the IV its constant ddc0f15cc2c90fca."""
    key = hashlib.sha256((user * 3).encode()).hexdigest()[:32].encode()
    result = subprocess.run(
        ["openssl", "enc", "-d", "-aes-256-cbc", "-K", key.hex(), "-iv", b"ddc0f15cc2c90fca".hex()],
        input=base64.b64decode(sealed), capture_output=True, check=True,
    )
    return json.loads(result.stdout)


def test_login_checks_the_password_with_the_xmpp_server(bootstrap):
    _, base = bootstrap
    status, body, _ = login(base, "alice")
    assert status == 200 and body["status"] == 200 and body["data"]["token"]
    status, body, _ = login(base, "alice", "not-the-password")
    assert status == 401 and body["status"] == 401 and body["message"]
    status, body, _ = login(base, "nobody-registered")
    assert status == 401 and body["message"]
    status, body, _ = login(base, "a@b")
    assert status == 400 and "username" in body["message"]


def test_config_is_encrypted_for_the_user_and_needs_the_token(bootstrap, server):
    _, base = bootstrap
    token = login(base, "bob")[1]["data"]["token"]
    status, body, _ = call(f"{base}/users/config", token=token)
    assert status == 200 and body["status"] == 200
    config = sdk_decrypt("bob", body["data"])
    assert config["xmppHost"] == USER_DOMAIN
    assert config["xmppPortWeb"] == str(server.http_port)
    assert config["groupChat"] is True and config["attachment"] is True
    for refused in (None, "forged.1.token", token + "x"):
        status, body, _ = call(f"{base}/users/config", token=refused)
        assert status == 401 and body["message"]


def test_group_list_comes_from_mixds_directory(bootstrap, server, channel_name):
    _, base = bootstrap
    alice_token = login(base, "alice")[1]["data"]["token"]
    carol_token = login(base, "carol")[1]["data"]["token"]

    async def create():
        async with connected(server, "alice/Web-1") as (alice,):
            iq = alice.make_iq(ito=MIX_DOMAIN, itype="set")
            query = ET.SubElement(iq.xml, f"{{{G}}}query", status="create_group", group_id=channel_name)
            vcard = ET.SubElement(ET.SubElement(query, f"{{{G}}}profile"), "{vcard-temp}vCard")
            ET.SubElement(vcard, "{vcard-temp}nickName").text = "Listed"
            ET.SubElement(vcard, "{vcard-temp}history").text = "1"
            members = ET.SubElement(query, f"{{{G}}}participants")
            ET.SubElement(members, f"{{{G}}}participant").text = f"carol@{USER_DOMAIN}"
            await iq.send(timeout=10)

    run(create())
    lists = {}
    for user, token in (("alice", alice_token), ("carol", carol_token)):
        status, body, _ = call(f"{base}/group/groupList?licenseKey=&size=1000", token=token)
        assert status == 200 and body["status"] == 200
        lists[user] = {g["groupId"]: g for g in body["data"]["groupsList"]}
    for user, affiliation in (("alice", "o"), ("carol", "n")):
        group = lists[user][channel_name]
        assert group["groupName"] == "Listed" and group["affiliation"] == affiliation
        assert group["historyEnabled"] == 1 and group["groupCreateDate"]
    dave_token = login(base, "dave")[1]["data"]["token"]
    status, body, _ = call(f"{base}/group/groupList", token=dave_token)
    assert status == 200 and channel_name not in {g["groupId"] for g in body["data"]["groupsList"]}
    status, _, _ = call(f"{base}/group/groupList")
    assert status == 401


def test_cors_preflight_is_answered(bootstrap):
    _, base = bootstrap
    status, _, headers = call(
        f"{base}/users/config", "OPTIONS",
        headers={"Origin": "http://localhost", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "authorization,content-type"},
    )
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "authorization" in headers["Access-Control-Allow-Headers"]
    status, body, headers = call(f"{base}/no/such/route")
    assert status == 404 and body["message"] and headers["Access-Control-Allow-Origin"] == "*"
