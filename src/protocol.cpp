#include "chatcore/protocol.hpp"

#include <flatbuffers/flatbuffers.h>

#include "internal/frames.hpp"

namespace chatcore {

namespace fb = flatbuffers;

const wire::Frame* verify_frame(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) return nullptr;
  // Depth and table counts far above anything a legitimate client frame
  // needs, low enough that a hostile frame cannot make verification costly.
  fb::Verifier verifier(bytes.data(), bytes.size(), /*max_depth=*/16, /*max_tables=*/4096);
  if (!wire::VerifyFrameBuffer(verifier)) return nullptr;
  return wire::GetFrame(bytes.data());
}

namespace {

std::vector<std::uint8_t> finish(fb::FlatBufferBuilder& b, std::uint64_t request_id,
                                 wire::Body type, fb::Offset<void> body) {
  wire::FrameBuilder frame(b);
  frame.add_request_id(request_id);
  frame.add_body_type(type);
  frame.add_body(body);
  b.Finish(frame.Finish());
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

fb::Offset<wire::Message> build_message(fb::FlatBufferBuilder& b, const Message& m) {
  auto cid = b.CreateVector(m.client_msg_id.bytes.data(), m.client_msg_id.bytes.size());
  auto body = b.CreateString(m.body);
  return wire::CreateMessage(b, m.id.value, m.conversation.value, m.seq, m.sender.value, cid, body,
                             m.sent_at_ms);
}

fb::Offset<wire::Presence> build_presence(fb::FlatBufferBuilder& b, const PresenceInfo& p) {
  return wire::CreatePresence(b, p.user.value, p.online, p.last_seen_ms);
}

}  // namespace

std::vector<std::uint8_t> encode_error(std::uint64_t request_id, const Status& status,
                                       std::uint32_t retry_after_ms) {
  fb::FlatBufferBuilder b(128 + status.message().size());
  auto name = b.CreateString(error_code_name(status.code()));
  auto message = b.CreateString(status.message());
  auto err = wire::CreateError(b, static_cast<std::uint16_t>(status.code()), name, message,
                               retry_after_ms);
  return finish(b, request_id, wire::Body::Error, err.Union());
}

std::vector<std::uint8_t> encode_hello(std::uint64_t request_id, std::string_view token,
                                       std::string_view device_id, std::uint64_t cursor) {
  fb::FlatBufferBuilder b(128);
  auto t = b.CreateString(token.data(), token.size());
  auto d = b.CreateString(device_id.data(), device_id.size());
  auto hello = wire::CreateHello(b, t, d, cursor);
  return finish(b, request_id, wire::Body::Hello, hello.Union());
}

std::vector<std::uint8_t> encode_send(std::uint64_t request_id, ConversationId conv, UserId peer,
                                      const ClientMsgId& client_msg_id, std::string_view body) {
  fb::FlatBufferBuilder b(128 + body.size());
  auto cid = b.CreateVector(client_msg_id.bytes.data(), client_msg_id.bytes.size());
  auto text = b.CreateString(body.data(), body.size());
  auto send = wire::CreateSend(b, conv.value, peer.value, cid, text);
  return finish(b, request_id, wire::Body::Send, send.Union());
}

std::vector<std::uint8_t> encode_heartbeat(std::uint64_t request_id) {
  fb::FlatBufferBuilder b(64);
  auto hb = wire::CreateHeartbeat(b);
  return finish(b, request_id, wire::Body::Heartbeat, hb.Union());
}

std::vector<std::uint8_t> encode_deliver(std::uint64_t inbox_seq, const Message& message) {
  fb::FlatBufferBuilder b(160 + message.body.size());
  auto m = build_message(b, message);
  auto d = wire::CreateDeliver(b, inbox_seq, m);
  return finish(b, 0, wire::Body::Deliver, d.Union());
}

const char* frame_type_name(wire::Body type) noexcept {
  const char* name = wire::EnumNameBody(type);
  return (name && *name) ? name : "Unknown";
}

namespace internal {

Bytes encode_welcome(std::uint64_t request_id, const WelcomeInfo& w) {
  fb::FlatBufferBuilder b(128);
  auto welcome =
      wire::CreateWelcome(b, w.user.value, w.inbox_head, w.heartbeat_ms, w.presence_timeout_ms,
                          w.server_time_ms, w.max_body_chars, w.session_id);
  return finish(b, request_id, wire::Body::Welcome, welcome.Union());
}

Bytes encode_ack(std::uint64_t request_id, const Message& m, std::uint64_t inbox_seq,
                 bool duplicate) {
  fb::FlatBufferBuilder b(128);
  auto ack = wire::CreateAck(b, m.id.value, m.conversation.value, m.seq, inbox_seq, m.sent_at_ms,
                             duplicate);
  return finish(b, request_id, wire::Body::Ack, ack.Union());
}

Bytes encode_sync_batch(std::uint64_t request_id, std::span<const InboxItem> items,
                        std::uint64_t inbox_head) {
  std::size_t bytes = 128;
  for (const auto& item : items) bytes += 96 + item.message->body.size();
  fb::FlatBufferBuilder b(bytes);
  std::vector<fb::Offset<wire::Deliver>> delivers;
  delivers.reserve(items.size());
  for (const auto& item : items) {
    delivers.push_back(wire::CreateDeliver(b, item.inbox_seq, build_message(b, *item.message)));
  }
  auto batch = wire::CreateSyncBatch(b, b.CreateVector(delivers), inbox_head);
  return finish(b, request_id, wire::Body::SyncBatch, batch.Union());
}

Bytes encode_history_page(std::uint64_t request_id, ConversationId conv,
                          std::span<const std::shared_ptr<const Message>> messages) {
  std::size_t bytes = 128;
  for (const auto& m : messages) bytes += 96 + m->body.size();
  fb::FlatBufferBuilder b(bytes);
  std::vector<fb::Offset<wire::Message>> out;
  out.reserve(messages.size());
  for (const auto& m : messages) out.push_back(build_message(b, *m));
  auto page = wire::CreateHistoryPage(b, conv.value, b.CreateVector(out));
  return finish(b, request_id, wire::Body::HistoryPage, page.Union());
}

Bytes encode_heartbeat_ack(std::uint64_t request_id, std::int64_t server_time_ms) {
  fb::FlatBufferBuilder b(64);
  auto ack = wire::CreateHeartbeatAck(b, server_time_ms);
  return finish(b, request_id, wire::Body::HeartbeatAck, ack.Union());
}

Bytes encode_presence(std::uint64_t request_id, const PresenceInfo& p) {
  fb::FlatBufferBuilder b(64);
  auto presence = build_presence(b, p);
  return finish(b, request_id, wire::Body::Presence, presence.Union());
}

Bytes encode_presence_list(std::uint64_t request_id, std::span<const PresenceInfo> items) {
  fb::FlatBufferBuilder b(64 + 32 * items.size());
  std::vector<fb::Offset<wire::Presence>> out;
  out.reserve(items.size());
  for (const auto& p : items) out.push_back(build_presence(b, p));
  auto list = wire::CreatePresenceList(b, b.CreateVector(out));
  return finish(b, request_id, wire::Body::PresenceList, list.Union());
}

Bytes encode_mark_read_ack(std::uint64_t request_id, ConversationId conv, std::uint64_t seq) {
  fb::FlatBufferBuilder b(64);
  auto ack = wire::CreateMarkReadAck(b, conv.value, seq);
  return finish(b, request_id, wire::Body::MarkReadAck, ack.Union());
}

}  // namespace internal
}  // namespace chatcore
