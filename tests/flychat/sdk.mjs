// A hand-written FlyChat client, for what the real SDK (tests/flychat/real/, which the pytest
// suite test_flychat_sdk.py drives) cannot send: mixd's administration in the SDK's
// group-operation shape (docs/protocol.md, "FlyChat administration"). Over @xmpp/client on
// WebSocket; replies and events are read the way the SDK reads them: children looked up by
// element name anywhere below the stanza.

import { webcrypto } from "node:crypto";
import { client, xml } from "@xmpp/client";
import WebSocket from "ws";

// Node 20 has no global WebSocket (the SDK runs in browsers, which do).
globalThis.WebSocket ??= WebSocket;
// Node 18 (Debian 12's) has Web Crypto only as require("crypto").webcrypto, and @xmpp/client
// calls globalThis.crypto.randomUUID() when it connects.
globalThis.crypto ??= webcrypto;

export const NS = "jabber:iq:mixgroupchat";
const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (the pytest harness sets it)`);
  return value;
};
export const SERVICE = () => env("MIXD_TEST_MIX_DOMAIN");
export const DOMAIN = () => env("MIXD_TEST_DOMAIN");

/** The first descendant named `name`, as the SDK finds it. */
export function find(element, name) {
  for (const child of element.children ?? []) {
    if (typeof child === "string") continue;
    if (child.name === name) return child;
    const deeper = find(child, name);
    if (deeper) return deeper;
  }
  return undefined;
}

/** Every descendant named `name`. */
export function findAll(element, name, out = []) {
  for (const child of element.children ?? []) {
    if (typeof child === "string") continue;
    if (child.name === name) out.push(child);
    findAll(child, name, out);
  }
  return out;
}

export const text = (element, name) => find(element, name)?.text();

let counter = 0;
export const newId = (prefix = "id") => `${prefix}${Date.now().toString(36)}${(counter++).toString(36)}`;

/** A logged-in user, with a queue of the messages it receives. */
export class User {
  constructor(name) {
    this.name = name;
    this.jid = `${name}@${DOMAIN()}`;
    this.messages = [];
    this.waiters = [];
    this.xmpp = client({
      service: env("MIXD_TEST_WS"),
      domain: DOMAIN(),
      resource: `Web-${newId()}`,
      username: name,
      password: env("MIXD_TEST_PASSWORD"),
    });
    this.xmpp.on("error", () => {});
    this.xmpp.on("stanza", (stanza) => {
      if (!stanza.is("message")) return;
      this.messages.push(stanza);
      for (const waiter of this.waiters.splice(0)) waiter();
    });
  }

  async start() {
    await this.xmpp.start();
    await this.xmpp.send(xml("presence"));
    return this;
  }

  async stop() {
    await this.xmpp.stop();
  }

  /** The next received message that `match` accepts (others stay queued). */
  async next(match, what = "a message", timeout = 10000) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const index = this.messages.findIndex(match);
      if (index >= 0) return this.messages.splice(index, 1)[0];
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name} did not receive ${what}`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Fails if a message `match` accepts arrives within `wait` ms. */
  async none(match, what, wait = 500) {
    await new Promise((resolve) => setTimeout(resolve, wait));
    if (this.messages.some(match)) throw new Error(`${this.name} unexpectedly received ${what}`);
  }

  query(type, to, status, attrs = {}, ...children) {
    return this.xmpp.iqCaller.request(
      xml("iq", { type, to }, xml("query", { xmlns: NS, status, ...attrs }, ...children)),
    );
  }

  // --- the SDK's group calls ---

  createGroup(groupId, name, jids, { image, thumbImage, history = 1 } = {}) {
    const vcard = [xml("nickName", {}, name), xml("history", {}, String(history))];
    if (image) vcard.push(xml("image", {}, image));
    if (thumbImage) vcard.push(xml("thumbImage", {}, thumbImage));
    return this.query(
      "set",
      SERVICE(),
      "create_group",
      { group_id: groupId },
      xml("profile", {}, xml("vCard", { xmlns: "vcard-temp" }, ...vcard)),
      xml("participants", {}, ...jids.map((jid) => xml("participant", {}, jid))),
    );
  }

  getGroupProfile(groupJid) {
    return this.query("get", groupJid, "get_group_profile", { group_id: groupJid.split("@")[0] });
  }

  getGroupParticipants(groupJid) {
    return this.query("get", groupJid, "get_participants");
  }

  /** removeParticipant and userExitGroup send the same stanza. */
  userExitGroup(groupJid, jid) {
    return this.query("set", groupJid, "user_exit_group", {}, xml("participant", {}, jid));
  }

  makeAsAdmin(groupJid, jid) {
    return this.query("set", groupJid, "make_admin", {}, xml("participant", {}, jid));
  }

  /** sendTextMessage and the media senders: a `normal` message with <chatcontent>. */
  async sendMessage(groupJid, messageType, body, attrs = {}) {
    const id = newId("msg");
    await this.xmpp.send(
      xml("message", { to: groupJid, type: "normal", id },
        xml("chatcontent", { xmlns: "urn:xmpp:content", message_type: messageType, ...attrs }),
        xml("subject", {}, messageType),
        xml("body", {}, body)),
    );
    return id;
  }
}

export async function users(...names) {
  return Promise.all(names.map((name) => new User(name).start()));
}

export const groupJid = (id) => `${id.toLowerCase()}@${SERVICE()}`;
export const fromGroup = (jid) => (stanza) => stanza.attrs.from?.split("/")[0] === jid;
