#include "ws_session.hpp"

#include <libwebsockets.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <spdlog/spdlog.h>

#include "metrics.hpp"

namespace chatcored {

namespace {

// A close frame's payload is at most 125 bytes, two of them the code. Cut
// the reason at a UTF-8 character boundary so the peer's validator (close
// reasons must be valid UTF-8) accepts it.
std::string close_reason_payload(std::string_view reason) {
  constexpr std::size_t kMax = 123;
  if (reason.size() <= kMax) return std::string(reason);
  std::size_t cut = kMax;
  while (cut > 0 && (static_cast<unsigned char>(reason[cut]) & 0xC0) == 0x80) --cut;
  return std::string(reason.substr(0, cut));
}

}  // namespace

LwsSession::LwsSession(lws* wsi, SessionContext& context) : wsi_(wsi), context_(context) {}

void LwsSession::request_writable() {
  if (wsi_) lws_callback_on_writable(wsi_);
}

void LwsSession::mark_dirty() {
  if (dirty_ || !wsi_) return;
  dirty_ = true;
  context_.dirty.push_back(this);
}

void LwsSession::send(std::span<const std::uint8_t> frame) {
  if (!wsi_ || close_requested_) return;
  // RFC 6455 §5.2, server to client: FIN + binary opcode, no mask, then
  // the payload length in 7, 7+16 or 7+64 bits.
  std::uint8_t header[10];
  std::size_t header_len = 2;
  const std::uint64_t len = frame.size();
  header[0] = 0x82;
  if (len < 126) {
    header[1] = static_cast<std::uint8_t>(len);
  } else if (len <= 0xFFFF) {
    header[1] = 126;
    header[2] = static_cast<std::uint8_t>(len >> 8);
    header[3] = static_cast<std::uint8_t>(len);
    header_len = 4;
  } else {
    header[1] = 127;
    for (int i = 0; i < 8; ++i) header[2 + i] = static_cast<std::uint8_t>(len >> (56 - 8 * i));
    header_len = 10;
  }
  const std::size_t wire = header_len + frame.size();
  // The engine closes a session whose queue passes Limits::outbound_hard_
  // bytes right after the send that crossed it. This cap sits well above
  // that, so it only acts if that promise is ever broken: memory stays
  // bounded per connection no matter what.
  if (queued_bytes() + wire > context_.queue_cap_bytes) {
    spdlog::warn("ws_queue_cap session={} queued_bytes={} cap={}", id_, queued_bytes(),
                 context_.queue_cap_bytes);
    close(chatcore::CloseCode::kSlowConsumer, "outbound queue over its limit");
    return;
  }
  if (out_.capacity() == 0) out_.reserve(std::max<std::size_t>(wire, 512));
  out_.insert(out_.end(), header, header + header_len);
  out_.insert(out_.end(), frame.begin(), frame.end());
  context_.metrics.ws_frame_out(frame.size());
  mark_dirty();
}

void LwsSession::close(chatcore::CloseCode code, std::string_view reason) {
  if (!wsi_ || close_requested_) return;
  close_requested_ = true;
  close_code_ = code;
  close_reason_ = std::make_unique<std::string>(close_reason_payload(reason));
  if (code == chatcore::CloseCode::kSlowConsumer) {
    std::vector<std::uint8_t>().swap(out_);
    out_head_ = 0;
  }
  // Bound the flush: a peer that stops reading must not keep the
  // connection (and its queue) alive.
  lws_set_timeout(wsi_, PENDING_TIMEOUT_USER_OK, kCloseFlushSeconds);
  request_writable();
}

namespace {

// Wire length of the framed message starting at `p` (header + payload);
// `p` points at a header send() wrote.
std::size_t framed_length(const std::uint8_t* p) {
  std::uint64_t len = p[1] & 0x7F;
  std::size_t header = 2;
  if (len == 126) {
    len = (std::uint64_t{p[2]} << 8) | p[3];
    header = 4;
  } else if (len == 127) {
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
    header = 10;
  }
  return header + static_cast<std::size_t>(len);
}

}  // namespace

bool LwsSession::write_queued() {
  while (out_head_ < out_.size()) {
    // lws still holds part of an earlier write: the kernel buffer was
    // full, so wait for the writable callback.
    if (lws_partial_buffered(wsi_)) return true;
    // Whole messages only, up to kCoalesceBytes (at least one message).
    std::size_t chunk = 0;
    const std::size_t available = out_.size() - out_head_;
    while (chunk < available) {
      std::size_t next = framed_length(out_.data() + out_head_ + chunk);
      if (chunk > 0 && chunk + next > kCoalesceBytes) break;
      chunk += next;
    }
    // LWS_WRITE_RAW: the bytes are already WebSocket frames; lws writes
    // them as they are (TLS included) and keeps any part the kernel does
    // not take, asking for a writable callback itself.
    int n = lws_write(wsi_, out_.data() + out_head_, chunk, LWS_WRITE_RAW);
    if (n < 0) {
      spdlog::info("ws_write_failed session={}", id_);
      return false;
    }
    context_.metrics.ws_write();
    consume(chunk);
  }
  return true;
}

bool LwsSession::flush() {
  dirty_ = false;
  if (!wsi_) return true;
  if (closing_) return true;  // lws is sending the close frame
  const bool paced = queued_bytes() >= context_.soft_bytes;
  if (!write_queued()) return false;
  // Left over (lws holds part of a write), a close to start, or a paused
  // catch-up to resume: all wait for the writable callback, where lws lets
  // us know the socket has room.
  if (out_head_ < out_.size() || close_requested_ ||
      (paced && queued_bytes() < context_.soft_bytes)) {
    request_writable();
  }
  return true;
}

bool LwsSession::write_pending() {
  if (!wsi_) return false;
  if (closing_) return true;  // lws is sending the close frame
  if (!write_queued()) return false;
  if (out_head_ < out_.size()) {
    request_writable();
    return true;
  }
  if (close_requested_) {
    // Everything queued is handed to lws. Start the close handshake only
    // once lws holds none of it either: a close begun with output still
    // buffered in lws flushes it and then drops the connection without a
    // close frame.
    if (lws_send_pipe_choked(wsi_)) {
      request_writable();
      return true;
    }
    auto* reason = reinterpret_cast<unsigned char*>(close_reason_->data());
    lws_close_reason(wsi_, static_cast<lws_close_status>(close_code_), reason,
                     close_reason_->size());
    // Close now, once, rather than by returning -1 from this callback:
    // Debian's lws 4.1 (built with _DEBUG) closes a wsi a second time after
    // a callback's -1 when it runs on libuv, and that second close kills
    // the connection before the close frame is sent. Here lws only moves
    // the connection to "waiting to send close" and sends the frame on
    // the next writable pass, then waits for the peer's close.
    closing_ = true;
    lws_set_timeout(wsi_, NO_PENDING_TIMEOUT, LWS_TO_KILL_SYNC);
    return true;
  }
  return true;
}

void LwsSession::consume(std::size_t wire_bytes) {
  out_head_ += wire_bytes;
  if (out_head_ == out_.size()) {
    out_head_ = 0;
    // Give the buffer back: most sessions are idle most of the time, and
    // an idle session should own nothing (one malloc per burst is cheap).
    std::vector<std::uint8_t>().swap(out_);
  } else if (out_head_ >= kCoalesceBytes && out_head_ * 2 >= out_.size()) {
    // Mostly written: move the tail down rather than grow forever.
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_head_));
    out_head_ = 0;
  }
}

LwsSession::Fragment LwsSession::append_fragment(std::span<const std::uint8_t> chunk,
                                                 std::span<const std::uint8_t>* message) {
  if (!wsi_ || close_requested_) return Fragment::kIncomplete;
  const bool final = lws_is_final_fragment(wsi_) != 0;
  if (!in_message_ && final && lws_frame_is_binary(wsi_) &&
      chunk.size() <= context_.max_frame_bytes &&
      reinterpret_cast<std::uintptr_t>(chunk.data()) % alignof(std::max_align_t) == 0) {
    // The whole message is in this one chunk: hand lws' buffer to the
    // engine without a copy. FlatBuffers reads scalars in place, so this
    // needs an aligned start; lws 4.1 hands payload from its read buffer
    // just after the frame header, which often is not aligned, and then
    // the message takes the copying path below.
    *message = chunk;
    return Fragment::kComplete;
  }
  if (!in_message_) {
    in_message_ = true;
    discarding_ = false;
    if (inbound_) {
      inbound_->clear();
    } else {
      inbound_ = std::make_unique<std::vector<std::uint8_t>>();
    }
  }
  if (!discarding_) {
    if (!lws_frame_is_binary(wsi_)) {
      discarding_ = true;
      in_message_ = !final;
      inbound_.reset();
      return Fragment::kNotBinary;
    }
    // The rest of the current WebSocket frame is announced in its header,
    // so an oversized frame is refused at its first chunk.
    std::size_t announced = inbound_->size() + chunk.size() + lws_remaining_packet_payload(wsi_);
    if (announced > context_.max_frame_bytes) {
      discarding_ = true;
      inbound_.reset();
      in_message_ = !final;
      return Fragment::kTooLarge;
    }
    inbound_->insert(inbound_->end(), chunk.begin(), chunk.end());
  }
  if (!final) return Fragment::kIncomplete;
  in_message_ = false;
  if (discarding_) {
    discarding_ = false;
    inbound_.reset();
    return Fragment::kIncomplete;
  }
  *message = *inbound_;
  return Fragment::kComplete;
}

void LwsSession::message_consumed() {
  // Reassembly buffers are for the rare message larger than the rx buffer;
  // give it back so an idle connection keeps none.
  inbound_.reset();
}

void LwsSession::detach() {
  if (dirty_) {
    std::erase(context_.dirty, this);
    dirty_ = false;
  }
  wsi_ = nullptr;
  std::vector<std::uint8_t>().swap(out_);
  out_head_ = 0;
  inbound_.reset();
}

}  // namespace chatcored
