// Group administration in the FlyChat dialect: mixd's operations shaped like the SDK's
// (docs/protocol.md, "FlyChat administration"), and every event another member receives,
// checked field by field the way the SDK reads events.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { xml } from "@xmpp/client";

import { SERVICE, find, findAll, fromGroup, groupJid, newId, text, users } from "./sdk.mjs";

let alice, bob, carol, dave, eve;

const newGroup = () => newId("a").toLowerCase().padEnd(16, "0").slice(0, 16);
const participant = (jid) => xml("participant", {}, jid);
// mixd's own events, in an element the SDK passes by (it takes every <info> for madeAdmin).
const adminEvent = (jid, status) => (m) => fromGroup(jid)(m) && find(m, "admin")?.attrs.status === status;
/** An event's attributes without its namespace declaration. */
const fieldsOf = (element) => {
  const { xmlns, ...attrs } = element.attrs;
  return attrs;
};
const rejects = (promise, condition, pattern) =>
  assert.rejects(promise, (error) => {
    assert.equal(error.condition, condition);
    if (pattern) assert.match(error.text ?? "", pattern);
    return true;
  });

/** A group made by alice with `members`, its JID returned once everyone has seen the adds. */
async function group(members) {
  const id = newGroup();
  await alice.createGroup(id, "Club", members.map((m) => m.jid));
  const jid = groupJid(id);
  // Each is told of its own addition, once.
  for (const member of [alice, ...members]) {
    await member.next((m) => fromGroup(jid)(m) && find(m, "participant")?.attrs.jid === member.jid, "userAdded");
  }
  return jid;
}

before(async () => {
  [alice, bob, carol, dave, eve] = await users("alice", "bob", "carol", "dave", "eve");
});

after(async () => {
  await Promise.all([alice, bob, carol, dave, eve].map((u) => u.stop()));
});

test("invitation: the invitee is told, hears nothing until it joins, then is in", async () => {
  const jid = await group([bob]);
  await alice.query("set", jid, "set_group_settings", { policy: "invite" });
  const settings = await bob.next(adminEvent(jid, "group_settings_updated"), "group_settings_updated");
  assert.deepEqual(
    fieldsOf(find(settings, "admin")),
    { status: "group_settings_updated", done_by: alice.jid, policy: "invite", muted: "0", max_members: "10000", jids_hidden: "0" });
  await rejects(dave.query("set", jid, "join_group"), "forbidden", /invitation/);
  await rejects(bob.query("set", jid, "invite_participants", {}, xml("participants", {}, participant(dave.jid))), "forbidden");

  await alice.query("set", jid, "invite_participants", {}, xml("participants", {}, participant(dave.jid)));
  const invited = find(await bob.next(adminEvent(jid, "user_invited"), "user_invited"), "admin");
  assert.deepEqual(fieldsOf(invited), { status: "user_invited", done_by: alice.jid, jid: dave.jid });
  const invitation = find(await dave.next((m) => fromGroup(jid)(m) && find(m, "invitation"), "the invitation"), "invitation");
  assert.equal(text(invitation, "inviter"), alice.jid);
  assert.equal(text(invitation, "invitee"), dave.jid);
  assert.equal(text(invitation, "channel"), jid);
  assert.ok(text(invitation, "token"));
  const before = await alice.sendMessage(jid, "text", "not for dave yet");
  await bob.next((m) => text(m, "submission-id") === before, "the message");
  await dave.none((m) => text(m, "submission-id") === before, "a message before joining");

  const joined = await dave.query("set", jid, "join_group");
  assert.equal(find(joined, "query").attrs.state, "joined");
  const added = await bob.next((m) => fromGroup(jid)(m) && find(m, "participant")?.attrs.jid === dave.jid, "userAdded");
  assert.equal(find(added, "item").attrs.publisher, dave.jid);
  const after = await alice.sendMessage(jid, "text", "welcome");
  await dave.next((m) => text(m, "submission-id") === after, "a message after joining");

  // Open: anyone joins at once.
  await alice.query("set", jid, "set_group_settings", { policy: "open" });
  const open = await carol.query("set", jid, "join_group");
  assert.equal(find(open, "query").attrs.state, "joined");
  await bob.next((m) => fromGroup(jid)(m) && find(m, "participant")?.attrs.jid === carol.jid, "userAdded for carol");
});

test("join requests: every admin is told, the first decision stands, the requester learns it", async () => {
  const jid = await group([bob, carol]);
  await alice.makeAsAdmin(jid, bob.jid);
  await alice.query("set", jid, "set_group_settings", { policy: "request" });
  const asked = await eve.query("set", jid, "join_group");
  assert.equal(find(asked, "query").attrs.state, "requested");
  for (const admin of [alice, bob]) {
    const request = find(await admin.next((m) => fromGroup(jid)(m) && find(m, "join-request"), "the join request"), "join-request");
    assert.equal(request.attrs.jid, eve.jid);
    assert.equal(request.attrs.channel, jid);
  }
  await carol.none((m) => fromGroup(jid)(m) && find(m, "join-request"), "a join request (not an admin)");
  const requested = find(await carol.next(adminEvent(jid, "join_requested"), "join_requested"), "admin");
  assert.deepEqual(fieldsOf(requested), { status: "join_requested", done_by: eve.jid, jid: eve.jid });
  const pending = findAll(await bob.query("get", jid, "get_join_requests"), "requested");
  assert.deepEqual(pending.map((p) => p.attrs.jid), [eve.jid]);

  await bob.query("set", jid, "decide_join_request", { approve: "1" }, participant(eve.jid));
  await rejects(alice.query("set", jid, "decide_join_request", { approve: "0" }, participant(eve.jid)), "conflict", /already approved/);
  const decision = find(await eve.next((m) => fromGroup(jid)(m) && find(m, "decision"), "the decision"), "decision");
  assert.deepEqual({ ...decision.attrs },
    { xmlns: "urn:mixd:admin:0", channel: jid, kind: "request", jid: eve.jid, accepted: "true", by: bob.jid });
  const added = await carol.next((m) => fromGroup(jid)(m) && find(m, "participant")?.attrs.jid === eve.jid, "userAdded");
  assert.equal(find(added, "item").attrs.publisher, bob.jid);
  assert.equal(findAll(await alice.query("get", jid, "get_join_requests"), "requested").length, 0);
});

test("revoke, transfer, mute, ban: each event as the other members read it", async () => {
  const jid = await group([bob, carol, dave]);
  await alice.makeAsAdmin(jid, bob.jid);
  await carol.next((m) => fromGroup(jid)(m) && find(m, "info")?.attrs.new_admin === bob.jid, "madeAdmin");

  await alice.query("set", jid, "revoke_admin", {}, participant(bob.jid));
  const revoked = find(await carol.next(adminEvent(jid, "admin_revoked"), "admin_revoked"), "admin");
  assert.deepEqual(fieldsOf(revoked), { status: "admin_revoked", done_by: alice.jid, jid: bob.jid });

  await rejects(bob.query("set", jid, "transfer_ownership", {}, participant(carol.jid)), "forbidden");
  await alice.query("set", jid, "transfer_ownership", {}, participant(bob.jid));
  const owner = find(await carol.next(adminEvent(jid, "owner_changed"), "owner_changed"), "admin");
  assert.deepEqual(fieldsOf(owner), { status: "owner_changed", done_by: alice.jid, new_owner: bob.jid });
  const demoted = await carol.next((m) => fromGroup(jid)(m) && find(m, "info")?.attrs.new_admin === alice.jid, "madeAdmin for alice");
  assert.equal(find(demoted, "info").attrs.done_by, alice.jid);
  const roles = Object.fromEntries(findAll(find(await carol.getGroupParticipants(jid), "participants"), "participant")
    .map((p) => [text(p, "jid"), text(p, "affiliation")]));
  assert.deepEqual(roles, { [alice.jid]: "o", [bob.jid]: "o", [carol.jid]: "n", [dave.jid]: "n" });

  const until = String((Date.now() + 3600_000) * 1000);
  await bob.query("set", jid, "mute_participant", { until }, participant(carol.jid));
  const muted = find(await dave.next(adminEvent(jid, "user_muted"), "user_muted"), "admin");
  assert.deepEqual(fieldsOf(muted), { status: "user_muted", done_by: bob.jid, jid: carol.jid, until });
  const refused = await carol.sendMessage(jid, "text", "let me speak");
  const error = await carol.next((m) => m.attrs.type === "error" && m.attrs.id === refused, "the refusal");
  assert.match(text(error, "text"), /muted/);
  await dave.none((m) => text(m, "body") === "let me speak", "a muted member's message");

  await bob.query("set", jid, "set_access", { list: "banned", entry: dave.jid, present: "1" });
  const banned = find(await carol.next(adminEvent(jid, "access_updated"), "access_updated"), "admin");
  assert.deepEqual(fieldsOf(banned),
    { status: "access_updated", done_by: bob.jid, list: "banned", entry: dave.jid, present: "1" });
  const removed = await carol.next((m) => fromGroup(jid)(m) && find(m, "retract") && text(find(m, "item"), "jid") === dave.jid, "userRemoved");
  assert.equal(find(removed, "item").attrs.publisher, bob.jid);
  await rejects(dave.query("set", jid, "join_group"), "forbidden", /banned/);
});

test("the owner's exit passes the ownership; the last one out deletes the group", async () => {
  const jid = await group([bob, carol]);
  await alice.makeAsAdmin(jid, carol.jid);
  await alice.userExitGroup(jid, alice.jid);
  const owner = find(await bob.next(adminEvent(jid, "owner_changed"), "owner_changed"), "admin");
  assert.deepEqual(fieldsOf(owner), { status: "owner_changed", done_by: alice.jid, new_owner: carol.jid });
  const profile = find(await carol.getGroupProfile(jid), "group").getChildElements()[0];
  assert.equal(profile.attrs.role, "owner");

  await carol.userExitGroup(jid, carol.jid);
  const next = find(await bob.next(adminEvent(jid, "owner_changed"), "owner_changed"), "admin");
  assert.equal(next.attrs.new_owner, bob.jid);
  await bob.userExitGroup(jid, bob.jid);
  await rejects(bob.getGroupProfile(jid), "item-not-found");
});

test("getUserGroups lists the user's groups with its role", async () => {
  const jid = await group([bob]);
  await alice.makeAsAdmin(jid, bob.jid);
  const reply = await bob.query("get", SERVICE(), "get_user_groups");
  const item = findAll(find(reply, "groups"), "item").find((i) => i.attrs.groupjid === jid);
  assert.equal(item.attrs.role, "admin");
  assert.equal(item.attrs.affiliation, "o");
  assert.equal(text(item, "nickName"), "Club");
});

test("createGroup without an id: mixd makes one up and names it", async () => {
  const reply = await alice.createGroup("", "Nameless", [bob.jid]);
  const created = find(reply, "query");
  assert.match(created.attrs.group_id, /^[0-9a-f]{32}$/);
  assert.equal(created.attrs.groupjid, groupJid(created.attrs.group_id));
  const added = await bob.next((m) => fromGroup(created.attrs.groupjid)(m) && find(m, "participant")?.attrs.jid === bob.jid, "userAdded");
  assert.equal(find(added, "participant").attrs.nick, "Nameless");
});
