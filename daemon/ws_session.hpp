// LwsSession: one WebSocket connection, as the engine sees it
// (chatcore::Session) and as the lws transport drives it.
//
// OUTBOUND. The engine hands us complete frames with send(); we copy each
// into a bounded FIFO (queued_bytes() is what the engine compares with
// Limits::outbound_soft_bytes / outbound_hard_bytes) and ask lws for a
// writable callback. On it, write_pending() writes frames one lws_write()
// each (one binary WebSocket message per frame, LWS_PRE bytes of headroom
// in front) for as long as the socket takes them: lws_send_pipe_choked()
// says when to stop. lws keeps whatever the kernel did not take of the last
// write and reports the pipe choked until it is out, so at most one frame
// beyond our queue is ever buffered inside lws.
//
// CLOSING. close() is a request: the queued frames are flushed first (an
// Error frame that explains a close must reach the client before it), then
// the close frame goes out with the code and reason. Two exceptions:
//  * kSlowConsumer drops the queue at once: the peer is not reading, so
//    flushing would wait forever and hold the memory the limit protects.
//    The client resyncs from its inbox cursor when it reconnects.
//  * a flush that takes longer than kCloseFlushSeconds is cut short by an
//    lws timeout (the connection is then dropped without a close frame).
//
// INBOUND. lws hands us a WebSocket message in pieces: the peer's own
// fragments (continuation frames), each further split into rx-buffer-sized
// chunks. append_fragment() reassembles them into one buffer capped at
// Limits::max_frame_bytes, refusing as early as the announced payload
// length allows (lws_remaining_packet_payload), so an oversized frame
// costs no more memory than the cap.
//
// Thread-safety: owner thread only (the lws service thread), like the
// engine that calls it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chatcore/engine.hpp"
#include "chatcore/session.hpp"

struct lws;

namespace chatcored {

class Metrics;

class LwsSession final : public chatcore::Session {
 public:
  // How long a requested close may spend flushing queued frames.
  static constexpr int kCloseFlushSeconds = 5;

  // `max_frame_bytes` caps inbound reassembly; `queue_cap_bytes` is a last
  // line of defence above the engine's hard limit (see send()).
  LwsSession(lws* wsi, std::size_t max_frame_bytes, std::size_t queue_cap_bytes, Metrics& metrics);

  // ---- chatcore::Session --------------------------------------------------------
  // Copies the frame into the queue and asks for a writable callback. A
  // frame sent after close() or after the connection ended is dropped.
  void send(std::span<const std::uint8_t> frame) override;
  std::size_t queued_bytes() const override { return queued_bytes_; }
  void close(chatcore::CloseCode code, std::string_view reason) override;

  // ---- transport side ---------------------------------------------------------------
  // Engine::connect() has given this session its id.
  void set_id(chatcore::SessionId id) {
    id_ = id;
    connected_ = true;
  }
  chatcore::SessionId id() const { return id_; }
  bool connected() const { return connected_; }

  // On LWS_CALLBACK_SERVER_WRITEABLE. Writes queued frames while the socket
  // takes them. Returns false when the callback must return -1: a close
  // was requested and is due (lws_close_reason() has been set), or a write
  // failed.
  bool write_pending();

  enum class Fragment {
    kIncomplete,  // more of this message is coming
    kComplete,    // message() holds a whole message
    kTooLarge,    // over max_frame_bytes: close 4003
    kNotBinary,   // a text message: chatcore frames are binary
  };
  // On LWS_CALLBACK_RECEIVE with the chunk lws delivered. Ignores input
  // once a close is pending.
  Fragment append_fragment(std::span<const std::uint8_t> chunk);
  // The reassembled message after kComplete; valid until the next
  // append_fragment().
  std::span<const std::uint8_t> message() const { return inbound_; }

  // LWS_CALLBACK_WS_PEER_INITIATED_CLOSE was seen.
  void peer_sent_close() { peer_closed_ = true; }
  // A clean end for Engine::disconnect: the peer sent a close frame, or we
  // initiated the close.
  bool clean_close() const { return peer_closed_ || close_requested_; }
  bool close_requested() const { return close_requested_; }
  chatcore::CloseCode close_code() const { return close_code_; }

  // LWS_CALLBACK_CLOSED: the wsi is gone; later calls do nothing.
  void detach();

 private:
  void request_writable();

  lws* wsi_;
  chatcore::SessionId id_ = 0;
  bool connected_ = false;
  std::size_t max_frame_bytes_;
  std::size_t queue_cap_bytes_;
  Metrics& metrics_;

  std::deque<std::vector<std::uint8_t>> queue_;  // each frame with LWS_PRE headroom
  std::size_t queued_bytes_ = 0;                 // payload bytes in queue_

  std::vector<std::uint8_t> inbound_;
  bool in_message_ = false;  // a message has started and not finished
  bool discarding_ = false;  // rest of a refused message: drop until its end

  bool close_requested_ = false;
  chatcore::CloseCode close_code_ = chatcore::CloseCode::kNormal;
  std::string close_reason_;
  bool peer_closed_ = false;
};

}  // namespace chatcored
