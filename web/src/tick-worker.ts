// A metronome in a dedicated worker. The page asks it for a tick every N ms
// (0 stops it). Browsers throttle timers in background tabs, down to one
// wake-up a minute after a few minutes hidden; a worker's timers are not
// throttled that way, and a message from it wakes the page. Heartbeats ride
// on these ticks so a chat left in a background tab stays online.
let timer: ReturnType<typeof setInterval> | undefined;
// Typed as a worker scope by hand: the project compiles against the DOM lib.
const scope = self as unknown as { postMessage(m: number): void; onmessage: ((e: MessageEvent<number>) => void) | null };

scope.onmessage = (e: MessageEvent<number>) => {
  if (timer !== undefined) clearInterval(timer);
  timer = undefined;
  if (e.data > 0) timer = setInterval(() => scope.postMessage(0), e.data);
};
