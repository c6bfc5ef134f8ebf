// Fuzz target: arbitrary bytes as an inbound frame of an authenticated
// session. Exercises the verifier gate and every frame handler behind it
// (Send validation, History/Sync paging, PresenceQuery, MarkRead). The
// engine must never crash, and must answer or close, never hang.
//
// Built with libFuzzer under clang (-DCHATCORE_BUILD_FUZZ=ON); with any
// compiler, replay_main.cpp runs the checked-in corpus as a ctest.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "chatcore/engine.hpp"
#include "chatcore/memory_store.hpp"
#include "chatcore/protocol.hpp"

namespace {

class NullSession final : public chatcore::Session {
 public:
  void send(std::span<const std::uint8_t> frame) override { bytes_ += frame.size(); }
  std::size_t queued_bytes() const override { return 0; }
  void close(chatcore::CloseCode, std::string_view) override {}

 private:
  std::size_t bytes_ = 0;
};

class AnyAuth final : public chatcore::Authenticator {
 public:
  chatcore::Result<chatcore::Identity> authenticate(std::string_view) override {
    return chatcore::Identity{chatcore::UserId(1), "fuzz"};
  }
};

struct Fixture {
  Fixture() {
    for (const char* name : {"a", "b", "c"}) {
      chatcore::NewUser u;
      u.name = name;
      store.create_user(u);
    }
    chatcore::EngineOptions o;
    o.storage_thread = false;
    engine = std::make_unique<chatcore::Engine>(o, store, auth, clock);
    std::vector<chatcore::UserId> members = {chatcore::UserId(2)};
    engine->create_group(chatcore::UserId(1), "fuzz", members);
  }
  chatcore::MemoryStore store;
  AnyAuth auth;
  chatcore::ManualClock clock;
  std::unique_ptr<chatcore::Engine> engine;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture* fx = new Fixture();  // one engine for the whole run, like a long-lived server
  auto id = fx->engine->connect(std::make_shared<NullSession>());
  fx->engine->on_frame(id, chatcore::encode_hello(1, "t", "fuzz-device", 0));
  fx->engine->on_frame(id, std::span<const std::uint8_t>(data, size));
  fx->engine->poll();
  fx->clock.advance(1000);  // keep rate limits and presence moving
  fx->engine->disconnect(id, true);
  return 0;
}
