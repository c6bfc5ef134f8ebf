// 01_embed: chatcore inside your own process, in about 60 lines.
//
// An Engine over a MemoryStore, two sessions that print what they receive,
// and one message from alice to bob. A real transport would hand the engine
// WebSocket frames instead of calling encode_*() itself.
#include <chatcore/engine.hpp>
#include <chatcore/memory_store.hpp>
#include <chatcore/protocol.hpp>
#include <cstdio>
#include <string>

using namespace chatcore;

// What a transport implements: somewhere to put frames for one connection.
class PrintingSession final : public Session {
 public:
  explicit PrintingSession(std::string name) : name_(std::move(name)) {}
  void send(std::span<const std::uint8_t> bytes) override {
    const wire::Frame* frame = verify_frame(bytes);
    if (frame->body_type() == wire::Body::Ack) {
      std::printf("%s: ack, seq %llu\n", name_.c_str(),
                  static_cast<unsigned long long>(frame->body_as_Ack()->seq()));
    } else if (frame->body_type() == wire::Body::Deliver) {
      const auto* m = frame->body_as_Deliver()->message();
      std::printf("%s: message from user %llu: %s\n", name_.c_str(),
                  static_cast<unsigned long long>(m->sender_id()), m->body()->c_str());
    }
  }
  std::size_t queued_bytes() const override { return 0; }
  void close(CloseCode, std::string_view) override {}

 private:
  std::string name_;
};

// Your login system: here, token "alice" is user 1 and "bob" is user 2.
class DemoAuth final : public Authenticator {
 public:
  Result<Identity> authenticate(std::string_view token) override {
    if (token == "alice") return Identity{UserId(1), "alice"};
    if (token == "bob") return Identity{UserId(2), "bob"};
    return Status::unauthenticated("unknown token");
  }
};

int main() {
  MemoryStore store;
  store.create_user(NewUser{.name = "alice"});
  store.create_user(NewUser{.name = "bob"});
  DemoAuth auth;
  EngineOptions options;
  options.storage_thread = false;  // single-threaded: commits run inside poll()
  Engine engine(options, store, auth);

  SessionId alice = engine.connect(std::make_shared<PrintingSession>("alice"));
  SessionId bob = engine.connect(std::make_shared<PrintingSession>("bob"));
  engine.on_frame(alice, encode_hello(1, "alice", "laptop", /*cursor=*/0));
  engine.on_frame(bob, encode_hello(1, "bob", "phone", 0));

  ClientMsgId id;
  id.bytes[0] = 42;  // any 16 bytes unique per send; resending them is idempotent
  engine.on_frame(alice, encode_send(2, ConversationId(), /*peer=*/UserId(2), id, "hi bob!"));
  engine.poll();  // commit, then ack alice and deliver to both

  engine.disconnect(alice, /*clean=*/true);
  engine.disconnect(bob, true);
  return 0;
}
