"""Media for the FlyChat SDK's attachments (src/bootstrap/media/), on Prosody and on ejabberd.
The requests are shaped as mirrorfly-sdk 4.25.10 sends them (read from its bundle): a JSON
`POST <base>/media/upload` that answers a fileToken, one signed URL per 5 MiB part and a
commit URL, a PUT of each part to its URL and, for more than one part, a POST to the commit
URL, both without the token; then, for a member, `GET <base>/media/generatePreAuthenticationUrlDownload?fileToken=`
and ranged GETs of the URL it answers (or `GET <base>/media/<fileToken>` for the whole file).
The file must come back byte for byte to a member and be refused to anyone else."""

import os
import tempfile
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

import pytest

from conftest import connected, run
from harness.sdk import serve_bootstrap
from harness.servers import MIX_DOMAIN, USER_DOMAIN, Mixd
from test_bootstrap import call, login

G = "jabber:iq:mixgroupchat"
BASE = "/api/v1"
PART = 5 * 1024 * 1024
LIMIT = PART + 1024 * 1024


@pytest.fixture(scope="module")
def media(server):
    workdir = tempfile.mkdtemp(prefix="mixd-db-")
    media_dir = os.path.join(workdir, "media")
    daemon = Mixd(server, workdir)
    api = serve_bootstrap(daemon, server, media_dir, "--bootstrap-media-max-bytes", str(LIMIT))
    daemon.start()
    daemon.wait_for_log("bootstrap listening")
    yield api, media_dir
    daemon.stop()


def raw(url, method="GET", data=None, headers=None):
    """(HTTP status, body bytes, response headers), for the routes that carry file bytes."""
    request = urllib.request.Request(url, method=method, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers


def group_iq(client, to, status, build):
    iq = client.make_iq(ito=to, itype="set")
    query = ET.SubElement(iq.xml, f"{{{G}}}query", status=status)
    build(query)
    return iq


def create_group(server, name, members):
    """alice creates `name` with `members`, as the SDK's createGroup does."""

    def build(query):
        query.set("group_id", name)
        vcard = ET.SubElement(ET.SubElement(query, f"{{{G}}}profile"), "{vcard-temp}vCard")
        ET.SubElement(vcard, "{vcard-temp}nickName").text = "Pictures"
        participants = ET.SubElement(query, f"{{{G}}}participants")
        for member in members:
            ET.SubElement(participants, f"{{{G}}}participant").text = f"{member}@{USER_DOMAIN}"

    async def go():
        async with connected(server, "alice/Web-1") as (alice,):
            await group_iq(alice, MIX_DOMAIN, "create_group", build).send(timeout=10)

    run(go())


def leave_group(server, user, name):
    """`user` leaves, as the SDK's userExitGroup does."""

    def build(query):
        ET.SubElement(query, f"{{{G}}}participant").text = f"{user}@{USER_DOMAIN}"

    async def go():
        async with connected(server, f"{user}/Web-1") as (client,):
            await group_iq(client, f"{name}@{MIX_DOMAIN}", "user_exit_group", build).send(timeout=10)

    run(go())


def start_upload(base, token, group, parts, chat_type="groupchat", headers=None):
    body = {"contentType": "image/png", "extension": "png", "parts": parts,
            "messageId": "BAmsg1", "toUser": group, "type": chat_type}
    return call(f"{base}/media/upload", "POST", body, token=token, headers=headers)


def upload(base, token, group, content):
    """The SDK's upload of `content`: start, PUT each part to its URL, commit. The fileToken."""
    parts = [content[i:i + PART] for i in range(0, len(content), PART)]
    status, body, _ = start_upload(base, token, group, len(parts))
    assert status == 200 and body["status"] == 200, body
    urls = body["data"]["uploadUrls"]
    assert len(urls) == len(parts)
    for url, part in zip(urls, parts):
        status, _, _ = raw(url, "PUT", part, {"Content-Type": "image/png"})
        assert status == 200
    # The SDK confirms a file of several parts at commitUrl when storage is "oracle" (the
    # one kind its browser build can confirm).
    assert body["data"]["storage"] == "oracle"
    status, committed, _ = call(body["data"]["commitUrl"], "POST")
    assert status == 200 and committed["status"] == 200, committed
    return body["data"]["fileToken"]


def download(base, token, file_token, size):
    """The SDK's download of a file uploaded in parts: a signed URL, read 5 MiB at a time."""
    status, body, _ = call(
        f"{base}/media/generatePreAuthenticationUrlDownload?fileToken={file_token}", token=token)
    if status != 200:
        return status, body
    content = b""
    while len(content) < size:
        first = len(content)
        status, chunk, headers = raw(body["data"], headers={"Range": f"bytes={first}-{first + PART - 1}"})
        assert status == 206 and headers["Content-Range"].startswith(f"bytes {first}-")
        content += chunk
    return 200, content


def test_a_member_downloads_the_file_byte_for_byte_and_others_are_refused(
        media, server, channel_name):
    base, media_dir = media
    create_group(server, channel_name, ["bob"])
    tokens = {user: login(base, user)[1]["data"]["token"] for user in ("alice", "bob", "carol")}
    content = os.urandom(PART + 12345)

    file_token = upload(base, tokens["alice"], channel_name, content)
    assert len(file_token) >= 32 and file_token not in content.hex()
    assert sorted(os.listdir(media_dir)) == sorted([file_token, f"{file_token}.json"])

    assert download(base, tokens["bob"], file_token, len(content)) == (200, content)
    status, whole, headers = raw(f"{base}/media/{file_token}", headers={"authorization": tokens["bob"]})
    assert status == 200 and whole == content and headers["Content-Type"] == "image/png"

    status, body = download(base, tokens["carol"], file_token, len(content))
    assert status == 403 and body["message"]
    status, body, _ = call(f"{base}/media/{file_token}", token=tokens["carol"])
    assert status == 403 and body["message"]
    status, body, _ = call(f"{base}/media/{file_token}")
    assert status == 401 and body["message"]

    # Membership is asked each time: once bob has left, he is refused as well.
    leave_group(server, "bob", channel_name)
    status, body = download(base, tokens["bob"], file_token, len(content))
    assert status == 403 and body["message"]


def test_uploads_are_for_members_within_the_limit(media, server, channel_name):
    base, _ = media
    create_group(server, channel_name, ["bob"])
    alice = login(base, "alice")[1]["data"]["token"]
    carol = login(base, "carol")[1]["data"]["token"]

    status, body, _ = start_upload(base, carol, channel_name, 1)
    assert status == 403 and body["message"]
    status, body, _ = start_upload(base, None, channel_name, 1)
    assert status == 401 and body["message"]
    status, body, _ = start_upload(base, alice, channel_name, 1, chat_type="chat")
    assert status == 400 and "group" in body["message"]
    status, body, _ = start_upload(base, alice, channel_name, 3)
    assert status == 413 and str(LIMIT) in body["message"]
    status, body, _ = call(f"{base}/media/upload", "POST", token=alice)
    assert status == 400 and body["message"]

    # The signed URLs are where the client reached the bootstrap, as the proxy says.
    status, body, _ = start_upload(base, alice, channel_name, 2,
                                   headers={"Host": "api.chat.test", "X-Forwarded-Proto": "https"})
    assert status == 200
    first, second = body["data"]["uploadUrls"]
    assert first.startswith(f"https://api.chat.test{BASE}/media/")
    local = lambda url: url.replace(f"https://api.chat.test{BASE}", base)  # noqa: E731
    # The last part may only fill the file up to the limit.
    status, refused, _ = raw(local(second), "PUT", b"x" * (LIMIT - PART + 1))
    assert status == 413 and b"at most" in refused
    # An unfinished file is not committed; a forged URL writes nothing.
    commit = local(body["data"]["commitUrl"])
    status, refused, _ = call(commit, "POST")
    assert status == 409 and refused["message"]
    status, refused, _ = raw(local(first)[:-2] + "xx", "PUT", b"forged")
    assert status == 403 and b"not valid" in refused
    status, refused, _ = call(commit.replace("/commit/", "/commit/x"), "POST")
    assert status == 403 and refused["message"]
    assert raw(local(first), "PUT", b"y" * PART)[0] == 200
    assert raw(local(second), "PUT", b"z")[0] == 200
    status, body, _ = call(commit, "POST")
    assert status == 200 and body["status"] == 200
