// Store::commit, the group-commit path: batches of 1-on-1 messages with
// 100-byte bodies into LMDB (kSync and kNoSync) and, as a reference line,
// MemoryStore. One iteration is one commit() call, so the reported time is
// the time per batch and items_per_second is messages per second. For
// LmdbStore a commit is one journal record (flushed in kSync); checkpoints
// apply the journal to LMDB meanwhile, on the store's own thread, as in
// the daemon. After the timed loop one more checkpoint applies the rest,
// and the counters account for all of it: checkpoint_per_msg is the
// checkpoints' wall time per message, written_per_batch every byte the
// process wrote (journal and LMDB pages) per commit. kSync runs begin after
// an untimed warm-up that lasts until the first checkpoint (at most the
// daemon's 1 s interval), so that the journal is in the steady state of a
// running server.
//
// BM_LmdbCheckpoint measures a checkpoint alone: one iteration applies
// `messages` journaled messages to LMDB in one go (kSync), so its
// items_per_second is what the checkpoint thread sustains, by the size of
// a checkpoint.
//
// Two traffic shapes:
//  * BM_LmdbCommit: random sender -> peer pairs among 1,000 users (4,096
//    distinct conversations). Consecutive messages land in unrelated parts
//    of every B-tree (messages, inbox, dedup), the realistic case.
//  * BM_LmdbCommitHot: the same among 10 users (45 conversations): the
//    best case, where one batch keeps hitting the same few pages.
// written_per_batch (bytes handed to write() per commit, /proc/self/io)
// shows the difference: LMDB copies every 4 KiB page a commit touches.
//
// Every run opens a fresh LMDB environment in its own directory under
// bench_root() (/tmp unless CHATCORE_BENCH_DIR says otherwise) and removes
// it afterwards. It must be a disk-backed filesystem: the point of kSync is
// the cost of the flush. BM_Fdatasync4K measures that flush alone, in the
// same directory tree, so the commit figures can be read against it.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "bench_support.hpp"
#include "chatcore/memory_store.hpp"

namespace chatcore::bench {
namespace {

constexpr int kUsers = 1000;
constexpr int kHotUsers = 10;
constexpr std::size_t kBodyBytes = 100;

// True if every outcome is a stored, non-duplicate message.
bool all_stored(const std::vector<CommitOutcome>& outcomes, std::string* why) {
  for (const auto& o : outcomes) {
    if (!o.status.is_ok()) {
      *why = o.status.to_string();
      return false;
    }
    if (!o.message || o.duplicate) {
      *why = "commit stored nothing or reported a duplicate";
      return false;
    }
  }
  return true;
}

// `lmdb`, when the store is one: checkpoint the rest after the loop and
// report the checkpoints' share.
void run_commits(benchmark::State& state, Store& store, int users, std::size_t batch_size,
                 LmdbStore* lmdb = nullptr) {
  DirectBatchMaker maker(users, kBodyBytes);
  std::vector<NewMessage> batch = maker.make(batch_size);
  std::string why;
  if (lmdb != nullptr && lmdb->options().durability == Durability::kSync) {
    // Untimed, until the first checkpoint has rotated the journal: a fresh
    // store's first segment is preallocated for a trickle, the next ones
    // for the traffic seen (journal.hpp, PREALLOCATION). A running daemon
    // is in the second state; so is what this measures.
    while (lmdb->journal_stats().checkpoints == 0) {
      if (!all_stored(store.commit(batch), &why)) {
        state.SkipWithError(why.c_str());
        return;
      }
      maker.refill(batch);
    }
  }
  const double written_before = written_bytes();
  const double checkpoint_before = lmdb ? lmdb->journal_stats().checkpoint_seconds : 0;
  for (auto _ : state) {
    maker.refill(batch);
    auto outcomes = store.commit(batch);
    if (!all_stored(outcomes, &why)) {
      state.SkipWithError(why.c_str());
      break;
    }
    benchmark::DoNotOptimize(outcomes.data());
  }
  const auto messages = state.iterations() * static_cast<std::int64_t>(batch_size);
  state.SetItemsProcessed(messages);
  state.counters["batch"] = static_cast<double>(batch_size);
  if (lmdb != nullptr && messages > 0) {
    if (Status s = lmdb->sync(); !s.is_ok()) {
      state.SkipWithError(s.to_string().c_str());
      return;
    }
    state.counters["checkpoint_per_msg"] =
        (lmdb->journal_stats().checkpoint_seconds - checkpoint_before) /
        static_cast<double>(messages);
  }
  const double written = written_bytes() - written_before;
  if (written_before >= 0 && state.iterations() > 0) {
    state.counters["written_per_batch"] =
        benchmark::Counter(written / static_cast<double>(state.iterations()),
                           benchmark::Counter::kDefaults, benchmark::Counter::kIs1024);
  }
}

#ifdef CHATCORE_BENCH_HAVE_LMDB
// Args: {batch size, sync (1) or nosync (0)}.
void lmdb_commits(benchmark::State& state, int users) {
  const auto batch_size = static_cast<std::size_t>(state.range(0));
  const Durability durability = state.range(1) != 0 ? Durability::kSync : Durability::kNoSync;
  TempDir dir("commit");
  std::string error;
  auto store = open_lmdb(dir.path(), durability, users, &error);
  if (!store) {
    state.SkipWithError(error.c_str());
    return;
  }
  run_commits(state, *store, users, batch_size, store.get());
}

void BM_LmdbCommit(benchmark::State& state) { lmdb_commits(state, kUsers); }
BENCHMARK(BM_LmdbCommit)
    ->ArgNames({"batch", "sync"})
    ->ArgsProduct({{1, 16, 100, 256}, {1, 0}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

void BM_LmdbCommitHot(benchmark::State& state) { lmdb_commits(state, kHotUsers); }
BENCHMARK(BM_LmdbCommitHot)
    ->ArgNames({"batch", "sync"})
    ->ArgsProduct({{100, 256}, {1, 0}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// Args: {messages per checkpoint}. kSync; checkpoints only when sync() asks.
void BM_LmdbCheckpoint(benchmark::State& state) {
  const auto messages = static_cast<std::size_t>(state.range(0));
  TempDir dir("checkpoint");
  std::string error;
  auto store = open_lmdb(dir.path(), Durability::kSync, kUsers, &error, [](LmdbOptions& o) {
    o.checkpoint_interval_ms = 0;
    o.checkpoint_bytes = std::numeric_limits<std::size_t>::max();
    o.max_unapplied_bytes = std::numeric_limits<std::size_t>::max();
  });
  if (!store) {
    state.SkipWithError(error.c_str());
    return;
  }
  DirectBatchMaker maker(kUsers, kBodyBytes);
  std::vector<NewMessage> batch = maker.make(256);
  std::string why;
  double written = 0;
  for (auto _ : state) {
    state.PauseTiming();
    for (std::size_t done = 0; done < messages; done += batch.size()) {
      maker.refill(batch);
      if (!all_stored(store->commit(batch), &why)) break;
    }
    const double before = written_bytes();
    state.ResumeTiming();
    if (!why.empty()) {
      state.SkipWithError(why.c_str());
      break;
    }
    if (Status s = store->sync(); !s.is_ok()) {
      state.SkipWithError(s.to_string().c_str());
      break;
    }
    written += written_bytes() - before;
  }
  const std::size_t per_iteration = (messages + batch.size() - 1) / batch.size() * batch.size();
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(per_iteration));
  if (state.iterations() > 0) {
    state.counters["written_per_msg"] =
        benchmark::Counter(written / static_cast<double>(state.iterations() * per_iteration),
                           benchmark::Counter::kDefaults, benchmark::Counter::kIs1024);
  }
}
BENCHMARK(BM_LmdbCheckpoint)
    ->ArgName("messages")
    ->Arg(1'024)
    ->Arg(10'240)
    ->Arg(51'200)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
#endif

void BM_MemoryStoreCommit(benchmark::State& state) {
  const auto batch_size = static_cast<std::size_t>(state.range(0));
  MemoryStore store;
  if (!make_users(store, kUsers)) {
    state.SkipWithError("creating users failed");
    return;
  }
  run_commits(state, store, kUsers, batch_size);
}
BENCHMARK(BM_MemoryStoreCommit)
    ->ArgName("batch")
    ->Arg(256)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// The floor under every kSync commit: write one 4 KiB page of a file and
// fdatasync() it, in a directory next to the LMDB environments. Arg 0
// overwrites preallocated pages (data only); arg 1 appends, so each flush
// also commits the file's new size and blocks to the ext4 journal, as a
// growing data.mdb does. (An LMDB commit in kSync flushes twice: the data
// pages with fdatasync(), then the meta page through a descriptor opened
// O_DSYNC.)
void BM_Fdatasync4K(benchmark::State& state) {
  const bool append = state.range(0) != 0;
  TempDir dir("fsync");
  const std::string file = (dir.path() / "probe").string();
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) {
    state.SkipWithError(std::strerror(errno));
    return;
  }
  std::vector<char> page(4096, 'p');
  for (int i = 0; i < 16; ++i) {  // preallocated pages for the overwrite case
    if (::pwrite(fd, page.data(), page.size(), i * 4096) < 0) break;
  }
  ::fsync(fd);
  long long n = 0;
  for (auto _ : state) {
    const long long page_no = append ? 16 + n : n % 16;
    ++n;
    if (::pwrite(fd, page.data(), page.size(), page_no * 4096) < 0 || ::fdatasync(fd) != 0) {
      state.SkipWithError(std::strerror(errno));
      break;
    }
  }
  ::close(fd);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Fdatasync4K)
    ->ArgName("append")
    ->Arg(0)
    ->Arg(1)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace chatcore::bench
