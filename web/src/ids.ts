// Identifiers as the client handles them.
//
// Every 64-bit id (users, groups, conversations, messages) is a `bigint` in
// the client: the wire carries them as ulong, and JSON carries them as
// decimal strings because a JavaScript number loses precision above 2^53.
// Sequence numbers (conversation seq, inbox seq) stay plain numbers: they
// are dense counters that start at 1 and never get near 2^53.
//
// A client message id is 16 random bytes. The client keys its outbox by
// their lowercase hex (32 characters); the HTTP API writes them as a UUID
// (the same hex with dashes), so `cmidFromUuid` normalises that form.

export type Id = bigint;

/** Parses a decimal id string from the HTTP API. */
export function parseId(text: string): Id {
  if (!/^[0-9]{1,20}$/.test(text)) throw new Error(`malformed id: ${JSON.stringify(text)}`);
  return BigInt(text);
}

/** An id as the HTTP API wants it: a decimal string. */
export function idText(id: Id): string {
  return id.toString(10);
}

/** A seq from the wire (ulong, so bigint) as a number. */
export function seqOf(value: bigint): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`seq out of range: ${value}`);
  return Number(value);
}

export function bytesToHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

export function hexToBytes(hex: string): Uint8Array {
  if (!/^([0-9a-f]{2})*$/.test(hex)) throw new Error("malformed hex");
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** A fresh client message id: 16 random bytes, never all zero (the server refuses that). */
export function newClientMsgId(): string {
  const bytes = new Uint8Array(16);
  do crypto.getRandomValues(bytes);
  while (bytes.every((b) => b === 0));
  return bytesToHex(bytes);
}

/** "0123abcd-..." (HTTP) -> "0123abcd..." (the client's key). */
export function cmidFromUuid(uuid: string): string {
  return uuid.replace(/-/g, "").toLowerCase();
}

/** A device id for this browser profile: "web-" and 24 hex digits (the server allows 1..64 bytes). */
export function newDeviceId(): string {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return `web-${bytesToHex(bytes)}`;
}

/**
 * Length in Unicode code points, the unit of the server's body limit.
 * `str.length` counts UTF-16 code units, so an emoji would count twice.
 */
export function codePointLength(text: string): number {
  let n = 0;
  // for..of iterates by code point, without building the array [...text] would.
  for (const _ of text) n++;
  return n;
}
