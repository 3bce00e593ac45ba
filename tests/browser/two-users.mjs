// Two users on the browser example (examples/web) in headless Chromium, each in a browser of
// its own: both log in, alice creates a group with bob and adds carol, a message goes each way, alice
// renames the group and bob's page shows the new name, alice sends a file of two parts (the
// SDK encrypts it) and bob's SDK downloads and decrypts it byte for byte. Run by
// tests/test_browser.py, which starts Prosody, mixd and the page's server and sets
// MIXD_PAGE_URL and MIXD_TEST_PASSWORD. Exits non-zero on the first failure, printing both
// pages; MIXD_PAGE_DEBUG=1 prints the pages' whole console as well.
import { createHash, randomBytes } from "node:crypto";
import { chromium } from "playwright-core";

const url = process.env.MIXD_PAGE_URL;
const password = process.env.MIXD_TEST_PASSWORD;
const suffix = Date.now().toString(36);
const TIMEOUT = 20000;

// §6 of the FlyChat wire notes: a fresh profile per launch, no sandbox (root in CI), no
// traffic to anything but this machine.
const flags = [
  "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run",
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
];

async function open(user, browsers) {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: flags });
  browsers.push(browser);
  const page = await browser.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on("pageerror", (error) => console.error(`[${user} page error] ${error.message}`));
  page.on("response", (response) => {
    if (response.status() >= 400) console.error(`[${user} ${response.status()}] ${response.request().method()} ${response.url()}`);
  });
  page.on("requestfailed", (request) => console.error(`[${user} request failed] ${request.url()}`));
  page.on("console", (message) => {
    if (message.type() === "error" || process.env.MIXD_PAGE_DEBUG) console.error(`[${user} console] ${message.text().slice(0, 300)}`);
  });
  await page.goto(url);
  await page.fill("#username", user);
  await page.fill("#password", password);
  await page.click("#login-form button");
  await page.waitForSelector("#app:not([hidden])");
  return page;
}

const line = (page, text) => page.locator("#messages li", { hasText: text }).first().waitFor();
const group = (page, name) => page.locator("#groups li", { hasText: name }).first();

const browsers = [];
const pages = {};
try {
  const alice = (pages.alice = await open("alice", browsers));
  const bob = (pages.bob = await open("bob", browsers));

  const name = `Browsers ${suffix}`;
  await alice.fill("#group-name", name);
  await alice.fill("#group-members", "bob");
  await alice.click("#create-form button");
  await group(alice, name).click();
  await alice.fill("#add-members", "carol");
  await alice.click("#add-form button");
  await line(alice, "members added");

  await bob.click("#refresh");
  await group(bob, name).click();

  const hello = `hello from alice ${suffix}`;
  await alice.fill("#text", hello);
  await alice.click("#send-form button");
  await line(bob, `alice: ${hello}`);

  const renamed = `Renamed ${suffix}`;
  await alice.fill("#new-name", renamed);
  await alice.click("#rename-form button");
  await group(bob, renamed).waitFor();
  await bob.locator("#chat-title", { hasText: renamed }).waitFor();

  const reply = `hello from bob ${suffix}`;
  await bob.fill("#text", reply);
  await bob.click("#send-form button");
  await line(alice, `bob: ${reply}`);
  // An attachment: alice's SDK encrypts it and uploads it to mixd in parts; bob's SDK looks
  // the message up, downloads and decrypts it. A multiple of 16 bytes: the SDK leaves the
  // encryption's padding after a file of any other size.
  const content = randomBytes(5 * 1024 * 1024 + 4320);
  const digest = createHash("sha256").update(content).digest("hex");
  await alice.setInputFiles("#file", { name: "notes.txt", mimeType: "text/plain", buffer: content });
  await alice.click("#file-form button");
  await line(alice, "sent file notes.txt");
  await bob.locator("#messages li.file button").first().click();
  await line(bob, `downloaded ${content.length} bytes, sha256 ${digest}`);

  // Not yet checked: the page's "Load history". mixd writes history rows as attributes and the
  // SDK reads child elements (flychat-wire.md, "Corrections"), so it shows none until the
  // flychat reply-shape fix is merged; then add: bob loads the history and sees `hello`.
  console.log("browser example: two users chatted, renamed a group and shared a file");
} catch (error) {
  console.error(`browser example failed: ${error.stack || error}`);
  for (const [user, page] of Object.entries(pages)) {
    const shown = await page.evaluate(() => document.body.innerText).catch((e) => e.message);
    console.error(`--- ${user}'s page:\n${shown}`);
  }
  process.exitCode = 1;
} finally {
  for (const browser of browsers) await browser.close();
}
