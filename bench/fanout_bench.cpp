// Group fan-out through the Engine: one member sends to a 100-member group
// whose 100 members each have one connected, authenticated session. One
// iteration is the whole path of `burst` messages: each Send frame into
// on_frame() (verify, authorise, validate, rate limit, Snowflake id), then
// one poll(), which commits everything waiting as one batch
// (EngineOptions::storage_thread = false: the commit runs on the calling
// thread, so there is nothing to wait for), acks each send and delivers a
// Deliver frame per message to each of the 100 sessions (the sender's own
// session included: it is the sender's inbox too). burst = 1 is the
// latency of one message from send to its last delivery; burst = 16 shows
// what group commit does for fan-out. Bodies are 100 bytes, and once
// 100,000 characters (the largest legal body, ASCII) to show how the cost
// of a Deliver grows with the body.
//
// items_per_second is Deliver frames per second; msgs_per_s is messages.
// After the run the engine's own counters must show exactly 100 deliveries
// per message, or the run is reported as an error.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "bench_support.hpp"
#include "chatcore/engine.hpp"
#include "chatcore/memory_store.hpp"
#include "chatcore/protocol.hpp"

namespace chatcore::bench {
namespace {

constexpr int kMembers = 100;

void run_fanout(benchmark::State& state, Store& store) {
  settle_allocator();
  const auto burst = static_cast<std::uint64_t>(state.range(0));
  const auto body_bytes = static_cast<std::size_t>(state.range(1));
  if (!make_users(store, kMembers)) {
    state.SkipWithError("creating users failed");
    return;
  }
  TokenAuth auth;
  EngineOptions options;
  options.storage_thread = false;
  options.limits.sends_per_second = 1e12;  // one sender at full speed
  options.limits.send_burst = 1e12;
  Engine engine(options, store, auth);

  std::vector<UserId> members;
  for (int i = 1; i <= kMembers; ++i) members.emplace_back(static_cast<std::uint64_t>(i));
  auto group = engine.create_group(members[0], "bench", members);
  if (!group.is_ok()) {
    state.SkipWithError(group.status().to_string().c_str());
    return;
  }
  const ConversationId conv = ConversationId::group(*group);

  std::vector<std::shared_ptr<CountingSession>> sessions;
  std::vector<SessionId> ids;
  for (int i = 1; i <= kMembers; ++i) {
    auto s = std::make_shared<CountingSession>();
    SessionId id = engine.connect(s);
    engine.on_frame(id, encode_hello(1, "tok-" + std::to_string(i), "bench", 0));
    sessions.push_back(std::move(s));
    ids.push_back(id);
  }
  engine.poll();
  const EngineStats before = engine.stats();
  if (before.sessions_authenticated != static_cast<std::uint64_t>(kMembers)) {
    state.SkipWithError("not every session authenticated");
    return;
  }

  const std::string body(body_bytes, 'g');
  std::uint64_t n = 0;
  const double written_before = written_bytes();
  for (auto _ : state) {
    for (std::uint64_t i = 0; i < burst; ++i) {
      ++n;
      // Encoding the client's frame is the client's cost, but it is small
      // next to the fan-out (well under 1% of an iteration).
      engine.on_frame(ids[0], encode_send(n + 1, conv, UserId(), client_id(n), body));
    }
    engine.poll();
  }
  const double written = written_bytes() - written_before;

  const EngineStats after = engine.stats();
  const std::uint64_t messages = after.messages_committed - before.messages_committed;
  const std::uint64_t deliveries = after.deliveries - before.deliveries;
  if (messages != n || deliveries != n * kMembers || after.errors_sent != before.errors_sent) {
    state.SkipWithError("fan-out incomplete: a message or a delivery is missing");
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(deliveries));
  state.counters["msgs_per_s"] =
      benchmark::Counter(static_cast<double>(messages), benchmark::Counter::kIsRate);
  state.counters["burst"] = static_cast<double>(burst);
  if (written_before >= 0 && messages > 0) {
    state.counters["written_per_msg"] =
        benchmark::Counter(written / static_cast<double>(messages), benchmark::Counter::kDefaults,
                           benchmark::Counter::kIs1024);
  }
  engine.shutdown();
}

void BM_FanoutGroup100_Memory(benchmark::State& state) {
  MemoryStore store;
  run_fanout(state, store);
}
BENCHMARK(BM_FanoutGroup100_Memory)
    ->ArgNames({"burst", "body"})
    ->Args({1, 100})
    ->Args({16, 100})
    ->Args({1, 100000})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

#ifdef CHATCORE_BENCH_HAVE_LMDB
void fanout_lmdb(benchmark::State& state, Durability durability) {
  TempDir dir("fanout");
  std::string error;
  auto store = open_lmdb(dir.path(), durability, 0, &error);
  if (!store) {
    state.SkipWithError(error.c_str());
    return;
  }
  run_fanout(state, *store);
}

void BM_FanoutGroup100_LmdbNoSync(benchmark::State& state) {
  fanout_lmdb(state, Durability::kNoSync);
}
BENCHMARK(BM_FanoutGroup100_LmdbNoSync)
    ->ArgNames({"burst", "body"})
    ->Args({1, 100})
    ->Args({16, 100})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// The daemon's default durability, for comparison.
void BM_FanoutGroup100_LmdbSync(benchmark::State& state) { fanout_lmdb(state, Durability::kSync); }
BENCHMARK(BM_FanoutGroup100_LmdbSync)
    ->ArgNames({"burst", "body"})
    ->Args({1, 100})
    ->Args({16, 100})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
#endif

}  // namespace
}  // namespace chatcore::bench
