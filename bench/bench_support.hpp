// Shared pieces of the micro benchmarks: temporary LMDB directories on a
// real filesystem, a user population, a generator of 1-on-1 message
// batches, and engine doubles that cost as little as a real transport's
// bookkeeping (copy the frame, count it).
//
// Nothing here asserts timings. A benchmark that finds the engine or store
// misbehaving (a failed commit, a missing delivery) reports it with
// State::SkipWithError, so a broken run is visible in the JSON, never a
// fast-looking number.
#pragma once

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chatcore/authenticator.hpp"
#include "chatcore/ids.hpp"
#include "chatcore/model.hpp"
#include "chatcore/session.hpp"
#include "chatcore/store.hpp"

#ifdef CHATCORE_BENCH_HAVE_LMDB
#include "chatcore/lmdb_store.hpp"
#endif

namespace chatcore::bench {

// Where LMDB environments go: $CHATCORE_BENCH_DIR if set, else the system
// temp directory (/tmp). Must be a disk-backed filesystem for the kSync
// figures to mean anything: fsync on tmpfs (/dev/shm) is free.
inline std::filesystem::path bench_root() {
  if (const char* dir = std::getenv("CHATCORE_BENCH_DIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  return std::filesystem::temp_directory_path();
}

// A fresh, empty directory, removed with everything in it on destruction.
class TempDir {
 public:
  explicit TempDir(std::string_view tag) {
    static std::atomic<unsigned> counter{0};
    path_ = bench_root() / ("chatcore-bench-" + std::string(tag) + "-" +
                            std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
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

// Bytes this process has handed to write()/pwrite()/writev() so far
// (/proc/self/io "wchar"); for LMDB, the pages its commits wrote. -1 if
// unavailable.
inline double written_bytes() {
  std::ifstream io("/proc/self/io");
  std::string key;
  double value = 0;
  while (io >> key >> value) {
    if (key == "wchar:") return value;
  }
  return -1;
}

// Puts glibc's allocator in the state of a process that has been running
// for a while. glibc returns the top of its heap to the kernel once more
// than M_TRIM_THRESHOLD (128 KiB) is free there, until the first time a
// block above M_MMAP_THRESHOLD is freed, which raises both thresholds for
// the rest of the process. Until then a benchmark that allocates and frees
// 100 KB frames pays page faults for fresh memory on every one of them,
// and its figure depends on which benchmarks ran before it in the same
// process. A daemon that has handled one large frame is past that point.
inline void settle_allocator() {
  constexpr std::size_t kBig = std::size_t{4} << 20;  // above the 128 KiB default
  void* p = std::malloc(kBig);
  benchmark::DoNotOptimize(p);
  if (p != nullptr) static_cast<volatile char*>(p)[0] = 1;
  std::free(p);
}

// Creates users 1..n ("user1", ...). False on the first failure.
inline bool make_users(Store& store, int n) {
  for (int i = 1; i <= n; ++i) {
    NewUser u;
    u.name = "user" + std::to_string(i);
    if (!store.create_user(u).is_ok()) return false;
  }
  return true;
}

#ifdef CHATCORE_BENCH_HAVE_LMDB
// An LMDB store in `dir` holding `users` users, opened with `durability`.
// The users are created in kNoSync (one transaction each would otherwise
// cost one fsync each) and flushed by closing, then the environment is
// reopened in the requested mode: the timed part starts from a durable,
// ordinary state. Null on failure (the reason in *error).
inline std::unique_ptr<LmdbStore> open_lmdb(
    const std::filesystem::path& dir, Durability durability, int users, std::string* error,
    const std::function<void(LmdbOptions&)>& configure = {}) {
  LmdbOptions options;
  options.path = dir.string();
  options.durability = Durability::kNoSync;
  if (users > 0) {
    auto setup = LmdbStore::open(options);
    if (!setup.is_ok()) {
      *error = setup.status().to_string();
      return nullptr;
    }
    if (!make_users(**setup, users)) {
      *error = "creating users failed";
      return nullptr;
    }
  }  // the destructor flushes (kNoSync)
  options.durability = durability;
  if (configure) configure(options);
  auto store = LmdbStore::open(options);
  if (!store.is_ok()) {
    *error = store.status().to_string();
    return nullptr;
  }
  return std::move(store).value();
}
#endif

// Makes batches of 1-on-1 messages among users 1..users: each message goes
// from a random user to another random user, with a fresh Snowflake-like
// id and a fresh client message id, and a body of `body_bytes` ASCII bytes.
// Refilling a batch reuses its allocations, so the timed loop measures the
// store, not the generator (a few ns per message).
class DirectBatchMaker {
 public:
  DirectBatchMaker(int users, std::size_t body_bytes, std::uint32_t seed = 42)
      : users_(static_cast<std::uint64_t>(users)), body_(body_bytes, 'm') {
    // A pool of sender/peer pairs, drawn once, cycled through.
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<std::uint64_t> pick(1, users_);
    pairs_.resize(4096);
    for (auto& [a, b] : pairs_) {
      a = pick(rng);
      do {
        b = pick(rng);
      } while (b == a);
    }
  }

  std::vector<NewMessage> make(std::size_t n) {
    std::vector<NewMessage> batch(n);
    for (auto& m : batch) {
      m.body = body_;
      m.recipients.reserve(2);
    }
    refill(batch);
    return batch;
  }

  void refill(std::vector<NewMessage>& batch) {
    for (auto& m : batch) {
      const auto& [a, b] = pairs_[next_pair_++ & (pairs_.size() - 1)];
      ++serial_;
      UserId sender(a), peer(b);
      m.id = MessageId(serial_);
      m.conversation = ConversationId::direct(sender, peer);
      m.sender = sender;
      for (int i = 0; i < 8; ++i) {
        m.client_msg_id.bytes[15 - i] = static_cast<std::uint8_t>(serial_ >> (8 * i));
      }
      m.client_msg_id.bytes[0] = 0xB0;  // never all-zero
      m.sent_at_ms = 1'750'000'000'000 + static_cast<std::int64_t>(serial_ / 1000);
      m.recipients.clear();
      m.recipients.push_back(m.conversation.low_user());
      m.recipients.push_back(m.conversation.high_user());
    }
  }

 private:
  std::uint64_t users_;
  std::string body_;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> pairs_;
  std::size_t next_pair_ = 0;
  std::uint64_t serial_ = 0;
};

// A transport's session reduced to what every transport does per frame:
// copy the bytes (Session::send's contract) and count them. Never slow.
class CountingSession final : public Session {
 public:
  void send(std::span<const std::uint8_t> frame) override {
    last_.assign(frame.begin(), frame.end());
    benchmark::DoNotOptimize(last_.data());
    ++frames;
    bytes += frame.size();
  }
  std::size_t queued_bytes() const override { return 0; }
  void close(CloseCode code, std::string_view) override { closed_with = static_cast<int>(code); }

  std::uint64_t frames = 0;
  std::uint64_t bytes = 0;
  int closed_with = -1;  // -1: open

 private:
  std::vector<std::uint8_t> last_;
};

// "tok-<n>" authenticates as user n (the test suite's FakeAuth, without
// its doctest dependency).
class TokenAuth final : public Authenticator {
 public:
  Result<Identity> authenticate(std::string_view token) override {
    if (token.rfind("tok-", 0) != 0) return Status::unauthenticated("unknown token");
    auto id = parse_decimal(token.substr(4));
    if (!id) return Status::unauthenticated("unknown token");
    return Identity{UserId(*id), std::string(token)};
  }
};

inline ClientMsgId client_id(std::uint64_t n) {
  ClientMsgId id;
  for (int i = 0; i < 8; ++i) id.bytes[15 - i] = static_cast<std::uint8_t>(n >> (8 * i));
  id.bytes[0] = 0xC1;  // never all-zero
  return id;
}

}  // namespace chatcore::bench
