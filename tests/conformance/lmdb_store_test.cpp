// The Store conformance suite against LmdbStore, plus what only a durable
// store has: reopening, key order on disk, map growth, concurrent reads
// during growth, and a real kill -9 in the middle of commits.
#include "chatcore/lmdb_store.hpp"

#include <lmdb.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "conformance/store_conformance.hpp"

namespace {

using namespace chatcore;
using namespace chatcore::conformance;

constexpr std::size_t kMiB = std::size_t{1} << 20;

// A fresh directory under the system temp dir, removed with everything in
// it when the object goes away.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "chatcore-lmdb-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

std::unique_ptr<LmdbStore> open_store(const LmdbOptions& options) {
  auto r = LmdbStore::open(options);
  CC_REQUIRE_OK(r);
  return std::move(*r);
}

// One LmdbStore in its own temp dir; reopen() closes and opens it again.
class LmdbStoreFixture {
 public:
  // `initial_map_bytes` defaults to LmdbOptions' own default; `configure`
  // may change any other option before the store opens.
  explicit LmdbStoreFixture(std::size_t initial_map_bytes = LmdbOptions().initial_map_bytes,
                            const std::function<void(LmdbOptions&)>& configure = {}) {
    options_.path = (dir_.path() / "db").string();
    options_.initial_map_bytes = initial_map_bytes;
    if (configure) configure(options_);
    store_ = open_store(options_);
  }
  Store& store() { return *store_; }
  LmdbStore& lmdb() { return *store_; }
  LmdbOptions& options() { return options_; }
  void reopen() {
    store_.reset();  // closes the environment first: one per process
    store_ = open_store(options_);
  }

 private:
  TempDir dir_;  // declared first: removed after the store is closed
  LmdbOptions options_;
  std::unique_ptr<LmdbStore> store_;
};

std::string big_body(std::size_t i, std::size_t bytes) {
  std::string body(bytes, static_cast<char>('a' + i % 26));
  std::string tag = "#" + std::to_string(i) + "#";
  body.replace(0, tag.size(), tag);
  return body;
}

}  // namespace

// The suite twice: once as configured by default (its cases finish well
// within a checkpoint interval, so every message is read back from the
// journal's overlay), and once checkpointing after every commit, on the
// store's own thread, so that reads meet messages in LMDB, in the overlay,
// and moving from one to the other while they read.
class LmdbCheckpointingFixture : public LmdbStoreFixture {
 public:
  LmdbCheckpointingFixture()
      : LmdbStoreFixture(LmdbOptions().initial_map_bytes, [](LmdbOptions& o) {
          o.checkpoint_bytes = 0;
          o.checkpoint_interval_ms = 0;
        }) {}
};

TYPE_TO_STRING(LmdbStoreFixture);
TYPE_TO_STRING(LmdbCheckpointingFixture);
TEST_CASE_TEMPLATE_INVOKE(store_conformance, LmdbStoreFixture, LmdbCheckpointingFixture);

TEST_CASE("LmdbStore: open reports a clear error") {
  TempDir dir;
  LmdbOptions empty;
  CHECK(code_of(LmdbStore::open(empty)) == ErrorCode::kInvalidArgument);

  // A regular file where the directory should be.
  auto file = dir.path() / "not-a-dir";
  std::ofstream(file) << "x";
  LmdbOptions on_file;
  on_file.path = file.string();
  auto r = LmdbStore::open(on_file);
  REQUIRE(!r.is_ok());
  CHECK(code_of(r) == ErrorCode::kUnavailable);
  CHECK(r.status().message().find(file.string()) != std::string::npos);

  // A directory that cannot be created (its parent is a file).
  LmdbOptions below_file;
  below_file.path = (file / "db").string();
  auto r2 = LmdbStore::open(below_file);
  REQUIRE(!r2.is_ok());
  CHECK(code_of(r2) == ErrorCode::kUnavailable);
  CHECK(r2.status().message().find(below_file.path) != std::string::npos);
}

TEST_CASE("LmdbStore: reopening keeps everything, and ids and seqs continue") {
  LmdbStoreFixture fx;
  Store& s0 = fx.store();
  MessageMaker make;
  NewUser nu;
  nu.name = "alice";
  nu.email = "a@example.com";
  nu.created_at_ms = 42;
  UserId a = *s0.create_user(nu);
  UserId b = add_user(s0, "bob");
  UserId c = add_user(s0, "carol");
  ProfileUpdate up;
  up.about = "about alice";
  CC_REQUIRE_OK(s0.update_profile(a, up));
  CC_REQUIRE_OK(s0.set_password_hash(a, "hash-a"));
  CC_REQUIRE_OK(s0.put_token("tok", TokenRecord{b, 99}));
  auto g = s0.create_group("g", a, std::vector<UserId>{b}, 7, 100);
  CC_REQUIRE_OK(g);
  CC_REQUIRE_OK(s0.add_member(*g, c, MemberRole::kAdmin, 100));
  CC_REQUIRE_OK(s0.add_contact(a, b, 1));
  ConversationId ab = ConversationId::direct(a, b);
  ConversationId gc = ConversationId::group(*g);
  CC_REQUIRE_OK(s0.touch_direct_conversation(ConversationId::direct(a, c), 5));
  std::vector<NewMessage> batch = {make(ab, a, {a, b}), make(gc, b, {a, b, c}),
                                   make(ab, b, {a, b})};
  for (const auto& o : s0.commit(batch)) CC_REQUIRE_OK(o.status);
  CC_REQUIRE_OK(s0.set_device_cursor(a, "phone", 2));
  CC_REQUIRE_OK(s0.set_read_cursor(b, ab, 2));
  CC_REQUIRE_OK(s0.set_last_seen(c, 1234));

  fx.reopen();
  Store& s = fx.store();
  auto alice = s.get_user(a);
  CC_REQUIRE_OK(alice);
  CHECK(alice->name == "alice");
  CHECK(alice->email == "a@example.com");
  CHECK(alice->about == "about alice");
  CHECK(alice->created_at_ms == 42);
  CHECK(s.find_user_by_name("carol")->id == c);
  CHECK(*s.get_password_hash(a) == "hash-a");
  CHECK(s.get_token("tok")->expires_at_ms == 99);
  CHECK(s.get_group(*g)->name == "g");
  CHECK(*s.group_members(*g) == std::vector<Member>{{a, MemberRole::kOwner},
                                                    {b, MemberRole::kMember},
                                                    {c, MemberRole::kAdmin}});
  CHECK(*s.groups_of(c) == std::vector<GroupId>{*g});
  CHECK(*s.contacts_of(a) == std::vector<UserId>{b});
  CHECK(*s.watchers_of(b) == std::vector<UserId>{a});
  CHECK(sorted(*s.conversations_of(a)) == sorted({ab, ConversationId::direct(a, c), gc}));
  CHECK(s.conversation_state(ab)->last_seq == 2);
  CHECK(s.conversation_state(ab)->last_message_id == batch[2].id);
  auto hist = page(s, ab, std::nullopt, std::nullopt, 10);
  REQUIRE(hist.size() == 2);
  check_same_message(*hist[0], batch[0], 1);
  check_same_message(*hist[1], batch[2], 2);
  CHECK(*s.inbox_head(a) == 3);
  CHECK(*s.inbox_head(c) == 1);
  CHECK(s.read_inbox(c, 0, 10)->front().message->id == batch[1].id);
  CHECK(*s.device_cursor(a, "phone") == 2);
  CHECK(*s.read_cursor(b, ab) == 2);
  CHECK(*s.last_seen(c) == 1234);

  // Counters, seqs, inboxes and the dedup table carry on where they were.
  CHECK(add_user(s, "dave").value == 4);
  auto g2 = s.create_group("g2", a, {}, 8, 100);
  CC_REQUIRE_OK(g2);
  CHECK(g2->value == 2);
  auto dup = commit_one(s, batch[0]);
  CHECK(dup.duplicate);
  CHECK(dup.message->seq == 1);
  auto next = commit_one(s, make(ab, a, {a, b}));
  CHECK(next.message->seq == 3);
  CHECK(next.inbox == std::vector<std::pair<UserId, std::uint64_t>>{{a, 4}, {b, 4}});
}

namespace {

// A record as LmdbStore encodes it: the format version byte 1, then
// big-endian u64s.
std::string be64_record(std::initializer_list<std::uint64_t> values) {
  std::string out(1, '\1');
  for (std::uint64_t v : values) {
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
  }
  return out;
}

// Reads and then, if `value` is given, overwrites one raw record of a
// closed environment, as another build would. Returns what was there.
std::string raw_record(const std::string& path, const char* table, const std::string& key,
                       const std::optional<std::string>& value = std::nullopt) {
  MDB_env* env = nullptr;
  REQUIRE(mdb_env_create(&env) == 0);
  REQUIRE(mdb_env_set_maxdbs(env, 32) == 0);
  REQUIRE(mdb_env_open(env, path.c_str(), 0, 0664) == 0);
  MDB_txn* txn = nullptr;
  REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
  MDB_dbi dbi;
  REQUIRE(mdb_dbi_open(txn, table, 0, &dbi) == 0);
  MDB_val k{key.size(), const_cast<char*>(key.data())};
  MDB_val old{};
  std::string before;
  if (mdb_get(txn, dbi, &k, &old) == 0) before.assign(static_cast<char*>(old.mv_data), old.mv_size);
  if (value) {
    MDB_val v{value->size(), const_cast<char*>(value->data())};
    REQUIRE(mdb_put(txn, dbi, &k, &v, 0) == 0);
  }
  REQUIRE(mdb_txn_commit(txn) == 0);
  mdb_env_close(env);
  return before;
}

std::string be64_key(std::uint64_t v) { return be64_record({v}).substr(1); }

}  // namespace

TEST_CASE("LmdbStore: a schema-1 environment is upgraded, a newer one is refused") {
  TempDir dir;
  LmdbOptions options;
  options.path = (dir.path() / "db").string();
  MessageMaker make;
  ConversationId ab;
  std::vector<NewMessage> batch;
  {
    auto store = open_store(options);
    UserId a = add_user(*store, "alice");
    UserId b = add_user(*store, "bob");
    ab = ConversationId::direct(a, b);
    batch = {make(ab, a, {a, b}), make(ab, b, {a, b})};
    for (const auto& o : store->commit(batch)) CC_REQUIRE_OK(o.status);
  }
  // What schema 1 left behind: version 1, and a conv_state rewritten per
  // message (last_seq, last_message_id, last_activity).
  raw_record(options.path, "meta", "schema_version", be64_record({1}));
  raw_record(options.path, "conv_state", be64_key(ab.value),
             be64_record({2, batch[1].id.value, static_cast<std::uint64_t>(batch[1].sent_at_ms)}));
  {
    auto store = open_store(options);
    auto st = store->conversation_state(ab);
    CC_REQUIRE_OK(st);
    CHECK(st->last_seq == 2);
    CHECK(st->last_message_id == batch[1].id);
    CHECK(st->last_activity_ms == batch[1].sent_at_ms);
    auto next = commit_one(*store, make(ab, batch[0].sender, batch[0].recipients));
    CC_REQUIRE_OK(next.status);
    CHECK(next.message->seq == 3);
    CHECK(store->conversation_state(ab)->last_message_id == next.message->id);
  }
  CHECK(raw_record(options.path, "meta", "schema_version") == be64_record({3}));
  // A build from the future: refused with a clear error.
  raw_record(options.path, "meta", "schema_version", be64_record({99}));
  auto refused = LmdbStore::open(options);
  REQUIRE_FALSE(refused);
  CHECK(refused.status().code() == ErrorCode::kFailedPrecondition);
  CHECK(refused.status().message().find("schema version 99 is newer") != std::string::npos);
}

TEST_CASE("LmdbStore: kNoSync keeps everything across a clean close") {
  LmdbStoreFixture fx;
  fx.options().durability = Durability::kNoSync;
  fx.reopen();
  MessageMaker make;
  UserId a = add_user(fx.store(), "alice");
  UserId b = add_user(fx.store(), "bob");
  ConversationId ab = ConversationId::direct(a, b);
  for (int i = 0; i < 5; ++i) commit_one(fx.store(), make(ab, a, {a, b}));
  CC_REQUIRE_OK(fx.lmdb().sync());
  fx.options().durability = Durability::kSync;
  fx.reopen();
  CHECK(seqs_of(page(fx.store(), ab, std::nullopt, std::nullopt, 10)) == range(1, 5));
}

TEST_CASE("LmdbStore: big-endian keys keep numeric order past 255 and 65535") {
  LmdbStoreFixture fx;
  Store& s = fx.store();
  MessageMaker make;
  // Users need not exist for inboxes and cursors; these ids straddle the
  // byte boundaries a little-endian key would misorder.
  const UserId u1(1), u256(256), u65537(65'537), u16m(16'777'217), umax(kMaxUserId);
  const std::vector<UserId> everyone = {u1, u256, u65537, u16m, umax};
  const ConversationId big = ConversationId::direct(u65537, u16m);
  const ConversationId small = ConversationId::direct(u1, u256);
  std::vector<NewMessage> batch;
  for (int i = 0; i < 300; ++i) batch.push_back(make(big, u65537, everyone));
  for (int i = 0; i < 3; ++i) batch.push_back(make(small, u1, {u1, u256}));
  for (const auto& o : s.commit(batch)) CC_REQUIRE_OK(o.status);

  CHECK(s.conversation_state(big)->last_seq == 300);
  CHECK(seqs_of(page(s, big, std::nullopt, std::nullopt, 5)) == range(296, 300));
  CHECK(seqs_of(page(s, big, std::uint64_t{258}, std::nullopt, 5)) == range(253, 257));
  CHECK(seqs_of(page(s, big, std::nullopt, std::uint64_t{254}, 4)) == range(255, 258));
  CHECK(seqs_of(page(s, big, std::nullopt, std::nullopt, 1000)) == range(1, 300));
  CHECK(seqs_of(page(s, small, std::nullopt, std::nullopt, 1000)) == range(1, 3));

  CHECK(*s.inbox_head(u1) == 303);
  CHECK(*s.inbox_head(u256) == 303);
  CHECK(*s.inbox_head(u65537) == 300);
  CHECK(*s.inbox_head(u16m) == 300);
  CHECK(*s.inbox_head(umax) == 300);
  CHECK(*s.inbox_head(UserId(257)) == 0);
  auto across = s.read_inbox(u16m, 253, 6);
  REQUIRE(across->size() == 6);
  for (std::size_t k = 0; k < across->size(); ++k) {
    CHECK((*across)[k].inbox_seq == 254 + k);
    CHECK((*across)[k].message->seq == 254 + k);
  }
  auto tail = s.read_inbox(u1, 299, 10);
  REQUIRE(tail->size() == 4);
  CHECK(tail->back().message->conversation == small);

  CHECK(*s.conversations_of(u65537) == std::vector<ConversationId>{big});
  CHECK(*s.conversations_of(u256) == std::vector<ConversationId>{small});
  CC_REQUIRE_OK(s.set_read_cursor(u65537, big, 300));
  CC_REQUIRE_OK(s.set_read_cursor(u1, big, 7));
  CC_REQUIRE_OK(s.set_device_cursor(umax, "d", 299));
  CHECK(*s.read_cursor(u65537, big) == 300);
  CHECK(*s.read_cursor(u1, big) == 7);
  CHECK(*s.read_cursor(u256, big) == 0);
  CHECK(*s.device_cursor(umax, "d") == 299);
}

TEST_CASE("LmdbStore: the map grows on demand (1 MiB start, ~20 MB of messages)") {
  // Checkpoints (where LMDB is written) every 2 MB of journal, and only
  // then (no timer): the size trigger is what must run one.
  LmdbStoreFixture fx(kMiB, [](LmdbOptions& o) {
    o.checkpoint_bytes = 2 * kMiB;
    o.checkpoint_interval_ms = 0;
  });
  CHECK(fx.lmdb().map_bytes() < 2 * kMiB);

  MessageMaker make;
  const UserId a(1), b(2);
  const ConversationId ab = ConversationId::direct(a, b);
  constexpr std::size_t kMessages = 50;
  constexpr std::size_t kBodyBytes = 400'000;
  std::vector<MessageId> ids;
  for (std::size_t i = 0; i < kMessages; i += 5) {
    std::vector<NewMessage> batch;
    for (std::size_t k = i; k < i + 5; ++k) {
      batch.push_back(make(ab, a, {a, b}, big_body(k, kBodyBytes)));
      ids.push_back(batch.back().id);
    }
    for (const auto& o : fx.store().commit(batch)) CC_REQUIRE_OK(o.status);
  }
  // 20 MB is ten times checkpoint_bytes: the checkpoint thread runs at least
  // one checkpoint by itself. It runs at a low priority, so on a busy
  // machine the commits may all finish first; wait for it (bounded).
  for (int i = 0; i < 3000 && fx.lmdb().journal_stats().checkpoints == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(fx.lmdb().journal_stats().checkpoints >= 1);
  CC_REQUIRE_OK(fx.lmdb().sync());  // the last checkpoint
  CHECK(fx.lmdb().map_bytes() >= kMessages * kBodyBytes);

  fx.reopen();  // still asks for 1 MiB; the grown size is kept
  CHECK(fx.lmdb().map_bytes() >= kMessages * kBodyBytes);
  auto all = page(fx.store(), ab, std::nullopt, std::uint64_t{0}, 1000);
  REQUIRE(all.size() == kMessages);
  for (std::size_t i = 0; i < kMessages; ++i) {
    CAPTURE(i);
    CHECK(all[i]->seq == i + 1);
    CHECK(all[i]->id == ids[i]);
    CHECK(all[i]->body == big_body(i, kBodyBytes));
  }
  auto more = commit_one(fx.store(), make(ab, b, {a, b}, big_body(99, kBodyBytes)));
  CHECK(more.message->seq == kMessages + 1);
}

TEST_CASE("LmdbStore: concurrent readers while batches commit and the map grows") {
  // Checkpoints as often as the store's thread can run them, so reads race
  // with checkpoints moving messages from the overlay into LMDB.
  LmdbStoreFixture fx(kMiB, [](LmdbOptions& o) {
    o.checkpoint_bytes = 0;
    o.checkpoint_interval_ms = 0;
  });
  Store& s = fx.store();
  MessageMaker make;
  UserId a = add_user(s, "alice");
  UserId b = add_user(s, "bob");
  ConversationId ab = ConversationId::direct(a, b);
  constexpr int kBatches = 40;
  constexpr int kPerBatch = 10;
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::mutex failures_mu;
  std::vector<std::string> failures;
  auto failed = [&](std::string what) {
    std::lock_guard lock(failures_mu);
    failures.push_back(std::move(what));
  };
  auto reader = [&](UserId who) {
    std::uint64_t last_head = 0;
    do {
      auto head = s.inbox_head(who);
      if (!head) failed("inbox_head: " + head.status().to_string());
      if (head && (*head < last_head || *head % kPerBatch != 0)) {
        failed("inbox head " + std::to_string(*head) + " after " + std::to_string(last_head));
      }
      if (head) last_head = *head;
      // Entries after (head - 3): at least 3 (more if a batch landed since).
      std::uint64_t after = last_head > 3 ? last_head - 3 : 0;
      auto items = s.read_inbox(who, after, 10);
      if (!items) {
        failed("read_inbox: " + items.status().to_string());
      } else if (items->size() < last_head - after) {
        failed("read_inbox returned " + std::to_string(items->size()) + " items");
      } else {
        for (std::size_t k = 0; k < items->size(); ++k) {
          if ((*items)[k].inbox_seq != after + 1 + k) failed("inbox gap");
        }
      }
      auto hist = s.history(ab, HistoryQuery{std::nullopt, std::nullopt, 5});
      if (!hist) failed("history: " + hist.status().to_string());
      if (hist && hist->size() > 5) failed("history page over its limit");
      if (auto u = s.get_user(who); !u) failed("get_user: " + u.status().to_string());
      ++reads;
    } while (!done.load());
  };
  std::thread r1(reader, a);
  std::thread r2(reader, b);
  for (int i = 0; i < kBatches; ++i) {
    std::vector<NewMessage> batch;
    for (int k = 0; k < kPerBatch; ++k) {
      batch.push_back(make(ab, a, {a, b}, big_body(static_cast<std::size_t>(k), 20'000)));
    }
    for (const auto& o : s.commit(batch)) {
      if (!o.status) failed("commit: " + o.status.to_string());
    }
  }
  done.store(true);
  r1.join();
  r2.join();
  CHECK(failures.empty());
  for (const auto& f : failures) FAIL_CHECK(f);
  CHECK(reads.load() >= 2);
  CHECK(*s.inbox_head(b) == kBatches * kPerBatch);
  CC_REQUIRE_OK(fx.lmdb().sync());
  CHECK(fx.lmdb().journal_stats().checkpoints >= 2);
  CHECK(fx.lmdb().map_bytes() > kMiB);
}

namespace {

// Reads exactly n bytes unless EOF or an error comes first.
bool read_exact(int fd, void* buf, std::size_t n) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t got = ::read(fd, p, n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got;
    n -= static_cast<std::size_t>(got);
  }
  return true;
}

constexpr int kCrashBatch = 20;
const UserId kCrashA(1), kCrashB(2);
const ConversationId kCrashConv = ConversationId::direct(kCrashA, kCrashB);

// The child: commits batches forever (kSync) and reports each committed
// batch's last seq on the pipe only after commit() returned. Uses no doctest
// machinery, and leaves with _exit so nothing of the parent is flushed twice.
[[noreturn]] void crash_child(const std::string& path, int report_fd) {
  LmdbOptions options;
  options.path = path;
  auto store = LmdbStore::open(options);
  if (!store) ::_exit(2);
  MessageMaker make;
  for (int batch_no = 0; batch_no < 100'000; ++batch_no) {
    std::vector<NewMessage> batch;
    for (int k = 0; k < kCrashBatch; ++k) {
      batch.push_back(make(kCrashConv, kCrashA, {kCrashA, kCrashB}, std::string(2'000, 'x')));
    }
    auto out = (*store)->commit(batch);
    for (const auto& o : out) {
      if (!o.status) ::_exit(3);
    }
    std::uint64_t seq = out.back().message->seq;
    if (::write(report_fd, &seq, sizeof seq) != static_cast<ssize_t>(sizeof seq)) ::_exit(4);
  }
  ::_exit(0);
}

}  // namespace

TEST_CASE("LmdbStore: kill -9 in the middle of commits loses no committed message") {
  TempDir dir;
  const std::string path = (dir.path() / "db").string();
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    crash_child(path, fds[1]);
  }
  ::close(fds[1]);
  std::vector<std::uint64_t> reported;
  std::uint64_t seq = 0;
  constexpr std::size_t kKillAfter = 30;
  while (reported.size() < kKillAfter && read_exact(fds[0], &seq, sizeof seq)) {
    reported.push_back(seq);
  }
  ::kill(pid, SIGKILL);  // the child is committing its next batch right now
  // Reports already in the pipe are commits too.
  while (read_exact(fds[0], &seq, sizeof seq)) reported.push_back(seq);
  ::close(fds[0]);
  int wstatus = 0;
  REQUIRE(::waitpid(pid, &wstatus, 0) == pid);
  INFO("child exit status " << wstatus);
  REQUIRE(reported.size() >= kKillAfter);
  CHECK(WIFSIGNALED(wstatus));

  LmdbOptions options;
  options.path = path;
  auto store = open_store(options);
  const std::uint64_t committed = reported.back();
  for (std::size_t i = 0; i < reported.size(); ++i) {
    CHECK(reported[i] == (i + 1) * kCrashBatch);
  }
  // Everything reported is there; a batch in flight is all there or absent.
  auto st = store->conversation_state(kCrashConv);
  CC_REQUIRE_OK(st);
  CHECK(st->last_seq >= committed);
  CHECK(st->last_seq % kCrashBatch == 0);
  auto all = page(*store, kCrashConv, std::nullopt, std::uint64_t{0}, 1'000'000);
  CHECK(seqs_of(all) == range(1, st->last_seq));
  CHECK(*store->inbox_head(kCrashA) == st->last_seq);
  CHECK(*store->inbox_head(kCrashB) == st->last_seq);
  // The store is fully usable after the crash.
  MessageMaker make;
  NewMessage after = make(kCrashConv, kCrashB, {kCrashA, kCrashB});
  after.client_msg_id = client_id(0xdead'beef);
  auto out = commit_one(*store, after);
  CHECK(out.message->seq == st->last_seq + 1);
}

namespace {

// Checkpoints only when the test says so (sync()).
void manual_checkpoints(LmdbOptions& o) {
  o.checkpoint_interval_ms = 0;
  o.checkpoint_bytes = std::numeric_limits<std::size_t>::max();
}

std::vector<std::uint64_t> inbox_seqs(Store& s, UserId u, std::uint64_t after,
                                      std::uint32_t limit) {
  auto items = s.read_inbox(u, after, limit);
  CC_REQUIRE_OK(items);
  std::vector<std::uint64_t> out;
  for (const auto& it : *items) out.push_back(it.inbox_seq);
  return out;
}

}  // namespace

TEST_CASE("LmdbStore: reads merge LMDB and the journal at the checkpoint boundary") {
  LmdbStoreFixture fx(LmdbOptions().initial_map_bytes, manual_checkpoints);
  Store& s0 = fx.store();
  MessageMaker make;
  UserId a = add_user(s0, "alice");
  UserId b = add_user(s0, "bob");
  UserId c = add_user(s0, "carol");
  ConversationId ab = ConversationId::direct(a, b);
  std::vector<NewMessage> sent;
  for (int i = 0; i < 10; ++i) sent.push_back(make(ab, i % 2 ? b : a, {a, b}));
  for (const auto& o : s0.commit(sent)) CC_REQUIRE_OK(o.status);
  CC_REQUIRE_OK(fx.lmdb().sync());  // seqs 1..10 in LMDB
  CHECK(fx.lmdb().journal_stats().unapplied_batches == 0);
  for (int i = 10; i < 20; ++i) {
    sent.push_back(make(ab, a, {a, b}));
    commit_one(s0, sent.back());
  }
  // ...and 11..20 in the journal only: ten batches of one.
  CHECK(fx.lmdb().journal_stats().unapplied_batches == 10);
  ConversationId ac = ConversationId::direct(a, c);
  commit_one(s0, make(ac, c, {a, c}));

  auto check_reads = [&] {
    Store& s = fx.store();  // a new object after reopen()
    CHECK(seqs_of(page(s, ab, std::nullopt, std::nullopt, 5)) == range(16, 20));
    CHECK(seqs_of(page(s, ab, std::nullopt, std::nullopt, 15)) == range(6, 20));
    CHECK(seqs_of(page(s, ab, std::nullopt, std::nullopt, 100)) == range(1, 20));
    CHECK(seqs_of(page(s, ab, std::nullopt, std::uint64_t{7}, 6)) == range(8, 13));
    CHECK(seqs_of(page(s, ab, std::nullopt, std::uint64_t{10}, 3)) == range(11, 13));
    CHECK(seqs_of(page(s, ab, std::nullopt, std::uint64_t{0}, 100)) == range(1, 20));
    CHECK(page(s, ab, std::nullopt, std::uint64_t{20}, 5).empty());
    CHECK(seqs_of(page(s, ab, std::uint64_t{12}, std::nullopt, 5)) == range(7, 11));
    CHECK(seqs_of(page(s, ab, std::uint64_t{11}, std::nullopt, 3)) == range(8, 10));
    CHECK(seqs_of(page(s, ab, std::uint64_t{25}, std::nullopt, 30)) == range(1, 20));
    CHECK(seqs_of(page(s, ab, std::uint64_t{3}, std::nullopt, 30)) == range(1, 2));
    // Bodies are the ones sent, on both sides of the boundary.
    auto all = page(s, ab, std::nullopt, std::uint64_t{0}, 100);
    CHECK(all[9]->client_msg_id == sent[9].client_msg_id);
    CHECK(all[10]->sent_at_ms > all[9]->sent_at_ms);
    CHECK(inbox_seqs(s, a, 8, 5) == range(9, 13));
    CHECK(inbox_seqs(s, a, 0, 100) == range(1, 21));
    CHECK(inbox_seqs(s, b, 15, 100) == range(16, 20));
    CHECK(inbox_seqs(s, b, 20, 100).empty());
    CHECK(*s.inbox_head(a) == 21);
    CHECK(*s.inbox_head(b) == 20);
    CHECK(*s.inbox_head(c) == 1);
    auto st = s.conversation_state(ab);
    CC_REQUIRE_OK(st);
    CHECK(st->last_seq == 20);
    CHECK(st->last_message_id == all[19]->id);
    CHECK(sorted(*s.conversations_of(c)) == std::vector<ConversationId>{ac});
    CHECK(sorted(*s.conversations_of(a)) == sorted({ab, ac}));
    // A resend is found on either side, and stores nothing.
    for (std::size_t i : {std::size_t{3}, std::size_t{15}}) {
      CAPTURE(i);
      auto found = s.find_by_client_id(all[i]->sender, all[i]->client_msg_id);
      CC_REQUIRE_OK(found);
      CHECK((*found)->seq == i + 1);
      NewMessage again = sent[0];
      again.sender = all[i]->sender;
      again.client_msg_id = all[i]->client_msg_id;
      auto dup = commit_one(s, again);
      CHECK(dup.duplicate);
      CHECK(dup.message->seq == i + 1);
    }
    CHECK(*s.inbox_head(a) == 21);
  };
  check_reads();
  // And the same once everything is in LMDB, or after a reopen.
  CC_REQUIRE_OK(fx.lmdb().sync());
  CHECK(fx.lmdb().journal_stats().unapplied_batches == 0);
  check_reads();
  fx.reopen();
  check_reads();
  // Seqs continue.
  CHECK(commit_one(fx.store(), make(ab, b, {a, b})).message->seq == 21);
}

TEST_CASE("LmdbStore: batches a crash left unapplied are replayed from the journal at open") {
  TempDir dir;
  const std::string path = (dir.path() / "db").string();
  constexpr int kBatches = 12;
  constexpr int kPerBatch = 5;
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The child commits with no checkpoint at all, then dies without
    // closing the store: everything is in the journal only.
    LmdbOptions options;
    options.path = path;
    manual_checkpoints(options);
    auto store = LmdbStore::open(options);
    if (!store) ::_exit(2);
    MessageMaker make;
    for (int i = 0; i < kBatches; ++i) {
      std::vector<NewMessage> batch;
      for (int k = 0; k < kPerBatch; ++k)
        batch.push_back(make(kCrashConv, kCrashA, {kCrashA, kCrashB}));
      for (const auto& o : (*store)->commit(batch)) {
        if (!o.status) ::_exit(3);
      }
    }
    if ((*store)->journal_stats().applied_lsn != 0) ::_exit(4);
    ::_exit(0);
  }
  int wstatus = 0;
  REQUIRE(::waitpid(pid, &wstatus, 0) == pid);
  REQUIRE(WIFEXITED(wstatus));
  REQUIRE(WEXITSTATUS(wstatus) == 0);

  LmdbOptions options;
  options.path = path;
  auto store = open_store(options);
  auto stats = store->journal_stats();
  CHECK(stats.applied_lsn == kBatches);  // replayed into LMDB at open
  CHECK(stats.unapplied_batches == 0);
  std::size_t segments = 0;
  for (const auto& e : std::filesystem::directory_iterator(path + "/journal")) {
    segments += e.path().extension() == ".log";
  }
  CHECK(segments == 1);  // the replayed ones are gone; a fresh one is open
  auto all = page(*store, kCrashConv, std::nullopt, std::uint64_t{0}, 1000);
  CHECK(seqs_of(all) == range(1, kBatches * kPerBatch));
  CHECK(*store->inbox_head(kCrashA) == kBatches * kPerBatch);
  CHECK(sorted(*store->conversations_of(kCrashB)) == std::vector<ConversationId>{kCrashConv});
  // Idempotency survives the crash: a resend of the last message is a duplicate.
  auto found = store->find_by_client_id(kCrashA, all.back()->client_msg_id);
  CC_REQUIRE_OK(found);
  CHECK((*found)->seq == kBatches * kPerBatch);
  MessageMaker make;
  CHECK(commit_one(*store, make(kCrashConv, kCrashB, {kCrashA, kCrashB})).message->seq ==
        kBatches * kPerBatch + 1);
}

TEST_CASE("LmdbStore: a second open of the same environment is refused while the first is open") {
  LmdbStoreFixture fx;
  auto second = LmdbStore::open(fx.options());
  REQUIRE_FALSE(second);
  CHECK(second.status().code() == ErrorCode::kUnavailable);
  CHECK(second.status().message().find("in use") != std::string::npos);
  // The first is unharmed.
  CHECK(add_user(fx.store(), "still-works").valid());
}

TEST_CASE("LmdbStore: a lone commit is checkpointed once checkpoint_interval_ms has passed") {
  // No size trigger: only the interval can start these checkpoints.
  LmdbStoreFixture fx(LmdbOptions().initial_map_bytes, [](LmdbOptions& o) {
    o.checkpoint_interval_ms = 20;
    o.checkpoint_bytes = std::numeric_limits<std::size_t>::max();
  });
  MessageMaker make;
  UserId a = add_user(fx.store(), "alice");
  UserId b = add_user(fx.store(), "bob");
  ConversationId ab = ConversationId::direct(a, b);
  auto applied_within = [&](std::uint64_t lsn) {
    // Generous: this waits for a thread on a shared machine, it times nothing.
    for (int i = 0; i < 1000; ++i) {
      if (fx.lmdb().journal_stats().applied_lsn >= lsn) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  commit_one(fx.store(), make(ab, a, {a, b}));
  CHECK(applied_within(1));
  // Again after the overlay went empty: the next lone commit starts a new interval.
  commit_one(fx.store(), make(ab, b, {a, b}));
  CHECK(applied_within(2));
  CHECK(fx.lmdb().journal_stats().unapplied_batches == 0);
  CHECK(fx.lmdb().journal_stats().checkpoints >= 2);
}

TEST_CASE("LmdbStore: a checkpoint lets waiting direct writes in, and still applies everything") {
  LmdbStoreFixture fx(LmdbOptions().initial_map_bytes, manual_checkpoints);
  MessageMaker make;
  std::vector<UserId> users;
  for (int i = 0; i < 20; ++i) users.push_back(add_user(fx.store(), "u" + std::to_string(i)));
  // A backlog that takes a checkpoint long enough (~100 ms here, tens of ms
  // on a much faster machine) for the writer below to find it running:
  // 4,000 batches of 10 messages, one to each of the 10 conversations.
  std::vector<ConversationId> convs;
  for (int p = 0; p < 10; ++p)
    convs.push_back(ConversationId::direct(users[2 * p], users[2 * p + 1]));
  for (int i = 0; i < 4000; ++i) {
    std::vector<NewMessage> batch;
    for (int p = 0; p < 10; ++p) {
      batch.push_back(make(convs[p], users[2 * p + i % 2], {users[2 * p], users[2 * p + 1]}));
    }
    for (const auto& o : fx.store().commit(batch)) CC_REQUIRE_OK(o.status);
  }
  REQUIRE(fx.lmdb().journal_stats().unapplied_batches == 4000);

  // A direct writer loops for as long as the checkpoint runs, so that it is
  // waiting for the writer lock at some batch boundary: read cursors, whose
  // last value must survive, interleaved with the checkpoint's slices.
  std::atomic<bool> checkpoint_done{false};
  std::atomic<int> writes{0};
  Status writer_status;
  std::thread writer([&] {
    for (std::uint64_t seq = 1; !checkpoint_done.load(); ++seq) {
      Status st = fx.store().set_read_cursor(users[0], convs[0], seq);
      if (!st) {
        writer_status = st;
        return;
      }
      writes.fetch_add(1);
    }
  });
  while (writes.load() == 0) std::this_thread::yield();  // the writer is looping
  const int writes_before = writes.load();
  const auto began = std::chrono::steady_clock::now();
  Status synced = fx.lmdb().sync();
  const auto took = std::chrono::steady_clock::now() - began;
  const int writes_during = writes.load() - writes_before;
  checkpoint_done = true;
  writer.join();
  CC_REQUIRE_OK(synced);
  CC_REQUIRE_OK(writer_status);
  const auto stats = fx.lmdb().journal_stats();
  MESSAGE("checkpoint of 4,000 batches of 10: "
          << std::chrono::duration<double, std::milli>(took).count() << " ms, "
          << stats.checkpoint_yields << " slices committed early, " << writes_during
          << " direct writes meanwhile");
  CHECK(stats.checkpoint_yields >= 1);
  CHECK(stats.unapplied_batches == 0);
  CHECK(stats.applied_lsn == stats.last_lsn);
  const auto last_cursor = static_cast<std::uint64_t>(writes.load());

  // Everything is in LMDB, in order, after a reopen too.
  for (int round = 0; round < 2; ++round) {
    CAPTURE(round);
    for (int p = 0; p < 10; ++p) {
      CHECK(seqs_of(page(fx.store(), convs[p], std::nullopt, std::uint64_t{0}, 5000)) ==
            range(1, 4000));
      CHECK(*fx.store().inbox_head(users[2 * p]) == 4000);
    }
    CHECK(*fx.store().read_cursor(users[0], convs[0]) == last_cursor);
    fx.reopen();
  }
}
