// What the client keeps in the browser, and where (docs/web-client.md).
//
// localStorage (shared by every tab of this browser profile):
//   chatcore.device            this browser profile's device id: one device per profile
//   chatcore.session           {token, userId, name} of the logged-in user
//   chatcore.cursor.<userId>   the highest inbox seq any tab of this device has processed
// sessionStorage (one per tab, survives a reload of that tab):
//   chatcore.outbox.<userId>   sends not acknowledged yet, with their client ids
//
// Why the outbox is per tab: the tab that typed a message owns its retries.
// A reload resends it with the same client id (the server dedups), and a
// second tab never resends the first tab's messages.

import { newDeviceId } from "./ids";

export interface SavedSession {
  token: string;
  userId: string;
  name: string;
}

export interface SavedSend {
  cmid: string;
  conversationId: string;
  body: string;
  createdAt: number;
  failed?: string; // the error shown, for a send the server refused
}

function read<T>(storage: Storage, key: string): T | null {
  try {
    const text = storage.getItem(key);
    return text === null ? null : (JSON.parse(text) as T);
  } catch {
    return null; // unreadable: treat as absent rather than fail to start
  }
}

function write(storage: Storage, key: string, value: unknown): void {
  try {
    if (value === null) storage.removeItem(key);
    else storage.setItem(key, JSON.stringify(value));
  } catch {
    // Quota exceeded or storage disabled (private mode): the client still
    // works, it only forgets more on reload.
  }
}

export function deviceId(): string {
  let id = read<string>(localStorage, "chatcore.device");
  if (!id || typeof id !== "string" || id.length > 64) {
    id = newDeviceId();
    write(localStorage, "chatcore.device", id);
  }
  return id;
}

export function loadSession(): SavedSession | null {
  const s = read<SavedSession>(localStorage, "chatcore.session");
  return s && typeof s.token === "string" && typeof s.userId === "string" ? s : null;
}

export function saveSession(s: SavedSession | null): void {
  write(localStorage, "chatcore.session", s);
}

export function loadCursor(userId: string): number {
  const n = read<number>(localStorage, `chatcore.cursor.${userId}`);
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

/** Raises the device cursor; another tab may be further along, so never lowers it. */
export function raiseCursor(userId: string, cursor: number): void {
  if (cursor > loadCursor(userId)) write(localStorage, `chatcore.cursor.${userId}`, cursor);
}

/** Sets the cursor outright: only when the server says the inbox is shorter (a wiped server). */
export function resetCursor(userId: string, cursor: number): void {
  write(localStorage, `chatcore.cursor.${userId}`, cursor);
}

export function loadOutbox(userId: string): SavedSend[] {
  const list = read<SavedSend[]>(sessionStorage, `chatcore.outbox.${userId}`);
  return Array.isArray(list) ? list : [];
}

export function saveOutbox(userId: string, list: SavedSend[]): void {
  write(sessionStorage, `chatcore.outbox.${userId}`, list.length ? list : null);
}
