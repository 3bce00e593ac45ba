// One user of the real, unmodified FlyChat SDK (npm mirrorfly-sdk, pinned in package.json),
// run in Node as flychat-wire.md §6 describes, driven over stdin/stdout by tests/harness/sdk.py.
//
// Protocol, one JSON object per line:
//   in:  {"id": n, "call": "createGroup", "args": [...]}  → SDK.createGroup(...args)
//        {"id": n, "call": "initializeSDK", "args": [{...}]} (callbackListeners are set here)
//        {"id": n, "call": "sendMediaFile", "args": [toJid, base64, name, type]} and
//        {"id": n, "call": "downloadMedia", "args": [msgId]}: the SDK's calls that take a File or
//        give a Blob and answer through callbacks, with the bytes as base64 (see `withFiles`)
//   out: {"id": n, "result": ...} or {"id": n, "error": "..."} when the call settles;
//        {"event": "groupProfileListener", "data": {...}} for every listener call;
//        {"event": "crash", "data": "..."} for an unhandled rejection or exception inside the SDK
//        (a browser would only log it; Node would end).
// Stdout carries nothing else: the SDK's console goes to stderr.
//
// Environment: MIXD_API_URL (the SDK's apiBaseUrl, a host name as the SDK insists, e.g.
// http://api.chat.test/api/v1), MIXD_API_REAL (where that really is, e.g.
// http://127.0.0.1:8123/api/v1), MIXD_WS_URL (the server's WebSocket, which the SDK's
// wss://<xmppHost>:<port>/websocket is mapped to, as a hosts file and a proxy would).

import { createRequire } from "node:module";
import readline from "node:readline";
import { webcrypto } from "node:crypto";
import { JSDOM } from "jsdom";
import WebSocket from "ws";

const out = (object) => process.stdout.write(JSON.stringify(object) + "\n");
const describe = (error) =>
  error instanceof Error ? `${error.name}: ${error.message}\n${error.stack}` : JSON.stringify(error);
process.on("unhandledRejection", (error) => out({ event: "crash", data: describe(error) }));
process.on("uncaughtException", (error) => out({ event: "crash", data: describe(error) }));

for (const method of ["log", "info", "warn", "error", "debug", "trace"]) {
  console[method] = (...args) => process.stderr.write(args.map(String).join(" ") + "\n");
}

const apiUrl = process.env.MIXD_API_URL;
const apiReal = process.env.MIXD_API_REAL;
const wsUrl = process.env.MIXD_WS_URL;

const dom = new JSDOM("<!doctype html><html><body></body></html>", { url: "http://localhost/" });
const { window } = dom;
// jsdom has no innerText; the SDK builds text bodies with it.
Object.defineProperty(window.HTMLElement.prototype, "innerText", {
  get() { return this.textContent; },
  set(value) { this.textContent = value; },
  configurable: true,
});
Object.defineProperty(window.Element.prototype, "innerText", {
  get() { return this.textContent; },
  set(value) { this.textContent = value; },
  configurable: true,
});

/** The SDK's REST calls go to its apiBaseUrl; this is where that name really points. */
class MappedXMLHttpRequest extends window.XMLHttpRequest {
  open(method, url, ...rest) {
    const mapped = typeof url === "string" && url.startsWith(apiUrl) ? apiReal + url.slice(apiUrl.length) : url;
    return super.open(method, mapped, ...rest);
  }
}

/** The SDK opens wss://<xmppHost>:<port>/websocket; this is the server's WebSocket. */
class MappedWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(wsUrl, protocols);
  }
}

window.XMLHttpRequest = MappedXMLHttpRequest;
window.WebSocket = MappedWebSocket;
globalThis.window = window;
globalThis.self = window;
globalThis.document = window.document;
globalThis.localStorage = window.localStorage;
globalThis.sessionStorage = window.sessionStorage;
globalThis.DOMParser = window.DOMParser;
globalThis.XMLSerializer = window.XMLSerializer;
globalThis.XMLHttpRequest = MappedXMLHttpRequest;
globalThis.WebSocket = MappedWebSocket;
globalThis.Node = window.Node;
globalThis.Element = window.Element;
globalThis.HTMLElement = window.HTMLElement;
globalThis.Blob ??= window.Blob;
globalThis.FileReader = window.FileReader;
globalThis.FormData = window.FormData;
globalThis.crypto ??= webcrypto;
if (!window.crypto?.subtle) Object.defineProperty(window, "crypto", { value: globalThis.crypto, configurable: true });
if (!("navigator" in globalThis)) globalThis.navigator = window.navigator;
// jsdom makes no object URLs; the SDK makes one for every download, which an app would show.
window.URL.createObjectURL ??= () => "blob:mixd-test";

const require = createRequire(import.meta.url);
const SDK = require("mirrorfly-sdk");

const listeners = new Proxy(
  {},
  {
    get: (_, name) => (data) => out({ event: String(name), data: plain(data) }),
    has: () => true,
  },
);

/** What survives JSON: the SDK's payloads are plain objects, but be safe. */
function plain(value) {
  try {
    return JSON.parse(JSON.stringify(value ?? null));
  } catch {
    return String(value);
  }
}

const LISTENER_NAMES = [
  "connectionListener", "messageListener", "groupProfileListener", "presenceListener",
  "userProfileListener", "friendsListListener", "groupMsgInfoListener", "mediaUploadListener",
  "mediaDownloadListener", "singleMessageDataListener", "replyMessageListener",
  "favouriteMessageListener", "editMessageListener", "blockUserListener", "adminBlockListener",
  "userSettingsListener", "userDeletedListener", "muteChatListener", "archiveChatListener",
];

/** SDK calls whose File or Blob cannot cross JSON, and which answer through callbacks. */
const withFiles = {
  /** SDK.sendMediaFileMessage of a file with `base64` as its bytes: the sent message's data. */
  sendMediaFile: (toJid, base64, name, type) =>
    new Promise((resolve, reject) => {
      const file = new File([Buffer.from(base64, "base64")], name, { type });
      const params = { toJid, messageType: "file", fileMessageParams: { file, caption: "" } };
      SDK.sendMediaFileMessage(params, () => {}, resolve, (error) => reject(new Error(describe(error))));
    }),
  /** SDK.downloadMedia: the file as the SDK gives it to the app (decrypted), as base64. */
  downloadMedia: (msgId) =>
    new Promise((resolve, reject) => {
      const done = async ({ blob }) =>
        resolve({ size: blob.size, base64: Buffer.from(await blob.arrayBuffer()).toString("base64") });
      SDK.downloadMedia(msgId, () => {}, done, (error) => reject(new Error(describe(error))));
    }),
};

async function run(call, args) {
  if (call in withFiles) return withFiles[call](...args);
  if (call === "initializeSDK") {
    const callbackListeners = Object.fromEntries(LISTENER_NAMES.map((name) => [name, listeners[name]]));
    return SDK.initializeSDK({ ...args[0], callbackListeners });
  }
  if (typeof SDK[call] !== "function") throw new Error(`the SDK has no ${call}`);
  return SDK[call](...args);
}

readline.createInterface({ input: process.stdin }).on("line", async (line) => {
  let request;
  try {
    request = JSON.parse(line);
  } catch {
    return out({ event: "crash", data: `driver sent bad JSON: ${line}` });
  }
  try {
    const result = await run(request.call, request.args ?? []);
    out({ id: request.id, result: plain(result) });
  } catch (error) {
    out({ id: request.id, error: describe(error) });
  }
});
out({ event: "ready", data: Object.keys(SDK).length });
