// LwsSession: one WebSocket connection, as the engine sees it
// (chatcore::Session) and as the lws transport drives it.
//
// OUTBOUND. The engine hands us complete frames with send(); we frame each
// as one binary WebSocket message ourselves (server frames are unmasked:
// a 2-10 byte header, then the payload) and append it to one contiguous
// output buffer, bounded (queued_bytes() is what the engine compares with
// Limits::outbound_soft_bytes / outbound_hard_bytes), then ask lws for a
// writable callback. On it, write_pending() hands lws as many whole
// messages as fit in kCoalesceBytes in ONE lws_write(LWS_WRITE_RAW): the
// Ack and the Deliver of one commit, or a burst of Delivers for a member
// of a busy group, cost one send(2) instead of one each. Writes always end
// on a message boundary, because lws may slip its own control frames
// (pong, close) in between two of our writes. lws keeps whatever the
// kernel did not take of the last write and reports the pipe choked until
// it is out (lws_send_pipe_choked()), so at most one write beyond our
// buffer is ever held inside lws.
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
// chunks. A message that arrives in one chunk at an aligned address is
// passed on from lws' buffer without a copy; otherwise append_fragment() reassembles it into one
// buffer capped at Limits::max_frame_bytes, refusing as early as the announced payload length
// allows (lws_remaining_packet_payload), so an oversized frame costs no more memory than the cap.
//
// Thread-safety: owner thread only (the lws service thread), like the
// engine that calls it.
#pragma once

#include <cstddef>
#include <cstdint>
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
  // Most bytes of whole messages gathered into one write. A single message
  // larger than this goes out alone (lws buffers what the kernel refuses).
  static constexpr std::size_t kCoalesceBytes = 64 * 1024;

  // `max_frame_bytes` caps inbound reassembly; `queue_cap_bytes` is a last
  // line of defence above the engine's hard limit (see send()).
  LwsSession(lws* wsi, std::size_t max_frame_bytes, std::size_t queue_cap_bytes, Metrics& metrics);

  // ---- chatcore::Session --------------------------------------------------------
  // Frames and copies the frame into the output buffer and asks for a
  // writable callback. A frame sent after close() or after the connection
  // ended is dropped.
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

  // On LWS_CALLBACK_SERVER_WRITEABLE. Writes queued messages, coalesced
  // (see OUTBOUND), while the socket takes them, then starts a requested
  // close once everything is out. Returns false when the callback must
  // return -1: a write failed.
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
  // The message after kComplete: lws' own rx buffer when the message came
  // in one chunk, else the reassembly buffer. Valid until
  // message_consumed() or the next append_fragment(), and only inside the
  // RECEIVE callback that returned kComplete.
  std::span<const std::uint8_t> message() const { return message_; }
  // The engine is done with message(): frees the reassembly buffer.
  void message_consumed();

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
  // Drops the written prefix of out_, and the allocation with it once the
  // buffer is empty, so a session idle after a burst owns no buffer.
  void consume(std::size_t wire_bytes);

  lws* wsi_;
  chatcore::SessionId id_ = 0;
  bool connected_ = false;
  std::size_t max_frame_bytes_;
  std::size_t queue_cap_bytes_;
  Metrics& metrics_;

  // Framed messages not yet handed to lws: out_[out_head_, out_.size()).
  // A vector rather than a deque of frames: an idle session owns no
  // allocation at all, and a burst is one buffer that one write can take.
  std::vector<std::uint8_t> out_;
  std::size_t out_head_ = 0;
  std::size_t queued_bytes_ = 0;  // wire bytes in out_ not yet written

  std::vector<std::uint8_t> inbound_;  // reassembly of a multi-chunk message
  std::span<const std::uint8_t> message_;
  bool in_message_ = false;  // a message has started and not finished
  bool discarding_ = false;  // rest of a refused message: drop until its end

  bool close_requested_ = false;
  bool closing_ = false;  // the close handshake is handed to lws
  chatcore::CloseCode close_code_ = chatcore::CloseCode::kNormal;
  std::string close_reason_;
  bool peer_closed_ = false;
};

}  // namespace chatcored
