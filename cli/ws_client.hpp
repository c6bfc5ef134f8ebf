// The `tail` WebSocket session over the libwebsockets client API.
//
// Protocol (docs/protocol.md): connect to the ws URL with subprotocol
// "chatcore.v1", send Hello{token, device id, cursor}, wait for Welcome,
// send a Heartbeat every Welcome.heartbeat_ms, hand every Deliver to the
// handler in inbox order and advance the cursor after it. On a dropped
// connection (network, server restart, close 1001/4008/4009) reconnect with
// exponential backoff and jitter, resuming from the cursor, so no message
// is skipped and none is shown twice.
//
// Threading: run() owns the calling thread. lws callbacks only move bytes
// (reassemble inbound messages, write queued frames, record close codes);
// frames are decoded and handed to the TailHandler after lws_service()
// returns, outside any callback, so a handler may block (the CLI looks up
// names over HTTP there) without re-entering lws. SIGINT/SIGTERM are taken
// by a sigtimedwait() thread that wakes the loop with lws_cancel_service().
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "chatcore/protocol.hpp"

namespace chatcore::cli {

class TailHandler {
 public:
  virtual ~TailHandler() = default;
  // Once per connection, after Welcome. `cursor` is the one in effect.
  virtual void on_welcome(const wire::Welcome& welcome, std::uint64_t cursor) = 0;
  // One new inbox entry (inbox_seq > cursor). Return false to stop tailing
  // (stdout was closed, e.g. `tail | head -1`).
  virtual bool on_deliver(std::uint64_t inbox_seq, const wire::Message& message) = 0;
  virtual void on_presence(const wire::Presence& presence) = 0;
  // The cursor moved: persist it.
  virtual void on_cursor(std::uint64_t cursor) = 0;
  // A connection note for people (connected, dropped, reconnecting).
  virtual void on_status(const std::string& text) = 0;
};

struct TailConfig {
  std::string ws_url;  // ws://host:port/ws or wss://...
  std::string token;
  std::string device_id;
  // Hello.cursor of the first connection: the saved cursor, or 0 for the
  // whole inbox, or nullopt for "from now on" (the client then sends
  // UINT64_MAX, which the server clamps to its inbox head and reports in
  // Welcome: the cheapest way to skip a backlog nobody asked for).
  std::optional<std::uint64_t> cursor;
  bool verbose = false;  // lws's own log lines on stderr
};

// Runs the session until SIGINT/SIGTERM or the handler says stop (returns
// kExitOk). Throws CliError: kExitUnauthenticated when the token is refused
// (Error unauthenticated / close 4001); kExitUnavailable when the very first
// connection fails (server down: a script should know at once, not wait in
// a retry loop); kExitRefused on a protocol close (4000/4002/4003: a bug).
int run_tail(const TailConfig& config, TailHandler& handler);

}  // namespace chatcore::cli
