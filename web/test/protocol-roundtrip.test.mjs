// Checks that the pair flatc 2.0.8 (generated TypeScript) + npm flatbuffers
// 2.0.7 (runtime) works: the code compiled (the build type-checked and
// bundled it), and frames survive an encode/decode round trip with 64-bit
// ids above 2^53, a 16-byte client id and a non-ASCII body.
//
//   node --test web/test/protocol-roundtrip.test.mjs   (CHATCORE_WEB_GEN=<build>/web/gen)
import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { join } from "node:path";

// Where build.mjs put the generated code and the protocol bundle.
const gen = process.env.CHATCORE_WEB_GEN ?? fileURLToPath(new URL("../../build/web/gen", import.meta.url));
const p = await import(pathToFileURL(join(gen, "protocol.mjs")).href);

const big = (1n << 62n) | 123456789012345n; // a group conversation id: bit 62 set, > 2^53

test("Hello round-trips", () => {
  const bytes = p.encodeHello(7n, "tok-en", "web-0123456789abcdef", 42);
  const f = p.decodeClientFrameForTest(bytes);
  assert.equal(f.requestId, 7n);
  assert.equal(f.type, "Hello");
  assert.deepEqual(f.hello, { token: "tok-en", deviceId: "web-0123456789abcdef", cursor: 42n });
});

test("Send round-trips with a 64-bit conversation id, client id and UTF-8 body", () => {
  const body = "héllo 👋 wörld";
  const cmid = "00112233445566778899aabbccddeeff";
  const f = p.decodeClientFrameForTest(p.encodeSend(18446744073709551615n, big, cmid, body));
  assert.equal(f.requestId, 18446744073709551615n); // ulong max survives
  assert.equal(f.type, "Send");
  assert.deepEqual(f.send, { conversationId: big, cmid, body });
});

test("a 100,000-code-point body fits and survives", () => {
  const body = "é".repeat(99_999) + "👋";
  const f = p.decodeClientFrameForTest(p.encodeSend(1n, big, "ff".repeat(16), body));
  assert.equal(f.send.body, body);
  assert.equal([...f.send.body].length, 100_000);
});

test("Deliver decodes to plain values", () => {
  const m = {
    messageId: (1n << 60n) + 5n,
    conversationId: big,
    seq: 9007199254740991, // 2^53 - 1: the largest seq a number holds exactly
    senderId: 2147483647n,
    cmid: "0f".repeat(16),
    body: "ünïcødé",
    sentAtMs: 1760000000123,
  };
  const f = p.decodeFrame(p.encodeDeliverForTest(0n, 77, m));
  assert.equal(f.kind, "deliver");
  assert.equal(f.requestId, 0n);
  assert.equal(f.inboxSeq, 77);
  assert.deepEqual(f.message, m);
});

test("an unknown body type decodes as unknown, not as an error", () => {
  const bytes = p.encodeHeartbeat(3n); // a client-only frame: the decoder does not know it as a server frame
  const f = p.decodeFrame(bytes);
  assert.equal(f.kind, "unknown");
  assert.equal(f.requestId, 3n);
});

test("garbage is rejected", () => {
  assert.throws(() => p.decodeFrame(new Uint8Array([1, 2, 3])));
});
