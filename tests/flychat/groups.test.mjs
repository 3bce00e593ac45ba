// The FlyChat SDK's group calls against mixd through Prosody's WebSocket: every reply and
// every event another member receives, checked the way the SDK parses them.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { find, findAll, fromGroup, groupJid, newId, text, users } from "./sdk.mjs";

let alice, bob, carol, dave, eve;
const id = newId("g").toLowerCase().padEnd(16, "0").slice(0, 16);
const group = () => groupJid(id);

const isEvent = (jid, name) => (m) => fromGroup(jid)(m) && find(m, name) !== undefined;

before(async () => {
  [alice, bob, carol, dave, eve] = await users("alice", "bob", "carol", "dave", "eve");
});

after(async () => {
  await Promise.all([alice, bob, carol, dave, eve].map((u) => u.stop()));
});

test("createGroup: the creator and the listed users are in, each told of its own addition once", async () => {
  const reply = await alice.createGroup(id, "Trip", [bob.jid, carol.jid], { image: "img-token-1", thumbImage: "dGh1bWI=" });
  assert.equal(reply.attrs.type, "result");
  for (const member of [alice, bob, carol]) {
    const event = await member.next(isEvent(group(), "participant"), "userAdded");
    const item = find(event, "item");
    const participant = find(event, "participant");
    assert.equal(item.attrs.publisher, alice.jid);
    assert.equal(participant.attrs.nick, "Trip");
    assert.equal(participant.attrs.jid, member.jid, "told of its own addition");
  }
  // The profile set at creation comes as a profile update too, as the SDK expects.
  const profile = await carol.next(isEvent(group(), "info"), "profileUpdated at creation");
  assert.equal(text(find(profile, "info"), "nickName"), "Trip");
  await bob.next(isEvent(group(), "info"), "profileUpdated at creation");
  // Nobody is told of the others one by one (the SDK fetches the participants after the
  // event): a later message arrives with no other userAdded before it.
  const later = await alice.sendMessage(group(), "text", "after the creation");
  for (const member of [bob, carol]) {
    await member.next((m) => text(m, "submission-id") === later, "the later message");
    assert.ok(!member.messages.some(isEvent(group(), "participant")), `${member.name} was told of the others`);
  }
});

test("getGroupProfile and getGroupParticipants answer what the SDK reads", async () => {
  const profile = await bob.getGroupProfile(group());
  const item = find(profile, "group").getChildElements()[0];
  assert.equal(item.attrs.groupid, id);
  assert.ok(!Number.isNaN(Date.parse(item.attrs.createddate)));
  assert.ok(item.attrs.item_id);
  assert.equal(item.attrs.affiliation, "n");
  assert.equal(item.attrs.is_admin_blocked, "0");
  assert.equal(text(item, "nickName"), "Trip");
  assert.equal(text(item, "image"), "img-token-1");
  assert.equal(text(item, "thumbImage"), "dGh1bWI=");
  const own = find(await alice.getGroupProfile(group()), "group").getChildElements()[0];
  assert.equal(own.attrs.affiliation, "o");

  const participants = findAll(find(await carol.getGroupParticipants(group()), "participants"), "participant");
  const byJid = Object.fromEntries(participants.map((p) => [p.attrs.jid, p]));
  assert.deepEqual(Object.keys(byJid).sort(), [alice.jid, bob.jid, carol.jid].sort());
  assert.equal(byJid[alice.jid].attrs.affiliation, "o");
  assert.equal(byJid[bob.jid].attrs.affiliation, "n");
  for (const p of participants) {
    assert.ok(p.attrs.itemid && p.attrs.created_at && p.attrs.is_admin_blocked === "0");
    assert.equal(text(find(p, "user_profile"), "nickName"), p.attrs.jid.split("@")[0]);
  }

  await assert.rejects(eve.getGroupProfile(group()), (error) => {
    assert.equal(error.condition, "forbidden");
    assert.match(error.text ?? "", /not a participant/);
    return true;
  });
});

test("text and media messages reach the other members as sent", async () => {
  const body = "ENC:AES256:7f3a9c==";
  const msgId = await alice.sendMessage(group(), "text", body);
  for (const member of [bob, carol]) {
    const message = await member.next((m) => fromGroup(group())(m) && text(m, "body") === body, "the text message");
    assert.equal(text(message, "submission-id"), msgId);
    assert.equal(text(message, "jid"), alice.jid);
    const time = find(message, "timestamp").attrs.time;
    assert.match(time, /^\d{16}$/);
    assert.ok(Math.abs(Number(time) / 1000 - Date.now()) < 60000);
    assert.equal(find(message, "chatcontent").attrs.message_type, "text");
  }
  await alice.none((m) => text(m, "body") === body, "her own message");

  for (const kind of ["image", "audio", "video", "file"]) {
    const meta = JSON.stringify({ fileName: `a.${kind}`, fileSize: 1000, fileURL: `https://files.example/${kind}` });
    const media = await bob.sendMessage(group(), kind, `caption for ${kind}`, { meta_data: meta });
    const message = await carol.next((m) => text(m, "submission-id") === media, `the ${kind} message`);
    const content = find(message, "chatcontent");
    assert.equal(content.attrs.message_type, kind);
    assert.equal(content.attrs.meta_data, meta);
    assert.equal(text(message, "body"), `caption for ${kind}`);
    assert.equal(text(message, "jid"), bob.jid);
  }
});

test("setGroupProfile: everyone sees profileUpdated", async () => {
  await alice.setGroupProfile(group(), "Trip 2026", "img-token-2");
  const event = await carol.next(
    (m) => isEvent(group(), "info")(m) && find(m, "info").attrs.status === "group_profile_updated", "profileUpdated");
  const info = find(event, "info");
  assert.equal(info.attrs.status, "group_profile_updated");
  assert.equal(info.attrs.done_by, alice.jid);
  assert.equal(text(info, "nickName"), "Trip 2026");
  assert.equal(text(info, "image"), "img-token-2");
  await assert.rejects(carol.setGroupProfile(group(), "Mine now"), (error) => error.condition === "forbidden");
});

test("addParticipants, makeAsAdmin, removeParticipant, userExitGroup", async () => {
  await alice.addParticipants(group(), "Trip 2026", [dave.jid]);
  const added = await bob.next(
    (m) => isEvent(group(), "participant")(m) && find(m, "participant").attrs.jid === dave.jid, "userAdded for dave");
  assert.equal(find(added, "item").attrs.publisher, alice.jid);

  await alice.makeAsAdmin(group(), bob.jid);
  const admin = await carol.next((m) => isEvent(group(), "info")(m) && !!find(m, "info").attrs.new_admin, "madeAdmin");
  assert.equal(find(admin, "info").attrs.new_admin, bob.jid);
  assert.equal(find(admin, "info").attrs.done_by, alice.jid);
  await assert.rejects(carol.makeAsAdmin(group(), dave.jid), (error) => error.condition === "forbidden");

  // bob, now an admin, removes carol: userRemoved (actor is not the user).
  await bob.userExitGroup(group(), carol.jid);
  for (const member of [dave, carol]) {
    const removed = await member.next(isEvent(group(), "retract"), "userRemoved");
    assert.equal(find(removed, "item").attrs.publisher, bob.jid);
    assert.equal(text(find(removed, "item"), "jid"), carol.jid);
  }

  // dave leaves: userLeft (actor is the user).
  await dave.userExitGroup(group(), dave.jid);
  const left = await bob.next(
    (m) => isEvent(group(), "retract")(m) && text(find(m, "item"), "jid") === dave.jid, "userLeft");
  assert.equal(find(left, "item").attrs.publisher, dave.jid);
  assert.equal(text(find(left, "item"), "jid"), dave.jid);

  const remaining = findAll(find(await alice.getGroupParticipants(group()), "participants"), "participant");
  assert.deepEqual(remaining.map((p) => p.attrs.jid).sort(), [alice.jid, bob.jid].sort());
  await assert.rejects(dave.userExitGroup(group(), alice.jid), (error) => error.condition === "forbidden");
});

test("userDeleteGroup after the owner's own exit: the group is gone for everyone", async () => {
  await alice.userDeleteGroup(group());
  const deleted = await bob.next((m) => fromGroup(group())(m) && find(m, "groupdelete"), "the group deletion");
  assert.equal(find(deleted, "groupdelete").attrs.group_id, id);
  await assert.rejects(bob.getGroupProfile(group()), (error) => error.condition === "item-not-found");
});
