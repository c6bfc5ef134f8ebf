// Helpers for the browser tests: a real chatcored, a real Chromium (Debian's,
// driven by playwright-core; never a downloaded browser), and the few UI
// gestures the scenarios repeat.
//
// Environment (set by ctest, see tests/browser/CMakeLists.txt; defaults fit
// a ./build tree):
//   CHATCORED          the daemon binary
//   CHATCORE_WEB_ROOT  the built web client (<build>/web)
//   CHATCORE_OUT       where screenshots and daemon logs go (<build>/browser-screenshots)
//   CHROMIUM           the browser (default /usr/bin/chromium)
//   CHATCORE_NODE_MODULES  node_modules with playwright-core (<build>/web/npm/node_modules)

import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { randomUUID } from "node:crypto";

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, "../..");
// playwright-core is a dev dependency of web/ (one lock file for the web
// side), installed by the build into <build>/web/npm/node_modules.
const nodeModules = process.env.CHATCORE_NODE_MODULES ?? join(repo, "web/node_modules");
const require = createRequire(join(nodeModules, "../package.json"));
export const { chromium } = require("playwright-core");

export const env = {
  daemon: process.env.CHATCORED ?? join(repo, "build/daemon/chatcored"),
  webRoot: process.env.CHATCORE_WEB_ROOT ?? join(repo, "build/web/dist"),
  out: process.env.CHATCORE_OUT ?? join(repo, "build/browser-screenshots"),
  chromium: process.env.CHROMIUM ?? "/usr/bin/chromium",
};

/** Presence timeout the daemon is configured with: short, so "goes offline" takes seconds. */
export const PRESENCE_TIMEOUT_MS = 3000;

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A chatcored on a loopback port with its own data dir and config. `start()`
 * may be called again after `kill()` (same port, same data): a restart.
 */
export class Daemon {
  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), "chatcore-browser-"));
    this.dataDir = join(this.dir, "data");
    this.config = join(this.dir, "chatcored.toml");
    writeFileSync(
      this.config,
      [
        "[presence]",
        "heartbeat_interval_ms = 1000",
        `timeout_ms = ${PRESENCE_TIMEOUT_MS}`,
        "[limits]",
        // Seeding history sends quickly; the default rate limit is not under test here.
        "sends_per_second = 1000.0",
        "send_burst = 1000.0",
        "",
      ].join("\n"),
    );
    this.proc = null;
    this.starts = 0;
  }

  async start(port) {
    if (!existsSync(env.daemon)) throw new Error(`no daemon at ${env.daemon} (set CHATCORED)`);
    if (!existsSync(join(env.webRoot, "index.html"))) throw new Error(`no web client in ${env.webRoot} (set CHATCORE_WEB_ROOT)`);
    this.port = port ?? this.port ?? (await freePort());
    this.base = `http://127.0.0.1:${this.port}`;
    mkdirSync(env.out, { recursive: true });
    const log = openSync(join(env.out, `chatcored-${++this.starts}.log`), "w");
    this.proc = spawn(
      env.daemon,
      ["--config", this.config, "--listen", `127.0.0.1:${this.port}`, "--data-dir", this.dataDir, "--web-root", env.webRoot],
      { stdio: ["ignore", log, log] },
    );
    this.pid = this.proc.pid;
    const exited = new Promise((res) => this.proc.once("exit", (code, sig) => res(`exited (${code ?? sig})`)));
    // Ready when /readyz answers 200; a port still held by the killed process is retried.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const early = await Promise.race([exited, sleep(100).then(() => null)]);
      if (early) throw new Error(`chatcored ${early}; see ${env.out}/chatcored-${this.starts}.log`);
      try {
        const r = await fetch(`${this.base}/readyz`);
        if (r.ok) return;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) throw new Error("chatcored did not become ready in 15 s");
    }
  }

  /** kill -9: no drain, no clean close of any socket. */
  async kill(signal = "SIGKILL") {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const gone = new Promise((r) => this.proc.once("exit", r));
    process.kill(this.pid, signal);
    await gone;
  }

  async stop() {
    await this.kill("SIGTERM");
  }

  cleanup() {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The HTTP API, for seeding and for checking what the server stored. */
export class HttpClient {
  constructor(base, token = null) {
    this.base = base;
    this.token = token;
  }
  async call(method, path, body) {
    const r = await fetch(`${this.base}/api/v1${path}`, {
      method,
      headers: {
        "Content-Type": "application/json",
        ...(this.token ? { Authorization: `Bearer ${this.token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    const json = text ? JSON.parse(text) : null;
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
    return json;
  }
  static async signup(base, name, password = "password-123") {
    const anon = new HttpClient(base);
    const { user_id } = await anon.call("POST", "/users", { name, password, display_name: name[0].toUpperCase() + name.slice(1) });
    const { token } = await anon.call("POST", "/sessions", { name, password });
    const c = new HttpClient(base, token);
    c.userId = user_id;
    c.name = name;
    return c;
  }
  send(conversationId, body) {
    return this.call("POST", `/conversations/${conversationId}/messages`, { client_msg_id: randomUUID(), body });
  }
  async allMessages(conversationId) {
    const all = [];
    let before = 0;
    for (;;) {
      const q = before ? `?before_seq=${before}&limit=200` : "?limit=200";
      const { messages } = await this.call("GET", `/conversations/${conversationId}/messages${q}`);
      if (!messages.length) break;
      all.unshift(...messages);
      before = messages[0].seq;
      if (before === 1) break;
    }
    return all;
  }
}

const launchOptions = () => ({
  executablePath: env.chromium,
  headless: true,
  // Playwright gives every launch a fresh temporary --user-data-dir.
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
  ],
});

export function launchBrowser() {
  return chromium.launch(launchOptions());
}

/** The pids of a process and all its descendants (from /proc). */
function processTree(root) {
  const children = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid ...": comm may contain spaces and parentheses.
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(entry));
  }
  const tree = [];
  const walk = (pid) => {
    tree.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return tree;
}

function signalTree(root, signal) {
  for (const pid of processTree(root)) {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

/**
 * A browser whose processes we hold. `freeze()` stops all of them
 * (SIGSTOP): the page falls silent, its TCP connections stay open and no
 * WebSocket close is ever sent, as when a laptop sleeps or its network
 * vanishes. (Killing only the browser process is not that: Chromium's
 * network service then closes the sockets cleanly.) `close()` kills the
 * whole tree.
 */
export async function launchFreezableBrowser() {
  const server = await chromium.launchServer(launchOptions());
  const browser = await chromium.connect(server.wsEndpoint());
  const pid = server.process().pid;
  return {
    browser,
    pid,
    freeze: () => signalTree(pid, "SIGSTOP"),
    close: async () => {
      signalTree(pid, "SIGKILL");
      await Promise.race([server.close().catch(() => {}), sleep(2000)]);
    },
  };
}

let shotCounter = 0;
export async function shot(page, name) {
  mkdirSync(env.out, { recursive: true });
  const file = join(env.out, `${String(++shotCounter).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/** A fresh browser profile (context) with the app open. */
export async function openApp(browser, base, { viewport = { width: 1100, height: 720 } } = {}) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`[page error] ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") console.error(`[console] ${m.text()}`);
  });
  await page.goto(base + "/");
  await assertPageComplete(page);
  return { context, page };
}

/** The page's own files all arrived: the stylesheet applies and the script ran. */
export async function assertPageComplete(page) {
  await page.waitForFunction(
    () =>
      [...document.styleSheets].some((s) => s.href?.includes("/style.css") && s.cssRules.length > 50) &&
      getComputedStyle(document.body).overflow === "hidden" &&
      window.chatcore !== undefined,
    null,
    { timeout: 10_000 },
  );
}

export async function signUpUi(page, name, { password = "password-123", display = name[0].toUpperCase() + name.slice(1) } = {}) {
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.getByLabel("User name").fill(name);
  await page.getByLabel("Password").fill(password);
  await page.getByLabel("Display name (optional)").fill(display);
  await page.locator("form.auth-form button[type=submit]").click();
  await page.locator(".me-handle", { hasText: `@${name}` }).waitFor();
  await waitOnline(page);
}

export async function logInUi(page, name, password = "password-123") {
  await page.getByLabel("User name").fill(name);
  await page.getByLabel("Password").fill(password);
  await page.locator("form.auth-form button[type=submit]").click();
  await page.locator(".me-handle", { hasText: `@${name}` }).waitFor();
  await waitOnline(page);
}

/** The socket is up (Welcome received). */
export async function waitOnline(page, timeout = 15_000) {
  await page.waitForFunction(() => window.chatcore?.store?.conn.online === true, null, { timeout });
}

/** Contacts tab: find a user by name and add them. */
export async function addContactUi(page, name, display = name[0].toUpperCase() + name.slice(1)) {
  await page.getByRole("tab", { name: /Contacts/ }).click();
  await page.getByLabel("Find a user by name").fill(name);
  await page.getByRole("button", { name: "Find" }).click();
  await page.locator(".person-card").getByRole("button", { name: "Add contact" }).click();
  await page.locator(`.contact-list .contact .person-text`, { hasText: display }).waitFor();
}

/** Opens the 1-on-1 chat with a contact, from the Contacts tab. */
export async function openDirectUi(page, name) {
  await page.getByRole("tab", { name: /Contacts/ }).click();
  const display = name[0].toUpperCase() + name.slice(1);
  await page.locator(".contact", { hasText: display }).getByRole("button", { name: "Message" }).click();
  await page.locator(".chat-title", { hasText: display }).waitFor();
}

/** Opens a conversation from the Chats tab by its title. */
export async function openConversationUi(page, title) {
  await page.getByRole("tab", { name: /Chats/ }).click();
  await page.locator(".conv", { has: page.locator(".conv-title", { hasText: title }) }).click();
  await page.locator(".chat-title", { hasText: title }).waitFor();
}

export async function sendUi(page, text) {
  const box = page.getByLabel("Message", { exact: true });
  await box.fill(text);
  await box.press("Enter");
}

/** Waits until a message with this exact text is shown (and, if mine, acknowledged). */
export async function expectMessage(page, text, { sent = false, timeout = 10_000 } = {}) {
  const msg = page.locator(".msg", { has: page.locator(".body", { hasText: text }) });
  await msg.first().waitFor({ timeout });
  if (sent) await page.locator(".msg.mine.sent", { has: page.locator(".body", { hasText: text }) }).first().waitFor({ timeout });
  return msg;
}

/** Texts of the messages shown in the open conversation, in order. */
export function shownBodies(page) {
  return page.locator(".msg-list .msg .body").allTextContents();
}

export function uniqueName(prefix) {
  return `${prefix}${Date.now().toString(36).slice(-4)}${Math.floor(Math.random() * 1e4)}`;
}
