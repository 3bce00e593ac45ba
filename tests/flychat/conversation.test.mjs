// Typing, receipts with the message info, and delete for everyone, as the SDK sends them.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { find, findAll, fromGroup, groupJid, newId, text, users } from "./sdk.mjs";

let alice, bob, carol;
const id = newId("c").toLowerCase().padEnd(16, "0").slice(0, 16);
const group = () => groupJid(id);
const has = (name) => (m) => fromGroup(group())(m) && find(m, name) !== undefined;

before(async () => {
  [alice, bob, carol] = await users("alice", "bob", "carol");
  await alice.createGroup(id, "Talk", [bob.jid, carol.jid]);
});

after(async () => {
  await alice.userDeleteGroup(group());
  await Promise.all([alice, bob, carol].map((u) => u.stop()));
});

test("sendTypingStatus and sendTypingGoneStatus reach the others only", async () => {
  await alice.sendTypingStatus(group());
  for (const member of [bob, carol]) {
    const typing = await member.next(has("composing"), "composing");
    assert.equal(find(typing, "composing").attrs.group_id, id);
    assert.equal(text(typing, "jid"), alice.jid);
  }
  await alice.sendTypingGoneStatus(group());
  const gone = await bob.next(has("gone"), "gone");
  assert.equal(find(gone, "gone").attrs.group_id, id);
  await alice.none(has("composing"), "her own typing");
});

test("receipts, sent to the sender as the SDK does: the sender learns delivered and seen when every member has it", async () => {
  const msgId = await alice.sendMessage(group(), "text", "ENC:receipts");
  for (const member of [bob, carol]) await member.next((m) => text(m, "submission-id") === msgId, "the message");

  await bob.sendReceipt(alice.jid, "delivered", msgId, group());
  // The receipt travels bob → server → mixd while alice asks: wait until it has arrived.
  const infoOf = async () => {
    const info = await alice.getGroupMsgInfo(group(), msgId);
    return [info, Object.fromEntries(findAll(find(info, "group"), "item").map((i) => [i.attrs.user, i.attrs]))];
  };
  let [info, items] = await infoOf();
  for (let i = 0; i < 100 && items[bob.jid].status === "0"; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    [info, items] = await infoOf();
  }
  assert.equal(find(info, "query").attrs.message_id, msgId);
  assert.equal(items[bob.jid].status, "1");
  assert.match(items[bob.jid].receivetime, /^\d{16}$/);
  assert.equal(items[carol.jid].status, "0");
  await alice.none((m) => find(m, "delivered") !== undefined, "delivered before everyone has it", 300);

  await carol.sendReceipt(alice.jid, "delivered", msgId, group());
  const delivered = await alice.next((m) => find(m, "delivered")?.attrs.id === msgId, "the aggregated delivered");
  assert.equal(find(delivered, "delivered").attrs.message_status, "1");
  assert.equal(find(delivered, "delivered").attrs.group_id, id);

  await bob.sendReceipt(alice.jid, "seen", msgId, group());
  await carol.sendReceipt(alice.jid, "seen", msgId, group());
  const seen = await alice.next((m) => find(m, "seen")?.attrs.id === msgId, "the aggregated seen");
  assert.equal(find(seen, "seen").attrs.message_status, "2");
  const [, final] = await infoOf();
  assert.equal(final[bob.jid].status, "2");
  assert.match(final[carol.jid].seentime, /^\d{16}$/);
});

test("delete for everyone: the sender, or an admin; everyone is told", async () => {
  const mine = await bob.sendMessage(group(), "text", "ENC:oops");
  await carol.next((m) => text(m, "submission-id") === mine, "bob's message");
  await bob.recall(group(), [mine]);
  for (const member of [alice, bob, carol]) {
    const recall = await member.next(has("recall"), "the recall");
    assert.deepEqual(
      { ...find(recall, "recall").attrs, xmlns: undefined },
      { xmlns: undefined, chat_type: "normal", group_id: id, id: mine });
  }

  const carols = await carol.sendMessage(group(), "text", "ENC:spam");
  await alice.next((m) => text(m, "submission-id") === carols, "carol's message");
  const alices = await alice.sendMessage(group(), "text", "ENC:owner");
  await carol.next((m) => text(m, "submission-id") === alices, "alice's message");
  await assert.rejects(carol.recall(group(), [alices]), (error) => {
    assert.equal(error.condition, "forbidden");
    return true;
  });
  await alice.recall(group(), [carols]);
  const recall = await carol.next(has("recall"), "the moderation");
  assert.equal(find(recall, "recall").attrs.id, carols);
  assert.equal(text(recall, "jid"), alice.jid);
});
