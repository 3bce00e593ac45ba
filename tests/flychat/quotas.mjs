// The quotas as the FlyChat SDK meets them. Not part of the suite `node --test` finds (the
// name does not end in .test.mjs): tests/test_quotas.py runs it alone, against a mixd started
// with small limits (three messages at once, then one a second; three signals a minute; two
// channels an hour; two users added an hour), as users no other test acts as.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { find, fromGroup, groupJid, newId, text, users } from "./sdk.mjs";

const STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
let hana, ivan, judy;
const groupId = (prefix) => newId(prefix).toLowerCase().padEnd(16, "0").slice(0, 16);
const first = groupId("qa");
const second = groupId("qb");

/** The error's condition and text, as the SDK reads a refused message. */
function errorOf(stanza) {
  const error = find(stanza, "error");
  const condition = error?.getChildElements().find((c) => c.attrs.xmlns === STANZAS && c.name !== "text");
  return { type: error?.attrs.type, condition: condition?.name, text: text(error, "text") };
}

const refused = (condition, pattern) => (error) => {
  assert.equal(error.condition, condition);
  assert.match(error.text ?? "", pattern);
  return true;
};

before(async () => {
  [hana, ivan, judy] = await users("hana", "ivan", "judy");
});

after(async () => {
  await Promise.all([hana, ivan, judy].map((u) => u.stop()));
});

test("createGroup beyond the hourly limit is refused with resource-constraint, and creates nothing", async () => {
  await hana.createGroup(first, "First", [ivan.jid]);
  await hana.createGroup(second, "Second", []);
  const third = groupId("qc");
  await assert.rejects(
    hana.createGroup(third, "Third", []),
    refused("resource-constraint", /^you have created channels too fast: at most 2 an hour; try again in \d+ minutes$/),
  );
  await assert.rejects(hana.getGroupProfile(groupJid(third)), refused("item-not-found", /./));
});

test("addParticipants beyond the hourly limit is refused with resource-constraint, and adds nobody", async () => {
  // ivan was the first of hana's two users this hour; judy is the second.
  await hana.addParticipants(groupJid(first), "First", [judy.jid]);
  await assert.rejects(
    hana.addParticipants(groupJid(second), "Second", [ivan.jid]),
    refused("resource-constraint", /^you have added or invited users too fast: at most 2 an hour; try again in \d+ minutes$/),
  );
  await assert.rejects(ivan.getGroupProfile(groupJid(second)), refused("forbidden", /not a participant/));
});

test("a message over the rate gets policy-violation with when to retry, and reaches nobody", async () => {
  const group = groupJid(first);
  const sent = [];
  for (const n of [1, 2, 3]) sent.push(await ivan.sendMessage(group, "text", `ENC:${n}`));
  for (const msgId of sent) await hana.next((m) => text(m, "submission-id") === msgId, `message ${msgId}`);
  const over = await ivan.sendMessage(group, "text", "ENC:4");
  const bounce = await ivan.next((m) => m.attrs.type === "error" && m.attrs.id === over, "the refusal");
  const error = errorOf(bounce);
  assert.equal(error.condition, "policy-violation");
  assert.equal(error.type, "modify");
  assert.match(error.text, /^you are sending messages too fast: at most 3 at once, then 60 a minute; try again in \d\.\d s$/);
  // Another member's quota is its own: judy's message arrives, and nothing of ivan's fourth
  // came before it.
  const later = await judy.sendMessage(group, "text", "ENC:judy");
  await hana.next((m) => text(m, "submission-id") === later, "judy's message");
  assert.ok(!hana.messages.some((m) => fromGroup(group)(m) && text(m, "submission-id") === over));
});

test("typing over the signal rate is refused with policy-violation", async () => {
  const group = groupJid(first);
  for (let n = 0; n < 3; n++) await judy.sendTypingStatus(group);
  await assert.rejects(
    judy.sendTypingStatus(group),
    refused("policy-violation", /^you are sending chat states, receipts, reactions and retractions too fast: at most 3 a minute; try again in \d+ s$/),
  );
  // Typing of another member still passes.
  await hana.sendTypingStatus(group);
});
