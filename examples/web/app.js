// The page's logic, on the SDK's own calls only (window.MirrorFly). Group JIDs are
// <id>@mix.<domain>; mixd answers the group calls and the REST bootstrap.
"use strict";

const config = window.MIXD_EXAMPLE;
const SDK = window.MirrorFly;
const $ = (id) => document.getElementById(id);
let me = "";
let current = null; // { jid, name }

const status = (text) => { $("status").textContent = text; };
const userJid = (name) => (name.includes("@") ? name : `${name}@${config.domain}`);
const names = (text) => text.split(/[\s,]+/).filter(Boolean).map(userJid);

function show(line, kind = "message") {
  const item = document.createElement("li");
  item.className = kind;
  item.textContent = line;
  $("messages").append(item);
  item.scrollIntoView();
}

async function call(what, promise) {
  const result = await promise;
  if (!result || result.statusCode !== 200) {
    status(`${what} failed: ${result && result.message}`);
    throw new Error(`${what}: ${JSON.stringify(result)}`);
  }
  return result;
}

async function listGroups() {
  const result = await call("listing groups", SDK.getGroupsList());
  const list = $("groups");
  list.replaceChildren();
  for (const group of result.data || []) {
    const item = document.createElement("li");
    item.textContent = group.groupName;
    item.dataset.jid = group.groupJid || SDK.getGroupJid(group.groupId);
    item.onclick = () => open({ jid: item.dataset.jid, name: group.groupName });
    if (current && current.jid === item.dataset.jid) {
      item.classList.add("selected");
      current.name = group.groupName;
      $("chat-title").textContent = group.groupName;
    }
    list.append(item);
  }
}

function open(group) {
  current = group;
  $("chat").hidden = false;
  $("chat-title").textContent = group.name;
  $("messages").replaceChildren();
  for (const item of $("groups").children) {
    item.classList.toggle("selected", item.dataset.jid === group.jid);
  }
}

async function sha256(blob) {
  const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A received attachment: a line with a button that downloads it through mixd. */
function showFile(sender, event) {
  const media = event.msgBody.media || {};
  const item = document.createElement("li");
  item.className = "file";
  item.textContent = `${sender}: file ${media.fileName || ""} (${media.file_size || "?"} bytes) `;
  const button = document.createElement("button");
  button.textContent = "download";
  button.onclick = () => {
    // The SDK encrypts attachments itself (its default); downloadMedia() looks the message up
    // in mixd (for the file's token and key), reads the file in parts from mixd, which serves
    // it to members only, and decrypts it. (mirrorfly-sdk 4.25.10 leaves the encryption's
    // padding, up to 16 bytes, after a file whose size is not a multiple of 16.)
    const downloaded = async ({ blob }) =>
      item.append(` downloaded ${blob.size} bytes, sha256 ${await sha256(blob)}`);
    const failed = (error) => item.append(` download failed: ${error && (error.message || error)}`);
    SDK.downloadMedia(event.msgId, () => {}, downloaded, failed);
  };
  item.append(button);
  $("messages").append(item);
}

const listeners = {
  connectionListener: (event) => status(`${me}: ${event.status}`),
  messageListener: (event) => {
    const text = event.msgBody && event.msgBody.message;
    const group = event.fromUserJid || event.chatId;
    if (event.msgType === "receiveMessage" && text !== undefined) {
      const sender = (event.publisherJid || "").split("@")[0];
      if (current && group && group.split("/")[0] === current.jid) {
        if (event.msgBody.message_type === "text") show(`${sender}: ${text}`);
        else showFile(sender, event);
      } else {
        status(`new message in ${group}`);
      }
    }
  },
  groupProfileListener: (event) => {
    if (event.msgType === "profileUpdated") show(`renamed to ${event.groupProfile && event.groupProfile.nickName || "…"}`, "event");
    listGroups().catch(() => {});
  },
};

$("login-form").onsubmit = async (event) => {
  event.preventDefault();
  me = $("username").value.trim();
  status("connecting…");
  await call("starting the SDK", SDK.initializeSDK({
    apiBaseUrl: config.apiBaseUrl, licenseKey: "mixd", callbackListeners: listeners,
  }));
  await call("logging in", SDK.connect(me, $("password").value));
  $("login").hidden = true;
  $("app").hidden = false;
  status(`logged in as ${me}`);
  await listGroups();
};

$("refresh").onclick = () => listGroups();

$("create-form").onsubmit = async (event) => {
  event.preventDefault();
  const name = $("group-name").value.trim();
  status(`creating ${name}…`);
  await call("creating the group", SDK.createGroup(name, names($("group-members").value)));
  status(`created ${name}`);
  $("create-form").reset();
  await listGroups();
};

$("add-form").onsubmit = async (event) => {
  event.preventDefault();
  await call("adding members", SDK.addParticipants(current.jid, current.name, names($("add-members").value)));
  $("add-form").reset();
  show("members added", "event");
};

$("rename-form").onsubmit = async (event) => {
  event.preventDefault();
  await call("renaming", SDK.setGroupProfile(current.jid, $("new-name").value.trim()));
  $("rename-form").reset();
  await listGroups();
};

$("send-form").onsubmit = async (event) => {
  event.preventDefault();
  const text = $("text").value;
  await call("sending", SDK.sendTextMessage(current.jid, text));
  show(`${me}: ${text}`, "mine");
  $("send-form").reset();
};

$("file-form").onsubmit = (event) => {
  event.preventDefault();
  const file = $("file").files[0];
  const params = { toJid: current.jid, messageType: "file", fileMessageParams: { file, caption: "" } };
  const failed = (error) => status(`sending the file failed: ${JSON.stringify(error)}`);
  SDK.sendMediaFileMessage(params, () => {}, () => show(`${me}: sent file ${file.name}`, "mine"), failed);
};

$("history").onclick = async () => {
  const result = await call("loading history", SDK.getChatMessages(current.jid, "up", "", 20));
  const rows = (result.data || []).slice().reverse();
  for (const row of rows) {
    const text = row.msgBody && row.msgBody.message;
    if (text !== undefined) show(`${(row.publisherId || row.fromUserId || "").split("@")[0]}: ${text}`, "history");
  }
};
