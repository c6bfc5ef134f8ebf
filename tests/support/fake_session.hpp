// Test doubles for driving an Engine without a network: a Session that
// records frames, an Authenticator with fixed tokens, a Notifier that
// records pushes, and a client wrapper that speaks the wire protocol.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "chatcore/engine.hpp"
#include "chatcore/protocol.hpp"

namespace chatcore::testing {

// Records every frame; can pretend its socket is slow (hold = true keeps
// sent bytes counted as queued until drain()).
class FakeSession final : public Session {
 public:
  void send(std::span<const std::uint8_t> frame) override {
    frames.emplace_back(frame.begin(), frame.end());
    if (hold) queued += frame.size();
  }
  std::size_t queued_bytes() const override { return queued; }
  void close(CloseCode code, std::string_view reason) override {
    closed = code;
    close_reason = reason;
  }
  void drain() { queued = 0; }

  std::vector<std::vector<std::uint8_t>> frames;
  std::optional<CloseCode> closed;
  std::string close_reason;
  bool hold = false;
  std::size_t queued = 0;
};

// "tok-<n>" authenticates as user n; anything else is refused.
class FakeAuth final : public Authenticator {
 public:
  Result<Identity> authenticate(std::string_view token) override {
    if (token.rfind("tok-", 0) != 0) return Status::unauthenticated("unknown token");
    auto id = parse_decimal(token.substr(4));
    if (!id) return Status::unauthenticated("unknown token");
    return Identity{UserId(*id), std::string(token)};
  }
};

class RecordingNotifier final : public Notifier {
 public:
  void on_offline_message(UserId recipient, const Message& message) override {
    pushes.emplace_back(recipient, message.id);
  }
  std::vector<std::pair<UserId, MessageId>> pushes;
};

inline const wire::Frame* parse(const std::vector<std::uint8_t>& bytes) {
  const wire::Frame* f = verify_frame(bytes);
  REQUIRE(f != nullptr);
  return f;
}

inline ClientMsgId client_id(std::uint64_t n) {
  ClientMsgId id;
  for (int i = 0; i < 8; ++i) id.bytes[15 - i] = static_cast<std::uint8_t>(n >> (8 * i));
  id.bytes[0] = 0xC1;  // never all-zero
  return id;
}

// One connected client of an engine.
class TestClient {
 public:
  TestClient(Engine& engine) : engine_(engine), session_(std::make_shared<FakeSession>()) {
    id_ = engine_.connect(session_);
  }

  void frame(const std::vector<std::uint8_t>& bytes) { engine_.on_frame(id_, bytes); }
  void hello(std::uint64_t user, const std::string& device = "dev", std::uint64_t cursor = 0) {
    frame(encode_hello(next_rid_++, "tok-" + std::to_string(user), device, cursor));
  }
  std::uint64_t send_to_conv(ConversationId conv, std::uint64_t n, const std::string& body) {
    std::uint64_t rid = next_rid_++;
    frame(encode_send(rid, conv, UserId(), client_id(n), body));
    return rid;
  }
  std::uint64_t send_to_peer(std::uint64_t peer, std::uint64_t n, const std::string& body) {
    std::uint64_t rid = next_rid_++;
    frame(encode_send(rid, ConversationId(), UserId(peer), client_id(n), body));
    return rid;
  }
  void disconnect(bool clean = true) { engine_.disconnect(id_, clean); }

  FakeSession& session() { return *session_; }
  SessionId id() const { return id_; }

  // Frames of one type, in arrival order.
  std::vector<const wire::Frame*> of_type(wire::Body type) const {
    std::vector<const wire::Frame*> out;
    for (const auto& bytes : session_->frames) {
      const wire::Frame* f = verify_frame(bytes);
      if (f && f->body_type() == type) out.push_back(f);
    }
    return out;
  }
  // Inbox seqs of every Deliver received, in arrival order.
  std::vector<std::uint64_t> delivered_seqs() const {
    std::vector<std::uint64_t> out;
    for (const auto* f : of_type(wire::Body::Deliver))
      out.push_back(f->body_as_Deliver()->inbox_seq());
    return out;
  }
  std::vector<std::string> delivered_bodies() const {
    std::vector<std::string> out;
    for (const auto* f : of_type(wire::Body::Deliver)) {
      out.push_back(f->body_as_Deliver()->message()->body()->str());
    }
    return out;
  }
  // The reply (Ack, Error, ...) echoing request id `rid`, or nullptr.
  const wire::Frame* reply(std::uint64_t rid) const {
    for (const auto& bytes : session_->frames) {
      const wire::Frame* f = verify_frame(bytes);
      if (f && f->request_id() == rid) return f;
    }
    return nullptr;
  }
  std::optional<ErrorCode> error_of(std::uint64_t rid) const {
    const wire::Frame* f = reply(rid);
    if (!f || f->body_type() != wire::Body::Error) return std::nullopt;
    return static_cast<ErrorCode>(f->body_as_Error()->code());
  }
  std::uint64_t next_rid() { return next_rid_++; }

 private:
  Engine& engine_;
  std::shared_ptr<FakeSession> session_;
  SessionId id_ = 0;
  std::uint64_t next_rid_ = 1;
};

}  // namespace chatcore::testing
