// Session: what a transport implements so the engine can talk to one client
// connection (a WebSocket in chatcored, a fake in tests, anything else in an
// embedding application).
//
// The engine calls a Session only on the thread that owns the engine (the
// "network thread", see engine.hpp), and never re-entrantly: send() and
// close() must not call back into the Engine. Frames are complete protocol
// frames (one FlatBuffers `Frame` each, see schema/wire.fbs).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace chatcore {

// WebSocket close codes the engine uses (RFC 6455 reserves 4000-4999 for
// applications). Stable: documented in docs/protocol.md.
enum class CloseCode : std::uint16_t {
  kNormal = 1000,             // the peer asked to close, or logout
  kGoingAway = 1001,          // server shutting down; reconnect elsewhere/later
  kProtocolViolation = 4000,  // a valid frame where it is not allowed (e.g. before Hello)
  kUnauthenticated = 4001,    // Hello with a bad/expired/revoked token, or token revoked later
  kMalformedFrame = 4002,     // a frame failed the FlatBuffers verifier
  kFrameTooLarge = 4003,      // a frame over Limits::max_frame_bytes
  kSlowConsumer = 4008,       // outbound queue over Limits::outbound_hard_bytes
  kHeartbeatTimeout = 4009,   // no Heartbeat within the presence timeout
};

const char* close_code_name(CloseCode code) noexcept;

class Session {
 public:
  virtual ~Session() = default;

  // Queues one frame for the peer. Must not block. The bytes are only valid
  // during the call: copy them.
  virtual void send(std::span<const std::uint8_t> frame) = 0;

  // Bytes accepted by send() and not yet written to the peer. The engine
  // uses it for backpressure (Limits::outbound_soft_bytes/hard_bytes).
  virtual std::size_t queued_bytes() const = 0;

  // Asks the transport to close the connection after flushing what is
  // queued. The transport still reports the end with Engine::disconnect().
  virtual void close(CloseCode code, std::string_view reason) = 0;
};

}  // namespace chatcore
