// LwsSession: one WebSocket connection, as the engine sees it
// (chatcore::Session) and as the lws transport drives it.
//
// OUTBOUND. The engine hands us complete frames with send(); we frame each
// as one binary WebSocket message ourselves (server frames are unmasked:
// a 2-10 byte header, then the payload) and append it to one contiguous
// output buffer, bounded (queued_bytes() is what the engine compares with
// Limits::outbound_soft_bytes / outbound_hard_bytes), and mark the session
// dirty. At the end of the event-loop pass the transport calls flush() on
// every dirty session, which hands lws as many whole messages as fit in
// kCoalesceBytes in ONE lws_write(LWS_WRITE_RAW): everything the pass
// queued for one connection (the Ack and the Deliver of one commit, a
// burst of Delivers for a member of a busy group) costs one send(2).
//
// Why at the end of the pass, and not on lws' writable callback: asking
// lws for that callback arms POLLOUT, and on the libuv loop each arm and
// disarm is an epoll_ctl(2), two extra system calls (and one more loop
// pass) per write; they were ~9 % of the server's CPU under 1:1 load. A
// socket with room in its send buffer takes the bytes at once, so we
// write, and fall back to the writable callback (write_pending()) only
// when lws still holds part of an earlier write (the kernel buffer was
// full), when a close is pending, or when more is queued than one write
// takes. lws_write() is safe outside the callback on the service thread:
// whatever the kernel does not take, lws keeps and sends first, ahead of
// any later write (lws_partial_buffered() reports it), so at most one
// write beyond our buffer is ever held inside lws. Writes always end on a
// message boundary, because lws may slip its own control frames (pong,
// close) in between two of our writes.
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
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chatcore/engine.hpp"
#include "chatcore/session.hpp"

struct lws;

namespace chatcored {

class Metrics;

class LwsSession;

// What every session of one transport shares, held once by the transport
// (an idle connection's memory is a product figure: one pointer per
// session instead of a copy of each).
struct SessionContext {
  std::size_t max_frame_bytes;  // caps inbound reassembly
  std::size_t queue_cap_bytes;  // last line of defence above the engine's hard limit (send())
  // Limits::outbound_soft_bytes: the engine pauses an inbox catch-up at it
  // and resumes on Engine::on_writable, which the transport calls from the
  // writable callback.
  std::size_t soft_bytes;
  Metrics& metrics;
  // The sessions with frames queued during the current event-loop pass;
  // the transport flushes them when the pass ends (see OUTBOUND) and
  // removes a session from it before the session can be destroyed.
  std::vector<LwsSession*> dirty;
};

class LwsSession final : public chatcore::Session {
 public:
  // How long a requested close may spend flushing queued frames.
  static constexpr int kCloseFlushSeconds = 5;
  // Most bytes of whole messages gathered into one write. A single message
  // larger than this goes out alone (lws buffers what the kernel refuses).
  static constexpr std::size_t kCoalesceBytes = 64 * 1024;

  // `context` (the transport's) must outlive the session.
  LwsSession(lws* wsi, SessionContext& context);

  // ---- chatcore::Session --------------------------------------------------------
  // Frames and copies the frame into the output buffer and marks the
  // session dirty (flushed when the loop pass ends). A frame sent after
  // close() or after the connection ended is dropped.
  void send(std::span<const std::uint8_t> frame) override;
  std::size_t queued_bytes() const override { return out_.size() - out_head_; }
  void close(chatcore::CloseCode code, std::string_view reason) override;

  // ---- transport side ---------------------------------------------------------------
  // Engine::connect() has given this session its id.
  void set_id(chatcore::SessionId id) {
    id_ = id;
    connected_ = true;
  }
  chatcore::SessionId id() const { return id_; }
  lws* wsi() const { return wsi_; }  // null once detached
  bool connected() const { return connected_; }

  // At the end of an event-loop pass, for a dirty session: writes what is
  // queued, coalesced, if lws holds nothing of an earlier write; asks for
  // a writable callback for whatever is left, for a pending close, and
  // when the queue fell below the soft limit (so that the callback tells
  // the engine to resume a paused catch-up). Returns false when a write
  // failed (the transport then has lws close the connection).
  bool flush();

  // On LWS_CALLBACK_SERVER_WRITEABLE. Writes queued messages, coalesced
  // (see OUTBOUND), while the socket takes them, then starts a requested
  // close once everything is out. Returns false when the callback must
  // return -1: a write failed.
  bool write_pending();

  enum class Fragment {
    kIncomplete,  // more of this message is coming
    kComplete,    // *message holds a whole message
    kTooLarge,    // over max_frame_bytes: close 4003
    kNotBinary,   // a text message: chatcore frames are binary
  };
  // On LWS_CALLBACK_RECEIVE with the chunk lws delivered. Ignores input
  // once a close is pending. On kComplete, *message is the whole message:
  // lws' own rx buffer when it came in one chunk, else the reassembly
  // buffer; valid until message_consumed() or the next append_fragment(),
  // and only inside the RECEIVE callback.
  Fragment append_fragment(std::span<const std::uint8_t> chunk,
                           std::span<const std::uint8_t>* message);
  // The engine is done with the message: frees the reassembly buffer.
  void message_consumed();

  // LWS_CALLBACK_WS_PEER_INITIATED_CLOSE was seen.
  void peer_sent_close() { peer_closed_ = true; }
  // A clean end for Engine::disconnect: the peer sent a close frame, or we
  // initiated the close.
  bool clean_close() const { return peer_closed_ || close_requested_; }
  bool close_requested() const { return close_requested_; }
  chatcore::CloseCode close_code() const { return close_code_; }

  // LWS_CALLBACK_CLOSED: the wsi is gone; later calls do nothing. Leaves
  // the dirty list too.
  void detach();

 private:
  void request_writable();
  void mark_dirty();
  // Writes whole messages, kCoalesceBytes at a time, until the buffer is
  // empty or lws holds part of a write. False if a write failed.
  bool write_queued();
  // Drops the written prefix of out_, and the allocation with it once the
  // buffer is empty, so a session idle after a burst owns no buffer.
  void consume(std::size_t wire_bytes);

  // Every session pays for each field below while it sits idle, which is
  // most of the time (docs/benchmarks.md, idle connections): what only a
  // rare event needs (a multi-chunk message, a close reason) lives behind
  // a pointer, and nothing is stored that can be derived.
  lws* wsi_;
  chatcore::SessionId id_ = 0;
  SessionContext& context_;

  // Framed messages not yet handed to lws: out_[out_head_, out_.size()).
  // A vector rather than a deque of frames: an idle session owns no
  // allocation at all, and a burst is one buffer that one write can take.
  std::vector<std::uint8_t> out_;
  std::size_t out_head_ = 0;

  // Reassembly of a message that arrived in several chunks; null otherwise.
  std::unique_ptr<std::vector<std::uint8_t>> inbound_;
  // The close frame's reason, once close() was called.
  std::unique_ptr<std::string> close_reason_;

  chatcore::CloseCode close_code_ = chatcore::CloseCode::kNormal;

 public:
  // The transport's: this session's position in its table (LwsTransport).
  std::uint32_t table_index = 0;

 private:
  bool in_message_ = false;  // a message has started and not finished
  bool discarding_ = false;  // rest of a refused message: drop until its end
  bool connected_ = false;
  bool dirty_ = false;  // listed in context_.dirty
  bool close_requested_ = false;
  bool closing_ = false;  // the close handshake is handed to lws
  bool peer_closed_ = false;
};

}  // namespace chatcored
