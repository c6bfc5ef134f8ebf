#include "ws_session.hpp"

#include <libwebsockets.h>

#include <algorithm>
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

LwsSession::LwsSession(lws* wsi, std::size_t max_frame_bytes, std::size_t queue_cap_bytes,
                       Metrics& metrics)
    : wsi_(wsi),
      max_frame_bytes_(max_frame_bytes),
      queue_cap_bytes_(queue_cap_bytes),
      metrics_(metrics) {}

void LwsSession::request_writable() {
  if (wsi_) lws_callback_on_writable(wsi_);
}

void LwsSession::send(std::span<const std::uint8_t> frame) {
  if (!wsi_ || close_requested_) return;
  // The engine closes a session whose queue passes Limits::outbound_hard_
  // bytes right after the send that crossed it. This cap sits well above
  // that, so it only acts if that promise is ever broken: memory stays
  // bounded per connection no matter what.
  if (queued_bytes_ + frame.size() > queue_cap_bytes_) {
    spdlog::warn("ws_queue_cap session={} queued_bytes={} cap={}", id_, queued_bytes_,
                 queue_cap_bytes_);
    close(chatcore::CloseCode::kSlowConsumer, "outbound queue over its limit");
    return;
  }
  std::vector<std::uint8_t> buf(LWS_PRE + frame.size());
  std::memcpy(buf.data() + LWS_PRE, frame.data(), frame.size());
  queue_.push_back(std::move(buf));
  queued_bytes_ += frame.size();
  request_writable();
}

void LwsSession::close(chatcore::CloseCode code, std::string_view reason) {
  if (!wsi_ || close_requested_) return;
  close_requested_ = true;
  close_code_ = code;
  close_reason_ = close_reason_payload(reason);
  if (code == chatcore::CloseCode::kSlowConsumer) {
    queue_.clear();
    queued_bytes_ = 0;
  }
  // Bound the flush: a peer that stops reading must not keep the
  // connection (and its queue) alive.
  lws_set_timeout(wsi_, PENDING_TIMEOUT_USER_OK, kCloseFlushSeconds);
  request_writable();
}

bool LwsSession::write_pending() {
  if (!wsi_) return false;
  while (!queue_.empty()) {
    if (lws_send_pipe_choked(wsi_)) {
      request_writable();
      return true;
    }
    auto& buf = queue_.front();
    std::size_t len = buf.size() - LWS_PRE;
    int n = lws_write(wsi_, buf.data() + LWS_PRE, len, LWS_WRITE_BINARY);
    if (n < 0) {
      spdlog::info("ws_write_failed session={}", id_);
      return false;
    }
    metrics_.ws_frame_out(len);
    queued_bytes_ -= len;
    queue_.pop_front();
  }
  if (close_requested_) {
    // Everything queued is handed to lws; it sends the close frame after
    // any part of the last write the kernel has not taken yet.
    auto* reason = reinterpret_cast<unsigned char*>(close_reason_.data());
    lws_close_reason(wsi_, static_cast<lws_close_status>(close_code_), reason,
                     close_reason_.size());
    return false;
  }
  return true;
}

LwsSession::Fragment LwsSession::append_fragment(std::span<const std::uint8_t> chunk) {
  if (!wsi_ || close_requested_) return Fragment::kIncomplete;
  if (!in_message_) {
    in_message_ = true;
    discarding_ = false;
    inbound_.clear();
  }
  const bool final = lws_is_final_fragment(wsi_) != 0;
  if (!discarding_) {
    if (!lws_frame_is_binary(wsi_)) {
      discarding_ = true;
      in_message_ = !final;
      return Fragment::kNotBinary;
    }
    // The rest of the current WebSocket frame is announced in its header,
    // so an oversized frame is refused at its first chunk.
    std::size_t announced = inbound_.size() + chunk.size() + lws_remaining_packet_payload(wsi_);
    if (announced > max_frame_bytes_) {
      discarding_ = true;
      inbound_.clear();
      inbound_.shrink_to_fit();
      in_message_ = !final;
      return Fragment::kTooLarge;
    }
    inbound_.insert(inbound_.end(), chunk.begin(), chunk.end());
  }
  if (!final) return Fragment::kIncomplete;
  in_message_ = false;
  if (discarding_) {
    discarding_ = false;
    return Fragment::kIncomplete;
  }
  return Fragment::kComplete;
}

void LwsSession::detach() {
  wsi_ = nullptr;
  queue_.clear();
  queued_bytes_ = 0;
  inbound_.clear();
}

}  // namespace chatcored
