#include "chatcore_client.hpp"

#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "chatcore/wire_generated.h"
#include "http_setup.hpp"
#include "ws_client.hpp"

namespace chatcore_bench {

namespace wire = chatcore::wire;

namespace {

constexpr std::uint64_t kHelloId = 1;
constexpr std::uint64_t kHeartbeatId = 2;
constexpr std::uint64_t kSendIdBase = 1000;

// One builder for every frame: the generator is single-threaded and each
// frame is copied into the socket's output before the next is built.
flatbuffers::FlatBufferBuilder& builder() {
  static flatbuffers::FlatBufferBuilder b(512);
  return b;
}

class ChatcoreClient final : public WsClient, public BenchClient {
 public:
  ChatcoreClient(asio::io_context& io, Events& events, const ClientSpec& spec,
                 const ChatcoreTarget& target, const asio::ip::tcp::endpoint& server,
                 const ChatcoreAdapter::Directory& dir)
      : WsClient(io, 4096, fmt::format("{}:{}", target.host, target.port), "/ws", "chatcore.v1"),
        events_(events),
        spec_(spec),
        nonce_(target.nonce),
        server_(server),
        dir_(dir) {}

  void start() override { connect(server_, spec_.source); }

  void send_direct(std::size_t peer, std::uint32_t msg) override {
    send(0, dir_.user_ids.at(peer), msg);
  }
  void send_group(std::size_t group, std::uint32_t msg) override {
    send(dir_.group_conversations.at(group), 0, msg);
  }
  void join(std::size_t) override { events_.on_joined(spec_.conn); }

  void heartbeat() override {
    if (!ready_) return;
    auto& b = builder();
    b.Clear();
    auto hb = wire::CreateHeartbeat(b);
    b.Finish(wire::CreateFrame(b, kHeartbeatId, wire::Body::Heartbeat, hb.Union()));
    send_binary({b.GetBufferPointer(), b.GetSize()});
  }

  void stop() override { close(); }
  std::uint64_t write_calls() const override { return Stream::write_calls(); }

 private:
  void send(std::uint64_t conversation, std::uint64_t peer, std::uint32_t msg) {
    if (!ready_) {
      events_.on_send_error(spec_.conn, msg, "not connected");
      return;
    }
    std::uint8_t cmid[16];
    std::memcpy(cmid, &nonce_, 4);
    std::memcpy(cmid + 4, &msg, 4);
    std::memcpy(cmid + 8, &nonce_, 4);
    std::memcpy(cmid + 12, &msg, 4);
    auto& b = builder();
    b.Clear();
    auto id = b.CreateVector(cmid, sizeof cmid);
    const std::string& text = message_body();
    auto body = b.CreateString(text);
    auto s = wire::CreateSend(b, conversation, peer, id, body);
    b.Finish(wire::CreateFrame(b, kSendIdBase + msg, wire::Body::Send, s.Union()));
    send_binary({b.GetBufferPointer(), b.GetSize()});
  }

  void on_open() override {
    auto& b = builder();
    b.Clear();
    auto token = b.CreateString(dir_.tokens.at(spec_.user));
    auto device = b.CreateString(fmt::format("bench-d{}", spec_.device));
    auto hello = wire::CreateHello(b, token, device, 0);
    b.Finish(wire::CreateFrame(b, kHelloId, wire::Body::Hello, hello.Union()));
    send_binary({b.GetBufferPointer(), b.GetSize()});
  }

  void on_message(std::span<const std::uint8_t> payload) override {
    flatbuffers::Verifier verifier(payload.data(), payload.size());
    if (!wire::VerifyFrameBuffer(verifier)) {
      events_.on_error(spec_.conn, "malformed frame from server");
      return;
    }
    const wire::Frame* f = wire::GetFrame(payload.data());
    switch (f->body_type()) {
      case wire::Body::Welcome:
        ready_ = true;
        events_.on_ready(spec_.conn);
        break;
      case wire::Body::Ack: {
        const std::uint64_t rid = f->request_id();
        if (rid < kSendIdBase) break;
        const auto msg = static_cast<std::uint32_t>(rid - kSendIdBase);
        if (f->body_as_Ack()->duplicate()) {
          events_.on_send_error(spec_.conn, msg, "duplicate ack");
        } else {
          events_.on_ack(spec_.conn, msg);
        }
        break;
      }
      case wire::Body::Deliver: {
        const wire::Message* m = f->body_as_Deliver()->message();
        const auto* cmid = m ? m->client_msg_id() : nullptr;
        if (cmid == nullptr || cmid->size() != 16) break;
        std::uint32_t nonce = 0;
        std::uint32_t msg = 0;
        std::memcpy(&nonce, cmid->data(), 4);
        std::memcpy(&msg, cmid->data() + 4, 4);
        if (nonce == nonce_) events_.on_deliver(spec_.conn, msg);
        break;
      }
      case wire::Body::Error: {
        const wire::Error* e = f->body_as_Error();
        std::string what = e->name() ? e->name()->str() : std::string("error");
        if (e->message()) what += ": " + e->message()->str();
        if (f->request_id() >= kSendIdBase) {
          events_.on_send_error(spec_.conn,
                                static_cast<std::uint32_t>(f->request_id() - kSendIdBase), what);
        } else {
          events_.on_error(spec_.conn, what);
        }
        break;
      }
      default:  // HeartbeatAck, Presence: nothing to measure
        break;
    }
  }

  void on_ws_close(int code) override {
    ready_ = false;
    events_.on_closed(spec_.conn, fmt::format("websocket close {}", code));
  }
  void on_closed(const std::string& why) override {
    ready_ = false;
    events_.on_closed(spec_.conn, why);
  }

  Events& events_;
  ClientSpec spec_;
  std::uint32_t nonce_;
  asio::ip::tcp::endpoint server_;
  const ChatcoreAdapter::Directory& dir_;
  bool ready_ = false;
};

std::uint64_t parse_id(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_string()) {
    throw std::runtime_error(fmt::format("reply has no \"{}\": {}", key, j.dump()));
  }
  return std::stoull(j[key].get<std::string>());
}

}  // namespace

ChatcoreAdapter::ChatcoreAdapter(ChatcoreTarget target)
    : target_(std::move(target)), server_(asio::ip::make_address(target_.host), target_.port) {}

void ChatcoreAdapter::setup_users(std::size_t n) {
  HttpJson http(fmt::format("http://{}:{}", target_.host, target_.port));
  for (std::size_t i = dir_.user_ids.size(); i < n; ++i) {
    const std::string name = fmt::format("b{:08x}u{}", target_.nonce, i);
    nlohmann::json creds = {{"name", name}, {"password", target_.password}};
    HttpReply r = http.post("/api/v1/users", creds);
    if (r.status != 201) {
      throw std::runtime_error(fmt::format("signup {}: HTTP {} {} {}", name, r.status, r.error,
                                           r.body.is_discarded() ? "" : r.body.dump()));
    }
    r = http.post("/api/v1/sessions", creds);
    if (r.status != 200) {
      throw std::runtime_error(fmt::format("login {}: HTTP {} {} {}", name, r.status, r.error,
                                           r.body.is_discarded() ? "" : r.body.dump()));
    }
    dir_.user_ids.push_back(parse_id(r.body, "user_id"));
    dir_.tokens.push_back(r.body.at("token").get<std::string>());
  }
}

void ChatcoreAdapter::setup_groups(const std::vector<std::vector<std::size_t>>& groups) {
  HttpJson http(fmt::format("http://{}:{}", target_.host, target_.port));
  dir_.group_conversations.clear();
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const auto& members = groups[g];
    nlohmann::json ids = nlohmann::json::array();
    for (std::size_t k = 1; k < members.size(); ++k) {
      ids.push_back(std::to_string(dir_.user_ids.at(members[k])));
    }
    nlohmann::json req = {{"name", fmt::format("bench-{:08x}-g{}", target_.nonce, g)},
                          {"members", ids}};
    HttpReply r = http.post("/api/v1/groups", req, dir_.tokens.at(members.at(0)));
    if (r.status != 201) {
      throw std::runtime_error(fmt::format("create group {}: HTTP {} {} {}", g, r.status, r.error,
                                           r.body.is_discarded() ? "" : r.body.dump()));
    }
    dir_.group_conversations.push_back(parse_id(r.body, "conversation_id"));
  }
}

std::unique_ptr<BenchClient> ChatcoreAdapter::make_client(asio::io_context& io, Events& events,
                                                          const ClientSpec& spec) {
  return std::make_unique<ChatcoreClient>(io, events, spec, target_, server_, dir_);
}

}  // namespace chatcore_bench
