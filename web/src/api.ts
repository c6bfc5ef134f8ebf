// The HTTP API (docs/http-api.md): JSON under /api/v1, bearer tokens, ids
// as decimal strings, errors as {"error":{"code","message"}}.
//
// Each method returns the JSON as the server wrote it (ids still strings);
// the store converts to bigint where it keeps them. Every failure, a
// network failure included, is an ApiError with a message fit to show.

export interface MessageJson {
  message_id: string;
  conversation_id: string;
  seq: number;
  sender_id: string;
  client_msg_id: string; // UUID form
  body: string;
  sent_at: number;
}

export interface ProfileJson {
  user_id: string;
  name: string;
  display_name: string;
  about?: string;
  image_url?: string;
}

export interface PresenceJson {
  user_id: string;
  name: string;
  display_name: string;
  online: boolean;
  last_seen: number | null;
}

export interface MemberJson extends PresenceJson {
  role: "owner" | "admin" | "member";
}

export interface GroupJson {
  group_id: string;
  conversation_id: string;
  name: string;
  owner_id: string;
  members: MemberJson[];
}

export interface ConversationJson {
  conversation_id: string;
  kind: "direct" | "group";
  title: string;
  peer_user_id?: string;
  group_id?: string;
  last_seq: number;
  last_activity: number;
  last_message: MessageJson | null;
  read_seq: number;
  unread: number;
}

export class ApiError extends Error {
  constructor(
    readonly status: number, // 0: no answer (network)
    readonly code: string, // the stable error name, e.g. "already_exists"
    message: string,
    readonly retryAfterMs = 0,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export class Api {
  token: string | null = null;
  /** Called on any 401 for an authenticated call: the token was revoked or expired. */
  onUnauthenticated: (() => void) | null = null;

  constructor(private readonly base = "/api/v1") {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const authed = this.token !== null;
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch {
      throw new ApiError(0, "network", "Cannot reach the server. Check your connection and try again.");
    }
    if (res.status === 204) return undefined as T;
    let json: unknown = null;
    try {
      json = await res.json();
    } catch {
      // A proxy's HTML error page, say: reported below by status.
    }
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string; retry_after_ms?: number } } | null)?.error;
      const e = new ApiError(
        res.status,
        err?.code ?? "http_" + res.status,
        err?.message || `The server answered ${res.status} ${res.statusText}`,
        err?.retry_after_ms ?? 0,
      );
      if (res.status === 401 && authed) this.onUnauthenticated?.();
      throw e;
    }
    return json as T;
  }

  // ---- accounts and sessions ----
  signup(name: string, password: string, displayName?: string) {
    const body: Record<string, string> = { name, password };
    if (displayName) body.display_name = displayName;
    return this.call<{ user_id: string; name: string }>("POST", "/users", body);
  }
  login(name: string, password: string) {
    return this.call<{ token: string; user_id: string; expires_at: number }>("POST", "/sessions", { name, password });
  }
  logout() {
    return this.call<void>("DELETE", "/sessions");
  }
  me() {
    return this.call<ProfileJson>("GET", "/users/me");
  }
  findUser(name: string) {
    return this.call<ProfileJson>("GET", `/users?name=${encodeURIComponent(name)}`);
  }
  user(id: string) {
    return this.call<ProfileJson>("GET", `/users/${id}`);
  }

  // ---- contacts ----
  contacts() {
    return this.call<{ contacts: PresenceJson[] }>("GET", "/contacts");
  }
  addContact(userId: string) {
    return this.call<PresenceJson>("POST", "/contacts", { user_id: userId });
  }
  removeContact(userId: string) {
    return this.call<void>("DELETE", `/contacts/${userId}`);
  }

  // ---- groups ----
  createGroup(name: string, members: string[]) {
    return this.call<{ group_id: string; conversation_id: string; name: string }>("POST", "/groups", { name, members });
  }
  group(groupId: string) {
    return this.call<GroupJson>("GET", `/groups/${groupId}`);
  }
  addMember(groupId: string, userId: string) {
    return this.call<unknown>("POST", `/groups/${groupId}/members`, { user_id: userId });
  }
  removeMember(groupId: string, userId: string) {
    return this.call<void>("DELETE", `/groups/${groupId}/members/${userId}`);
  }

  // ---- conversations ----
  conversations() {
    return this.call<{ conversations: ConversationJson[] }>("GET", "/conversations");
  }
  direct(userId: string) {
    return this.call<{ conversation_id: string }>("POST", "/conversations/direct", { user_id: userId });
  }
  /** A history page, always chronological; at most one bound. */
  messages(conversationId: string, q: { before?: number; after?: number; limit?: number }) {
    const p = new URLSearchParams();
    if (q.before) p.set("before_seq", String(q.before));
    if (q.after) p.set("after_seq", String(q.after));
    if (q.limit) p.set("limit", String(q.limit));
    return this.call<{ messages: MessageJson[] }>("GET", `/conversations/${conversationId}/messages?${p}`);
  }
  markRead(conversationId: string, seq: number) {
    return this.call<{ read_seq: number; unread: number }>("POST", `/conversations/${conversationId}/read`, { seq });
  }
  discover() {
    return this.call<{ ws_url: string }>("GET", "/discover");
  }
}
