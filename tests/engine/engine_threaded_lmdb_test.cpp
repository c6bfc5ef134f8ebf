// The engine with its storage thread over real LMDB files: the shape
// chatcored runs in. The test thread is the owner thread; the storage
// thread's wakeup signals it to poll(), as lws_cancel_service does.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "chatcore/engine.hpp"
#include "chatcore/lmdb_store.hpp"
#include "chatcore/memory_store.hpp"
#include "support/fake_session.hpp"

using namespace chatcore;
using namespace chatcore::testing;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  TempDir() {
    static std::atomic<int> n{0};
    path = fs::temp_directory_path() /
           ("chatcore-engine-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    fs::remove_all(path);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path path;
};

// Lets the owner thread sleep until the storage thread has completions.
struct Waker {
  void wake() {
    {
      std::lock_guard lock(mu);
      pending = true;
    }
    cv.notify_one();
  }
  // Waits (bounded) for a wakeup, then polls.
  void wait_and_poll(Engine& engine) {
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return pending; });
    pending = false;
    lock.unlock();
    engine.poll();
  }
  std::mutex mu;
  std::condition_variable cv;
  bool pending = false;
};

std::unique_ptr<LmdbStore> open_store(const fs::path& dir) {
  LmdbOptions o;
  o.path = dir.string();
  o.durability = Durability::kSync;
  auto store = LmdbStore::open(o);
  REQUIRE(store.is_ok());
  return std::move(store).value();
}

void make_users(Store& store, int n) {
  for (int i = 1; i <= n; ++i) {
    NewUser u;
    u.name = "user" + std::to_string(i);
    REQUIRE(store.create_user(u).is_ok());
  }
}

}  // namespace

TEST_CASE("promise 1: an acked message survives closing and reopening the LMDB store") {
  TempDir dir;
  std::vector<std::uint64_t> acked_seqs;
  {
    auto store = open_store(dir.path);
    make_users(*store, 2);
    FakeAuth auth;
    EngineOptions o;
    Engine engine(o, *store, auth);
    Waker waker;
    engine.set_wakeup([&] { waker.wake(); });
    TestClient alice(engine);
    alice.hello(1);
    std::vector<std::uint64_t> rids;
    for (int i = 1; i <= 40; ++i)
      rids.push_back(alice.send_to_peer(2, i, "durable " + std::to_string(i)));
    for (int spins = 0; spins < 400 && alice.of_type(wire::Body::Ack).size() < rids.size();
         ++spins) {
      waker.wait_and_poll(engine);
    }
    for (auto rid : rids) {
      const auto* f = alice.reply(rid);
      REQUIRE(f != nullptr);
      REQUIRE(f->body_type() == wire::Body::Ack);
      acked_seqs.push_back(f->body_as_Ack()->seq());
    }
    CHECK(engine.stats().commit_batches <= 40);  // batched: usually far fewer
    engine.shutdown();
  }
  auto reopened = open_store(dir.path);
  auto history = reopened->history(ConversationId::direct(UserId(1), UserId(2)),
                                   {std::nullopt, std::nullopt, 200});
  REQUIRE(history.is_ok());
  REQUIRE(history->size() == acked_seqs.size());
  for (std::size_t i = 0; i < acked_seqs.size(); ++i) {
    CHECK((*history)[i]->seq == acked_seqs[i]);
    CHECK((*history)[i]->body == "durable " + std::to_string(i + 1));
  }
}

TEST_CASE("promise 3: sync and live delivery race without gaps or duplicates") {
  // Alice streams messages to bob while bob's device connects, drops and
  // reconnects with its cursor, over and over, with commits landing on the
  // storage thread at arbitrary points of the Hello/catch-up.
  TempDir dir;
  auto store = open_store(dir.path);
  make_users(*store, 2);
  FakeAuth auth;
  EngineOptions o;
  o.limits.sends_per_second = 1e9;
  o.limits.send_burst = 1e9;
  o.limits.outbound_soft_bytes = 4096;  // small: catch-up pauses often
  Engine engine(o, *store, auth);
  Waker waker;
  engine.set_wakeup([&] { waker.wake(); });

  TestClient alice(engine);
  alice.hello(1);
  constexpr int kMessages = 600;
  std::mt19937 rng(12345);
  std::vector<std::uint64_t> received;  // what bob's device accepted, across sessions
  std::uint64_t cursor = 0;
  auto bob = std::make_unique<TestClient>(engine);
  bob->hello(2, "bob-phone", cursor);
  std::size_t consumed = 0;  // frames of the current session already read

  auto absorb = [&] {
    // The device reads what arrived and advances its cursor, as a client does.
    auto& frames = bob->session().frames;
    for (; consumed < frames.size(); ++consumed) {
      const wire::Frame* f = verify_frame(frames[consumed]);
      REQUIRE(f);
      if (f->body_type() != wire::Body::Deliver) continue;
      std::uint64_t seq = f->body_as_Deliver()->inbox_seq();
      received.push_back(seq);
      cursor = seq;
    }
    bob->session().drain();
    engine.on_writable(bob->id());
  };

  int sent = 0;
  while (sent < kMessages || received.size() < static_cast<std::size_t>(kMessages)) {
    int burst = static_cast<int>(rng() % 8);
    for (int i = 0; i < burst && sent < kMessages; ++i) {
      ++sent;
      alice.send_to_peer(2, static_cast<std::uint64_t>(sent), std::string(100, 'x'));
    }
    if (rng() % 4 == 0) bob->session().hold = true;  // a slow moment
    waker.wait_and_poll(engine);
    absorb();
    bob->session().hold = false;
    if (rng() % 10 == 0) {
      // Drop the connection (sometimes uncleanly) and come back by cursor.
      bob->disconnect(rng() % 2 == 0);
      bob = std::make_unique<TestClient>(engine);
      consumed = 0;
      bob->hello(2, "bob-phone", cursor);
      absorb();
    }
    REQUIRE(sent <= kMessages);
    if (sent == kMessages && received.size() < static_cast<std::size_t>(kMessages)) {
      // Everything is sent; keep polling until the tail arrives (bounded).
      static int idle = 0;
      REQUIRE(++idle < 2000);
    }
  }
  REQUIRE(received.size() == static_cast<std::size_t>(kMessages));
  for (std::size_t i = 0; i < received.size(); ++i) REQUIRE(received[i] == i + 1);
  engine.shutdown();
}

namespace {
// A store whose commits wait for a go-ahead: proves the ack waits for them.
class GatedStore final : public Store {
 public:
  explicit GatedStore(Store& inner) : inner_(inner) {}
  void open_gate() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  std::atomic<int> commits_started{0};
  std::atomic<int> commits_done{0};

  std::vector<CommitOutcome> commit(std::span<const NewMessage> batch) override {
    ++commits_started;
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return open_; });
    lock.unlock();
    auto out = inner_.commit(batch);
    ++commits_done;
    return out;
  }
  // Everything else passes through.
  Result<UserId> create_user(const NewUser& u) override { return inner_.create_user(u); }
  Result<User> get_user(UserId id) override { return inner_.get_user(id); }
  Result<User> find_user_by_name(std::string_view n) override {
    return inner_.find_user_by_name(n);
  }
  Status update_profile(UserId id, const ProfileUpdate& u) override {
    return inner_.update_profile(id, u);
  }
  Status set_password_hash(UserId id, std::string_view h) override {
    return inner_.set_password_hash(id, h);
  }
  Result<std::string> get_password_hash(UserId id) override { return inner_.get_password_hash(id); }
  Status put_token(std::string_view h, const TokenRecord& r) override {
    return inner_.put_token(h, r);
  }
  Result<TokenRecord> get_token(std::string_view h) override { return inner_.get_token(h); }
  Status delete_token(std::string_view h) override { return inner_.delete_token(h); }
  Result<GroupId> create_group(std::string_view n, UserId o, std::span<const UserId> m,
                               std::int64_t t, std::uint32_t max) override {
    return inner_.create_group(n, o, m, t, max);
  }
  Result<Group> get_group(GroupId g) override { return inner_.get_group(g); }
  Result<std::vector<Member>> group_members(GroupId g) override { return inner_.group_members(g); }
  Result<MemberRole> member_role(GroupId g, UserId u) override { return inner_.member_role(g, u); }
  Status add_member(GroupId g, UserId u, MemberRole r, std::uint32_t max) override {
    return inner_.add_member(g, u, r, max);
  }
  Status remove_member(GroupId g, UserId u) override { return inner_.remove_member(g, u); }
  Result<std::vector<GroupId>> groups_of(UserId u) override { return inner_.groups_of(u); }
  Status add_contact(UserId o, UserId c, std::int64_t t) override {
    return inner_.add_contact(o, c, t);
  }
  Status remove_contact(UserId o, UserId c) override { return inner_.remove_contact(o, c); }
  Result<std::vector<UserId>> contacts_of(UserId o) override { return inner_.contacts_of(o); }
  Result<std::vector<UserId>> watchers_of(UserId c) override { return inner_.watchers_of(c); }
  Status touch_direct_conversation(ConversationId c, std::int64_t t) override {
    return inner_.touch_direct_conversation(c, t);
  }
  Result<std::vector<ConversationId>> conversations_of(UserId u) override {
    return inner_.conversations_of(u);
  }
  Result<ConversationState> conversation_state(ConversationId c) override {
    return inner_.conversation_state(c);
  }
  Result<std::shared_ptr<const Message>> find_by_client_id(UserId s,
                                                           const ClientMsgId& id) override {
    return inner_.find_by_client_id(s, id);
  }
  Result<std::vector<std::shared_ptr<const Message>>> history(ConversationId c,
                                                              const HistoryQuery& q) override {
    return inner_.history(c, q);
  }
  Result<std::vector<InboxItem>> read_inbox(UserId u, std::uint64_t a, std::uint32_t l) override {
    return inner_.read_inbox(u, a, l);
  }
  Result<std::uint64_t> inbox_head(UserId u) override { return inner_.inbox_head(u); }
  Status set_device_cursor(UserId u, std::string_view d, std::uint64_t s) override {
    return inner_.set_device_cursor(u, d, s);
  }
  Result<std::uint64_t> device_cursor(UserId u, std::string_view d) override {
    return inner_.device_cursor(u, d);
  }
  Status set_read_cursor(UserId u, ConversationId c, std::uint64_t s) override {
    return inner_.set_read_cursor(u, c, s);
  }
  Result<std::uint64_t> read_cursor(UserId u, ConversationId c) override {
    return inner_.read_cursor(u, c);
  }
  Status set_last_seen(UserId u, std::int64_t t) override { return inner_.set_last_seen(u, t); }
  Result<std::int64_t> last_seen(UserId u) override { return inner_.last_seen(u); }

 private:
  Store& inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};
}  // namespace

TEST_CASE("promise 1 with the storage thread: no ack while the commit is still running") {
  MemoryStore inner;
  make_users(inner, 2);
  GatedStore store(inner);
  FakeAuth auth;
  Engine engine(EngineOptions{}, store, auth);
  Waker waker;
  engine.set_wakeup([&] { waker.wake(); });
  TestClient alice(engine), bob(engine);
  alice.hello(1);
  bob.hello(2);
  auto rid = alice.send_to_peer(2, 1, "wait for it");
  while (store.commits_started.load() == 0) std::this_thread::yield();
  for (int i = 0; i < 5; ++i) waker.wait_and_poll(engine);
  CHECK(alice.reply(rid) == nullptr);  // the commit is blocked: no ack, no delivery
  CHECK(bob.delivered_seqs().empty());
  store.open_gate();
  for (int i = 0; i < 200 && alice.reply(rid) == nullptr; ++i) waker.wait_and_poll(engine);
  REQUIRE(alice.reply(rid) != nullptr);
  CHECK(alice.reply(rid)->body_type() == wire::Body::Ack);
  CHECK(store.commits_done.load() == 1);
  CHECK(bob.delivered_seqs() == std::vector<std::uint64_t>{1});
  engine.shutdown();
}

TEST_CASE("hold_sends_until_flush: the sends of one pass form one commit batch") {
  MemoryStore store;
  make_users(store, 2);
  FakeAuth auth;
  EngineOptions o;
  o.hold_sends_until_flush = true;
  Engine engine(o, store, auth);
  Waker waker;
  engine.set_wakeup([&] { waker.wake(); });
  TestClient alice(engine);
  alice.hello(1);
  std::vector<std::uint64_t> rids;
  for (int i = 1; i <= 20; ++i)
    rids.push_back(alice.send_to_peer(2, i, "held " + std::to_string(i)));
  // Held: the storage thread was not handed anything, so nothing can commit.
  for (int i = 0; i < 3; ++i) waker.wait_and_poll(engine);
  CHECK(engine.stats().commit_batches == 0);
  CHECK(engine.stats().pending_commits == 20);
  engine.flush_sends();
  for (int i = 0; i < 400 && alice.of_type(wire::Body::Ack).size() < rids.size(); ++i) {
    waker.wait_and_poll(engine);
  }
  REQUIRE(alice.of_type(wire::Body::Ack).size() == rids.size());
  CHECK(engine.stats().commit_batches == 1);  // all twenty in one batch
  // shutdown() hands over what is still held, too.
  auto last = alice.send_to_peer(2, 21, "held at shutdown");
  engine.shutdown();
  REQUIRE(alice.reply(last) != nullptr);
  CHECK(alice.reply(last)->body_type() == wire::Body::Ack);
}

TEST_CASE("commit_delay: commits wait while sends come fast, lose nothing, keep order") {
  TempDir dir;
  auto store = open_store(dir.path);
  make_users(*store, 2);
  FakeAuth auth;
  EngineOptions o;
  o.hold_sends_until_flush = true;  // as chatcored: one flush per loop pass
  // A long wait, so that the rate at which it pays (2 sends per 50 ms) is
  // far below what this loop sends on any machine, however loaded.
  o.commit_delay = std::chrono::milliseconds(50);
  o.limits.sends_per_second = 1e6;  // one sender, far above the default rate limit
  o.limits.send_burst = 1e6;
  Engine engine(o, *store, auth);
  Waker waker;
  engine.set_wakeup([&] { waker.wake(); });
  TestClient alice(engine), bob(engine);
  alice.hello(1);
  bob.hello(2);
  constexpr int kSends = 2000;
  for (int i = 1; i <= kSends; ++i) {
    alice.send_to_peer(2, static_cast<std::uint64_t>(i), "m" + std::to_string(i));
    if (i % 10 == 0) {       // a "loop pass" of 10 sends, then 1 ms: ~10,000/s for ~0.2 s,
      engine.flush_sends();  // so that the rate is measured over several windows
      engine.poll();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  for (int i = 0; i < 2000 && alice.of_type(wire::Body::Ack).size() < kSends; ++i) {
    waker.wait_and_poll(engine);
  }
  REQUIRE(alice.of_type(wire::Body::Ack).size() == kSends);
  for (int i = 0; i < 2000 && bob.delivered_seqs().size() < kSends; ++i) {
    waker.wait_and_poll(engine);
  }
  std::vector<std::uint64_t> expected(kSends);
  for (int i = 0; i < kSends; ++i) expected[static_cast<std::size_t>(i)] = i + 1;
  CHECK(bob.delivered_seqs() == expected);  // every message once, in order
  const EngineStats busy = engine.stats();
  CHECK(busy.commits_delayed > 0);  // the wait was taken...
  CHECK(busy.commits_delayed <= busy.commit_batches);
  CHECK(busy.commit_batches < kSends / 10);  // ...and gathered several passes per commit

  // After a quiet spell (two rate windows), a lone send does not wait on
  // a rate that no longer holds.
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  auto lone = alice.send_to_peer(2, kSends + 1, "after a pause");
  engine.flush_sends();
  for (int i = 0; i < 200 && alice.reply(lone) == nullptr; ++i) waker.wait_and_poll(engine);
  REQUIRE(alice.reply(lone) != nullptr);
  CHECK(alice.reply(lone)->body_type() == wire::Body::Ack);
  CHECK(engine.stats().commits_delayed == busy.commits_delayed);
  engine.shutdown();
}
