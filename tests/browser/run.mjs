#!/usr/bin/env node
// End-to-end tests of the web client in a real browser against a real
// chatcored: Debian's Chromium driven by playwright-core, the daemon binary
// on a free loopback port with a temporary LMDB data dir and a 3 s presence
// timeout. Screenshots go to $CHATCORE_OUT.
//
//   CHATCORED=build/daemon/chatcored CHATCORE_WEB_ROOT=build/web/dist \
//   CHATCORE_NODE_MODULES=build/web/npm/node_modules node tests/browser/run.mjs
//
// The scenarios run in order on one daemon and one browser (each with its
// own users, so they do not interfere); the last one kills and restarts the
// daemon. Every user is a separate browser context (its own localStorage:
// its own device), except where a scenario says otherwise.

import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  Daemon,
  HttpClient,
  PRESENCE_TIMEOUT_MS,
  addContactUi,
  assertPageComplete,
  env,
  expectMessage,
  launchBrowser,
  launchFreezableBrowser,
  logInUi,
  openApp,
  openConversationUi,
  openDirectUi,
  repo,
  sendUi,
  shot,
  shownBodies,
  signUpUi,
  sleep,
  uniqueName,
  waitOnline,
} from "./lib.mjs";

// playwright-core 1.65 needs node 20 (the web build itself runs on 18).
if (Number(process.versions.node.split(".")[0]) < 20) {
  console.error(`browser tests: node >= 20 is required (this is ${process.version})`);
  process.exit(1);
}

let daemon;
let browser;
const T = { timeout: 90_000 };

before(async () => {
  // This run's screenshots and logs only.
  mkdirSync(env.out, { recursive: true });
  for (const f of readdirSync(env.out)) if (/\.(png|log)$/.test(f)) rmSync(join(env.out, f));
  daemon = new Daemon();
  await daemon.start();
  console.log(`# chatcored pid ${daemon.pid} on ${daemon.base}, data ${daemon.dataDir}`);
  browser = await launchBrowser();
  console.log(`# chromium ${browser.version()} (${env.chromium})`);
});

after(async () => {
  await browser?.close().catch(() => {});
  await daemon?.stop().catch(() => {});
  daemon?.cleanup();
});

// Never leave a daemon behind, whatever ends this process.
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    if (daemon?.pid) {
      try {
        process.kill(daemon.pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    process.exit(130);
  });
}
process.on("exit", () => {
  if (daemon?.proc && daemon.proc.exitCode === null && daemon.proc.signalCode === null) {
    try {
      process.kill(daemon.pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
});

const display = (name) => name[0].toUpperCase() + name.slice(1);
const convButton = (page, title) => page.locator(".conv", { has: page.locator(".conv-title", { hasText: title }) });

/** Two users who are contacts with an open 1-on-1 conversation, created over HTTP; alice in the browser. */
async function aliceWithPeer(prefixA = "alice", prefixB = "bob") {
  const bob = await HttpClient.signup(daemon.base, uniqueName(prefixB));
  const aliceName = uniqueName(prefixA);
  const alice = await HttpClient.signup(daemon.base, aliceName);
  await alice.call("POST", "/contacts", { user_id: bob.userId });
  const { conversation_id } = await alice.call("POST", "/conversations/direct", { user_id: bob.userId });
  const a = await openApp(browser, daemon.base);
  await logInUi(a.page, aliceName);
  return { alice, bob, a, conv: conversation_id };
}

test("alice and bob sign up and chat live both ways", T, async () => {
  const an = uniqueName("alice");
  const bn = uniqueName("bob");
  const a = await openApp(browser, daemon.base);
  const b = await openApp(browser, daemon.base);
  await signUpUi(a.page, an);
  await signUpUi(b.page, bn);

  await addContactUi(a.page, bn);
  await openDirectUi(a.page, bn);
  await sendUi(a.page, "Hi Bob! 👋 Lunch at noon?");
  await expectMessage(a.page, "Hi Bob! 👋 Lunch at noon?", { sent: true });

  // Bob was not told about the conversation beforehand: the Deliver brings it.
  const conv = convButton(b.page, display(an));
  await conv.waitFor();
  assert.equal(await conv.locator("[data-testid=unread]").textContent(), "1");
  await shot(b.page, "chat-bob-unread");
  await conv.click();
  await expectMessage(b.page, "Hi Bob! 👋 Lunch at noon?");
  await sendUi(b.page, "Sure, see you there.");
  await expectMessage(b.page, "Sure, see you there.", { sent: true });
  await expectMessage(a.page, "Sure, see you there.");
  await sendUi(a.page, "Great 🙂");
  await expectMessage(b.page, "Great 🙂");

  // One order, the same on both sides.
  const expected = ["Hi Bob! 👋 Lunch at noon?", "Sure, see you there.", "Great 🙂"];
  await a.page.waitForFunction((n) => document.querySelectorAll(".msg.sent, .msg.theirs").length === n, expected.length);
  assert.deepEqual(await shownBodies(a.page), expected);
  assert.deepEqual(await shownBodies(b.page), expected);
  // Alice's own messages are acknowledged; none is left sending.
  assert.equal(await a.page.locator(".msg.mine.sending, .msg.mine.failed").count(), 0);
  assert.equal(await a.page.locator(".msg.mine.sent").count(), 2);
  await shot(a.page, "chat-alice");
  await shot(b.page, "chat-bob");

  // Log out: back to the log-in screen, and the token no longer works.
  const token = await b.page.evaluate(() => JSON.parse(localStorage.getItem("chatcore.session")).token);
  await b.page.getByTestId("logout").click();
  await b.page.getByRole("heading", { name: "Log in" }).waitFor();
  await assert.rejects(new HttpClient(daemon.base, token).call("GET", "/users/me"), /401/);
  await a.context.close();
  await b.context.close();
});

test("a group of three: create, chat, see and change members", T, async () => {
  const [an, bn, cn] = [uniqueName("alice"), uniqueName("bob"), uniqueName("carol")];
  const a = await openApp(browser, daemon.base);
  const b = await openApp(browser, daemon.base);
  const c = await openApp(browser, daemon.base);
  // Plain display names: this scenario also makes the docs screenshot.
  await Promise.all([
    signUpUi(a.page, an, { display: "Alice" }),
    signUpUi(b.page, bn, { display: "Bob" }),
    signUpUi(c.page, cn, { display: "Carol" }),
  ]);
  await addContactUi(a.page, bn, "Bob");
  await addContactUi(a.page, cn, "Carol");

  // Create the group with both contacts.
  await a.page.getByRole("tab", { name: /Chats/ }).click();
  await a.page.getByTestId("new-group").click();
  const dlg = a.page.locator("dialog.dialog");
  await dlg.getByLabel("Group name").fill("Weekend trip");
  await dlg.locator(".check-row", { hasText: "Bob" }).locator("input").check();
  await dlg.locator(".check-row", { hasText: "Carol" }).locator("input").check();
  await dlg.getByRole("button", { name: "Create group" }).click();
  await a.page.locator(".chat-title", { hasText: "Weekend trip" }).waitFor();

  await sendUi(a.page, "Who brings the tent?");
  await expectMessage(a.page, "Who brings the tent?", { sent: true });
  for (const p of [b.page, c.page]) {
    await openConversationUi(p, "Weekend trip");
    await expectMessage(p, "Who brings the tent?");
  }
  await sendUi(b.page, "I will. Carol, the stove?");
  await sendUi(c.page, "Stove packed 🔥");
  for (const p of [a.page, b.page, c.page]) {
    await expectMessage(p, "I will. Carol, the stove?");
    await expectMessage(p, "Stove packed 🔥");
  }
  // Other members' messages carry their names in a group.
  await a.page.locator(".msg.theirs .sender", { hasText: "Bob" }).waitFor();
  await a.page.locator(".msg.theirs .sender", { hasText: "Carol" }).waitFor();
  await sendUi(a.page, "Perfect, see you Saturday at 9 ⛺");
  await expectMessage(c.page, "Perfect, see you Saturday at 9 ⛺");
  const bodies = await shownBodies(a.page);
  assert.deepEqual(await shownBodies(b.page), bodies);
  assert.deepEqual(await shownBodies(c.page), bodies);
  await shot(a.page, "group-alice");
  // The README/docs screenshot: a real conversation (refreshed on request only).
  if (process.env.CHATCORE_UPDATE_DOCS_SCREENSHOT === "1") {
    await a.page.evaluate(() => document.querySelectorAll(".toast").forEach((t) => t.remove()));
    copyFileSync(await shot(a.page, "docs-screenshot"), join(repo, "docs/screenshot.png"));
  }

  // Members with presence, fetched when the list opens.
  await a.page.getByTestId("members-button").click();
  const members = a.page.locator("dialog.dialog .member");
  await members.nth(2).waitFor();
  assert.equal(await members.count(), 3);
  assert.equal(await a.page.locator("dialog.dialog .member .dot.online").count(), 3);
  await a.page.locator("dialog.dialog .muted", { hasText: "3 members, 3 online" }).waitFor();
  await shot(a.page, "group-members");

  // Remove carol, then add her back by name.
  const carolRow = a.page.locator("dialog.dialog .member", { hasText: "Carol" });
  await carolRow.getByRole("button", { name: "Remove" }).click();
  await a.page.locator("dialog.dialog .muted", { hasText: "2 members" }).waitFor();
  assert.equal(await members.count(), 2);
  const groupId = await a.page.evaluate(() => String(window.chatcore.store.openConversation().groupId));
  const bobApi = new HttpClient(daemon.base, await b.page.evaluate(() => JSON.parse(localStorage.getItem("chatcore.session")).token));
  const g = await bobApi.call("GET", `/groups/${groupId}`);
  assert.equal(g.members.length, 2);
  await a.page.locator("dialog.dialog input[name=member-name]").fill(cn);
  await a.page.locator("dialog.dialog").getByRole("button", { name: "Add", exact: true }).click();
  await a.page.locator("dialog.dialog .muted", { hasText: "3 members" }).waitFor();
  await a.page.locator("dialog.dialog").getByRole("button", { name: "Close" }).click();
  for (const x of [a, b, c]) await x.context.close();
});

test("bob closes his page, alice writes, bob comes back to unread messages (on a phone)", T, async () => {
  const an = uniqueName("alice");
  const bn = uniqueName("bob");
  const a = await openApp(browser, daemon.base);
  // Bob is on a phone-sized screen: one pane at a time.
  const phone = { width: 390, height: 760 };
  const b = await openApp(browser, daemon.base, { viewport: phone });
  await signUpUi(a.page, an);
  await signUpUi(b.page, bn);
  await addContactUi(a.page, bn);
  await openDirectUi(a.page, bn);
  await sendUi(a.page, "Are you there?");
  await openConversationUi(b.page, display(an));
  await expectMessage(b.page, "Are you there?");
  await sendUi(b.page, "Yes, but leaving now");
  await expectMessage(a.page, "Yes, but leaving now");

  // Bob closes the tab (his profile, i.e. his device, stays).
  await b.page.close();
  // A clean close: offline at once (no need to wait for the timeout).
  await a.page.locator(".chat-sub", { hasText: "last seen" }).waitFor({ timeout: 5000 });
  const later = ["Message one while you were away", "Message two", "Message three, the last"];
  for (const text of later) {
    await sendUi(a.page, text);
    await expectMessage(a.page, text, { sent: true });
  }

  // Bob opens chatcore again: still logged in, the conversation shows 3 unread.
  const page = await b.context.newPage();
  await page.goto(daemon.base + "/");
  await assertPageComplete(page);
  await waitOnline(page);
  const conv = convButton(page, display(an));
  await conv.locator("[data-testid=unread]", { hasText: "3" }).waitFor();
  await page.getByRole("tab", { name: /Chats/ }).locator(".badge", { hasText: "3" }).waitFor();
  await shot(page, "unread-after-reopen");
  assert.ok(await page.locator(".sidebar").isVisible());
  assert.ok(!(await page.locator(".chat").isVisible()), "phone: the list alone");
  await conv.click();
  for (const text of later) await expectMessage(page, text);
  assert.deepEqual((await shownBodies(page)).slice(-3), later);
  assert.ok(!(await page.locator(".sidebar").isVisible()), "phone: the chat alone");
  await shot(page, "phone-chat");
  // Viewing marks read: the badge goes, and the server agrees.
  await page.getByRole("button", { name: "Back to conversations" }).click();
  await conv.waitFor();
  await conv.locator("[data-testid=unread]").waitFor({ state: "detached" });
  const token = await page.evaluate(() => JSON.parse(localStorage.getItem("chatcore.session")).token);
  const api = new HttpClient(daemon.base, token);
  const deadline = Date.now() + 5000;
  for (;;) {
    const { conversations } = await api.call("GET", "/conversations");
    if (conversations[0].unread === 0) break;
    assert.ok(Date.now() < deadline, `still unread on the server: ${conversations[0].unread}`);
    await sleep(100);
  }
  await a.context.close();
  await b.context.close();
});

test("a reload keeps the history; scrolling back loads older pages", T, async () => {
  const { alice, bob, a, conv } = await aliceWithPeer();
  // 130 messages: nearly three pages of 50.
  const N = 130;
  for (let i = 1; i <= N; i++) {
    await (i % 3 ? bob : alice).send(conv, `history message ${String(i).padStart(3, "0")}`);
  }
  await openConversationUi(a.page, display(bob.name));
  await expectMessage(a.page, "history message 130");
  await a.page.reload();
  await assertPageComplete(a.page);
  await waitOnline(a.page);
  // The URL keeps the open conversation across the reload.
  await a.page.locator(".chat-title", { hasText: display(bob.name) }).waitFor();
  await expectMessage(a.page, "history message 130");
  const firstLoad = await a.page.locator(".msg-list .msg").count();
  assert.ok(firstLoad < N, `only the newest page(s) at first, got ${firstLoad}`);
  await shot(a.page, "history-after-reload");

  // Scroll to the top until the beginning is reached, one page at a time.
  const scroller = a.page.locator(".messages");
  const counts = [firstLoad];
  for (let i = 0; i < 10; i++) {
    await scroller.evaluate((el) => {
      el.scrollTop = 0;
    });
    await sleep(150);
    await a.page.waitForFunction(() => !window.chatcore.store.openConversation().loadingOlder);
    counts.push(await a.page.locator(".msg-list .msg").count());
    if (await a.page.locator(".history-status", { hasText: "beginning of the conversation" }).count()) break;
  }
  await a.page.locator(".history-status", { hasText: "beginning of the conversation" }).waitFor();
  assert.ok(new Set(counts).size >= 3, `pages were loaded one by one: ${counts.join(" -> ")}`);
  const seqs = await a.page.locator(".msg-list .msg").evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
  assert.deepEqual(seqs, Array.from({ length: N }, (_, i) => i + 1), "every message once, in order");
  await scroller.evaluate((el) => {
    el.scrollTop = 0;
  });
  await shot(a.page, "history-beginning");
  await a.context.close();
});

test("a contact's dot goes offline after the presence timeout, with last seen", T, async () => {
  const an = uniqueName("alice");
  const bn = uniqueName("bob");
  // Bob in a browser of his own, which is then frozen: his connection goes
  // silent without a close (a sleeping laptop, a dead network), unlike a
  // closed tab, which is a clean close and offline at once.
  const bobBrowser = await launchFreezableBrowser();
  try {
    const b = await openApp(bobBrowser.browser, daemon.base);
    await signUpUi(b.page, bn);
    const a = await openApp(browser, daemon.base);
    await signUpUi(a.page, an);
    await addContactUi(a.page, bn);
    const row = a.page.locator(".contact", { hasText: display(bn) });
    await a.page.locator(`.contact[data-online=true]`, { hasText: display(bn) }).waitFor();
    assert.equal(await row.locator(".presence").textContent(), "online");
    assert.equal(await row.locator(".dot.online").count(), 1);
    await shot(a.page, "presence-online");

    bobBrowser.freeze();
    const frozenAt = Date.now();
    await a.page.locator(`.contact[data-online=false]`, { hasText: display(bn) }).waitFor({ timeout: PRESENCE_TIMEOUT_MS + 10_000 });
    const after = Date.now() - frozenAt;
    // Not at once (silence is not a logout): only once the timeout has passed
    // since his last heartbeat (sent at most heartbeat_interval_ms = 1 s before the freeze).
    assert.ok(after >= PRESENCE_TIMEOUT_MS - 1000, `offline after ${after} ms: before the presence timeout`);
    assert.match(await row.locator(".presence").textContent(), /^last seen (just now|\d+ min ago)$/);
    assert.equal(await row.locator(".dot.offline").count(), 1);
    console.log(`# bob offline ${after} ms after his browser froze (timeout ${PRESENCE_TIMEOUT_MS} ms)`);
    await shot(a.page, "presence-offline");
    await a.context.close();
  } finally {
    await bobBrowser.close();
  }
});

test("a second tab of alice receives what she sends from the first", T, async () => {
  const { bob, a, conv } = await aliceWithPeer();
  await openConversationUi(a.page, display(bob.name));
  // Same browser profile: the same device, two sessions.
  const tab2 = await a.context.newPage();
  await tab2.goto(`${daemon.base}/#/c/${conv}`);
  await assertPageComplete(tab2);
  await waitOnline(tab2);
  await tab2.locator(".chat-title", { hasText: display(bob.name) }).waitFor();
  const ids = await Promise.all([a.page, tab2].map((p) => p.evaluate(() => localStorage.getItem("chatcore.device"))));
  assert.equal(ids[0], ids[1], "one device per browser profile");

  await sendUi(a.page, "typed in tab one");
  await expectMessage(a.page, "typed in tab one", { sent: true });
  await expectMessage(tab2, "typed in tab one", { sent: true });
  await sendUi(tab2, "and this in tab two");
  await expectMessage(a.page, "and this in tab two", { sent: true });
  await bob.send(conv, "bob sees both");
  for (const p of [a.page, tab2]) {
    await expectMessage(p, "bob sees both");
    assert.deepEqual(await shownBodies(p), ["typed in tab one", "and this in tab two", "bob sees both"]);
    assert.equal(await p.locator(".msg.mine.sent").count(), 2);
  }
  // Own messages do not count as unread in the other tab.
  assert.equal(await tab2.locator("[data-testid=unread]").count(), 0);
  await shot(tab2, "second-tab");
  await a.context.close();
});

test("a message over 100,000 characters is refused with a readable error", T, async () => {
  const { alice, bob, a, conv } = await aliceWithPeer();
  await openConversationUi(a.page, display(bob.name));
  const box = a.page.getByLabel("Message", { exact: true });

  // Client side: counted in code points like the server, refused before sending.
  await box.fill("x".repeat(100_000) + "é");
  await a.page.locator(".counter.over", { hasText: "100,001 / 100,000" }).waitFor();
  await box.press("Enter");
  await a.page.locator(".composer-error", { hasText: "100,001 characters long; the limit is 100,000" }).waitFor();
  assert.equal(await a.page.locator(".msg").count(), 0, "nothing was sent");
  await shot(a.page, "too-long-client");

  // Exactly 100,000 code points (emoji are 2 UTF-16 units each) is fine.
  const atLimit = "😀".repeat(50_000) + "y".repeat(50_000);
  await box.fill(atLimit);
  await box.press("Enter");
  await a.page.locator(".msg.mine.sent").waitFor();
  await box.fill("");

  // Server side: with the client's check off, the server says too_large.
  await a.page.evaluate(() => {
    window.chatcore.debug.skipLengthCheck = true;
  });
  await box.fill("z".repeat(100_001));
  await box.press("Enter");
  const failed = a.page.locator(".msg.mine.failed");
  await failed.waitFor();
  await failed.locator(".fail", { hasText: "too_large" }).waitFor();
  assert.match(await failed.locator(".fail").textContent(), /too long/i);
  await failed.getByRole("button", { name: "Retry" }).waitFor();
  await shot(a.page, "too-long-server");

  const stored = await alice.allMessages(conv);
  assert.equal(stored.length, 1);
  assert.equal([...stored[0].body].length, 100_000);
  await a.context.close();
});

test("kill -9 of the daemon: the page reconnects, nothing acked is lost or doubled", T, async () => {
  const { alice, bob, a, conv } = await aliceWithPeer();
  await openConversationUi(a.page, display(bob.name));
  for (const text of ["before 1", "before 2", "before 3"]) {
    await sendUi(a.page, text);
    await expectMessage(a.page, text, { sent: true });
  }

  // Send and kill at once: "in flight" may or may not be committed.
  await sendUi(a.page, "in flight");
  await daemon.kill("SIGKILL");
  await a.page.locator(".conn-banner[data-phase=offline]").waitFor({ timeout: 10_000 });
  // Written while the server is down: queued with their client ids.
  await sendUi(a.page, "while down 1");
  await sendUi(a.page, "while down 2");
  await a.page.locator(".msg.mine .status", { hasText: "waiting for connection" }).first().waitFor();
  await shot(a.page, "daemon-down");

  await daemon.start(); // same port, same data dir
  console.log(`# chatcored restarted, pid ${daemon.pid}`);
  await waitOnline(a.page, 30_000);
  await a.page.locator(".conn-banner").waitFor({ state: "hidden" });
  for (const text of ["in flight", "while down 1", "while down 2"]) await expectMessage(a.page, text, { sent: true });
  await bob.send(conv, "bob after the restart");
  await expectMessage(a.page, "bob after the restart");
  await shot(a.page, "daemon-restarted");

  const expected = ["before 1", "before 2", "before 3", "in flight", "while down 1", "while down 2", "bob after the restart"];
  const stored = (await alice.allMessages(conv)).map((m) => m.body);
  assert.deepEqual(stored, expected, "the server has each message exactly once, in order");
  assert.deepEqual(await shownBodies(a.page), expected, "the page shows each exactly once");
  assert.equal(await a.page.locator(".msg.mine.sending, .msg.mine.failed").count(), 0);
  await a.context.close();
});
