// Times as people read them.

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

function sameDay(a: Date, b: Date): boolean {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

export function clock(ms: number): string {
  return new Date(ms).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

/** "14:03" today, "Mon" this week, "12 Mar" before. For the conversation list. */
export function shortWhen(ms: number, now = Date.now()): string {
  if (!ms) return "";
  const d = new Date(ms);
  const n = new Date(now);
  if (sameDay(d, n)) return clock(ms);
  if (now - ms < 6 * 24 * HOUR) return d.toLocaleDateString(undefined, { weekday: "short" });
  return d.toLocaleDateString(undefined, { day: "numeric", month: "short" });
}

/** A day heading in the message list: "Today", "Yesterday", "Monday 12 March 2025". */
export function dayHeading(ms: number, now = Date.now()): string {
  const d = new Date(ms);
  const n = new Date(now);
  if (sameDay(d, n)) return "Today";
  if (sameDay(d, new Date(now - 24 * HOUR))) return "Yesterday";
  return d.toLocaleDateString(undefined, { weekday: "long", day: "numeric", month: "long", year: "numeric" });
}

export function dayKey(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

/** "online", "last seen just now", "last seen 5 min ago", "last seen today at 14:03", ... */
export function presenceText(online: boolean | undefined, lastSeenMs: number | undefined, now = Date.now()): string {
  if (online) return "online";
  if (online === undefined) return "";
  if (!lastSeenMs) return "offline";
  const ago = now - lastSeenMs;
  if (ago < MINUTE) return "last seen just now";
  if (ago < HOUR) return `last seen ${Math.floor(ago / MINUTE)} min ago`;
  const d = new Date(lastSeenMs);
  if (sameDay(d, new Date(now))) return `last seen today at ${clock(lastSeenMs)}`;
  if (sameDay(d, new Date(now - 24 * HOUR))) return `last seen yesterday at ${clock(lastSeenMs)}`;
  return `last seen ${d.toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" })}`;
}
