// getChatMessages and getMediaMessages, sent to the user's own server as the SDK does (the
// Prosody module brings them to mixd): pages up and down with lastRowId and limit, notices
// among the messages, recalled messages marked, media paged 3 then 10.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { find, findAll, groupJid, newId, text, users } from "./sdk.mjs";

let alice, bob, carol;
const id = newId("h").toLowerCase().padEnd(16, "0").slice(0, 16);
const group = () => groupJid(id);
const sent = [];
const rows = (reply) => findAll(find(reply, "history"), "message").map((m) => m.attrs);

before(async () => {
  [alice, bob, carol] = await users("alice", "bob", "carol");
  await alice.createGroup(id, "History", [bob.jid]);
  for (let i = 0; i < 25; i++) {
    const sender = i % 2 ? bob : alice;
    const other = i % 2 ? alice : bob;
    const msgId = await sender.sendMessage(group(), "text", `ENC:${i}`);
    await other.next((m) => text(m, "submission-id") === msgId, `message ${i}`);
    sent.push(msgId);
  }
  for (let i = 0; i < 14; i++) {
    const msgId = await alice.sendMessage(group(), i % 2 ? "image" : "video", `media ${i}`,
      { meta_data: JSON.stringify({ fileURL: `https://files.example/${i}` }) });
    await bob.next((m) => text(m, "submission-id") === msgId, `media ${i}`);
    sent.push(msgId);
  }
  await alice.addParticipants(group(), "History", [carol.jid]);
  await bob.recall(group(), [sent[1]]);
});

after(async () => {
  await alice.userDeleteGroup(group());
  await Promise.all([alice, bob, carol].map((u) => u.stop()));
});

test("getChatMessages pages up from the newest and down again", async () => {
  const newest = rows(await bob.getChatMessages(group(), "up", "", 10));
  assert.equal(newest.length, 10);
  // Newest first: the last notice (carol added by alice), then the media.
  assert.equal(newest[0].msgtype, "0");
  assert.equal(newest[0].message_notification, "2");
  assert.equal(newest[0].to_notification, carol.jid);
  assert.equal(newest[0].user, alice.jid);
  assert.equal(newest[1].msgid, sent[38]);
  for (const row of newest) {
    for (const key of ["row_id", "time", "message_time", "status", "recallstatus", "body", "msgid", "user",
      "fromuser", "message_notification", "to_notification", "msgtype", "gstatus", "edit_msg_status", "editmsgid"]) {
      assert.ok(key in row, `${key} in every row`);
    }
  }
  // Row ids are opaque (docs/protocol.md), in digits as the SDK's getChatMessages wants a
  // lastRowId; kept as strings, never numbers (a JavaScript number drops the low digits).
  const rowIds = newest.map((r) => r.row_id);
  for (const rowId of rowIds) assert.match(rowId, /^\d+$/);
  assert.equal(new Set(rowIds).size, rowIds.length);

  let older = [];
  let last = newest[newest.length - 1].row_id;
  for (;;) {
    const page = rows(await bob.getChatMessages(group(), "up", last, 10));
    if (page.length === 0) break;
    older.push(...page);
    last = page[page.length - 1].row_id;
  }
  const all = [...newest, ...older].reverse();
  const messages = all.filter((r) => r.msgtype !== "0");
  assert.deepEqual(messages.map((r) => r.msgid), sent);
  assert.equal(messages[0].body, "ENC:0");
  assert.equal(messages[0].fromuser, alice.jid);
  assert.equal(messages[1].recallstatus, "1");
  assert.equal(messages[1].body, "");
  // Notices: the creation with its profile, alice and bob added at creation, later carol.
  const notices = all.filter((r) => r.msgtype === "0").map((r) => [r.message_notification, r.to_notification]);
  assert.deepEqual(notices, [["1", ""], ["4", ""], ["2", alice.jid], ["2", bob.jid], ["2", carol.jid]]);

  const down = rows(await bob.getChatMessages(group(), "down", all[4].row_id, 3));
  assert.deepEqual(down.map((r) => r.row_id), all.slice(5, 8).map((r) => r.row_id));
  const defaultLimit = rows(await carol.getChatMessages(group(), "down", "", ""));
  assert.equal(defaultLimit.length, 20);
});

test("getMediaMessages: three, then ten a page, by the last message id", async () => {
  const first = findAll(find(await bob.getMediaMessages(group()), "mediamessages"), "message").map((m) => m.attrs);
  assert.deepEqual(first.map((m) => m.msgid), [sent[38], sent[37], sent[36]]);
  assert.equal(JSON.parse(first[0].meta_data).fileURL, "https://files.example/13");
  assert.equal(first[0].body, "media 13");
  assert.ok(first[0].message_time);
  const second = findAll(find(await bob.getMediaMessages(group(), first[2].msgid), "mediamessages"), "message");
  assert.deepEqual(second.map((m) => m.attrs.msgid), sent.slice(26, 36).reverse());
  const third = findAll(find(await bob.getMediaMessages(group(), sent[26]), "mediamessages"), "message");
  assert.deepEqual(third.map((m) => m.attrs.msgid), [sent[25]]);
});

test("a group created without shared history: members added later see only what follows", async () => {
  const [dave] = await users("dave");
  const closed = newId("n").toLowerCase().padEnd(16, "0").slice(0, 16);
  try {
    await alice.createGroup(closed, "Closed", [bob.jid], { history: 0 });
    const profile = find(await bob.getGroupProfile(groupJid(closed)), "group");
    assert.equal(text(profile, "history"), "0");
    const early = await alice.sendMessage(groupJid(closed), "text", "ENC:before dave");
    await bob.next((m) => text(m, "submission-id") === early, "the early message");
    await alice.addParticipants(groupJid(closed), "Closed", [dave.jid]);
    const late = await alice.sendMessage(groupJid(closed), "text", "ENC:after dave");
    await dave.next((m) => text(m, "submission-id") === late, "the late message");
    const seen = rows(await dave.getChatMessages(groupJid(closed), "up", "", 50)).filter((r) => r.msgtype !== "0");
    assert.deepEqual(seen.map((r) => r.msgid), [late]);
    const all = rows(await bob.getChatMessages(groupJid(closed), "up", "", 50)).filter((r) => r.msgtype !== "0");
    assert.deepEqual(all.map((r) => r.msgid), [late, early]);
  } finally {
    await alice.userDeleteGroup(groupJid(closed));
    await dave.stop();
  }
});

test("history is for members", async () => {
  const [eve] = await users("eve");
  try {
    await assert.rejects(eve.getChatMessages(group()), (error) => {
      assert.equal(error.condition, "forbidden");
      return true;
    });
  } finally {
    await eve.stop();
  }
});
