// Entry point: the log-in screen or the chat, and the switch between them.

import { Api, ApiError } from "./api";
import * as persist from "./persist";
import { ChatStore, debug } from "./store";
import { mountApp } from "./ui/app";
import { renderAuth } from "./ui/auth";

const root = document.getElementById("app")!;
const api = new Api();
let store: ChatStore | null = null;
let unmount: (() => void) | null = null;
let startRetry: ReturnType<typeof setTimeout> | undefined;

function showLogin(notice?: string): void {
  renderAuth(
    root,
    api,
    (s) => {
      persist.saveSession(s);
      startApp(s);
    },
    notice,
  );
}

function startApp(session: persist.SavedSession): void {
  api.token = session.token;
  const s = new ChatStore(api, session, persist.deviceId());
  store = s;
  api.onUnauthenticated = () => end("Your session has ended. Please log in again.");
  s.onLoggedOut = () => end("Your session has ended. Please log in again.");
  unmount = mountApp(root, s, async () => {
    await s.logout();
    end();
  });
  const start = (attempt: number) => {
    s.start().catch((e: unknown) => {
      if (store !== s) return;
      if (e instanceof ApiError && e.status === 401) return; // end() already ran
      // The server is down or unreachable at page load: say so, keep trying.
      s.onNotice(`${(e as Error).message} Retrying…`, "error");
      startRetry = setTimeout(() => start(attempt + 1), Math.min(15_000, 1000 * 2 ** attempt));
    });
  };
  start(0);
}

/** Back to the log-in screen: forget the token, close the socket. */
function end(notice?: string): void {
  clearTimeout(startRetry);
  store?.stop();
  store = null;
  unmount?.();
  unmount = null;
  api.token = null;
  api.onUnauthenticated = null;
  persist.saveSession(null);
  history.replaceState(null, "", location.pathname + location.search);
  showLogin(notice);
}

// Logging out (or in as someone else) in another tab applies to this one too.
window.addEventListener("storage", (ev) => {
  if (ev.key !== "chatcore.session") return;
  const s = persist.loadSession();
  if (!s && store) end("You logged out in another tab.");
  else if (s && !store) startApp(s);
  else if (s && store && s.token !== api.token) {
    end();
    startApp(s);
  }
});

// For tests and the console: the live store and the debug switches.
declare global {
  interface Window {
    chatcore: { debug: typeof debug; readonly store: ChatStore | null };
  }
}
window.chatcore = {
  debug,
  get store() {
    return store;
  },
};

const saved = persist.loadSession();
if (saved) startApp(saved);
else showLogin();
