// LmdbStore: the durable Store, on LMDB (the daemon's default).
//
// One LMDB environment (a directory holding data.mdb and lock.mdb) with one
// named sub-database per table: users, user_names, passwords, tokens, groups,
// members, user_groups, contacts, watchers, messages, conv_state, inbox,
// dedup, user_convs, device_cursors, read_cursors, last_seen, and meta
// (schema version, id counters). Integer keys are big-endian, so cursor
// order is numeric order and "the newest entry of a partition" is one cursor
// step. Records carry a format version byte first.
//
// Usage:
//
//   chatcore::LmdbOptions options;
//   options.path = "/var/lib/chatcored/db";
//   auto store = chatcore::LmdbStore::open(options);
//   if (!store) { fmt::print("{}\n", store.status().to_string()); return 1; }
//   chatcore::Store& s = **store;
//
// Contract: every behaviour of chatcore::Store (store.hpp); the conformance
// suite (tests/conformance/) runs the same cases against this store and
// MemoryStore.
//
// Journal and checkpoints. commit() does not write LMDB. It appends the
// whole batch as ONE record to a write-ahead log (the journal, in
// `<path>/journal/`) and, in Durability::kSync, flushes that one record
// (group commit: one fdatasync per batch, of a few hundred bytes per
// message), then makes the batch visible to reads from memory and returns.
// A checkpoint, on the store's own thread, later applies every batch
// journaled since the last one to LMDB in one write transaction, and then
// drops the journal segments it covered. Checkpoints run when
// checkpoint_bytes are waiting or the oldest batch is
// checkpoint_interval_ms old, on sync(), and on close. Why: an LMDB commit
// writes and flushes every page it touched, and the messages of one batch
// touch pages all over the tables (a conversation, two inboxes, a dedup
// key each); a checkpoint writes a page that a thousand messages touched
// once (docs/benchmarks.md). Reads see every committed batch at once,
// whether checkpointed or not. open() replays whatever a crash left
// unapplied, so a kill -9 or a power loss between commit() and the next
// checkpoint loses nothing commit() acknowledged (in kSync).
//
// Errors (Status codes returned besides the contract's domain codes):
//  * kInvalidArgument: a user name outside 1..64 bytes, a token hash outside
//    1..256 bytes, a device id over 256 bytes (LMDB keys are bounded; the
//    MemoryStore enforces the same bounds); a malformed message in a batch.
//  * kUnavailable: an I/O-level failure (errno from the OS: EIO, ENOSPC,
//    EACCES...), MDB_READERS_FULL (more than max_readers concurrent reads),
//    or a map that could not grow. The message names the LMDB call, the
//    sub-database, the environment path and mdb_strerror().
//  * kInternal: LMDB reported corruption, or a record failed to decode.
//    A journal flush that fails makes every later commit fail too, until
//    the store is reopened (Linux may have dropped the unwritten pages and
//    reports such an error once: the log cannot be trusted past it).
//    commit() also returns kUnavailable after waiting 30 s for a checkpoint
//    to make room (max_unapplied_bytes), naming the checkpoint's error.
//    open(): kUnavailable when another LmdbStore, in this process or
//    another, has the environment open (the journal's lock).
//  * kFailedPrecondition (open only): the environment was written by a newer
//    schema version than this build understands.
//  * kInternal (open only): the journal is damaged beyond a torn last
//    record (a record missing in the middle, a segment that is not one).
//
// Thread-safety: every method may be called from any thread concurrently
// (the Store contract). Reads run in their own read-only transactions
// (MDB_NOTLS: a read transaction is not tied to a thread) and proceed in
// parallel with each other and with a write. Writes are serialised by an
// internal mutex; LMDB allows one writer per environment anyway. A running
// checkpoint holds that writer for as long as it applies (a quarter of a
// second at 27,500 messages/s), so it lets a waiting write in: after
// at least 2 ms of work it commits at the next batch boundary, and takes
// the writer back, ahead of writes that came later, once the waiting ones
// are in (JournalStats::checkpoint_yields). A direct write (token,
// profile, group, cursor) therefore waits for one such commit's flush, not
// for the whole checkpoint; still, avoid calling one from a thread whose
// latency matters.
//
// Caveats (in the spirit of lmdb.h's list):
//  * One LmdbStore per environment at a time: a second open, in any
//    process, fails with kUnavailable (the journal's lock file). Other
//    programs that read data.mdb directly with LMDB do not see batches
//    that are not yet checkpointed.
//  * Memory: batches wait in memory until their checkpoint, at most
//    max_unapplied_bytes (commit() waits beyond it), typically
//    checkpoint_bytes or one checkpoint_interval_ms of traffic.
//  * Do not use an LmdbStore after fork() in the child; open a new one there
//    (lmdb.h: "Use an MDB_env* in the process which opened it, not after
//    fork()").
//  * The map grows on demand: a write that hits MDB_MAP_FULL is retried
//    after doubling the map size, transparently. Growing needs a moment with
//    no transaction open in the process, so it briefly waits for in-flight
//    reads to finish and holds new ones back. Long reads therefore delay
//    growth, and every read here is short.
//  * data.mdb never shrinks. Space freed by deleted records is reused.
//  * Keep the directory on a local filesystem; LMDB's locking does not work
//    over NFS and similar.
//  * A record larger than about half a page (a long body) is stored on
//    overflow pages, which LMDB reuses less eagerly; a history of long
//    bodies costs somewhat more space than the bytes themselves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "chatcore/status.hpp"
#include "chatcore/store.hpp"

namespace chatcore {

// What a commit promises when it returns. Chosen once, at open.
enum class Durability {
  // Every write returns only after it is on stable storage, like a write()
  // followed by fsync(): a commit() batch once its journal record is
  // flushed with fdatasync(), every other write call (and every
  // checkpoint) once LMDB has flushed its transaction. A committed write
  // survives kill -9 of the process, an OS crash and a power loss (given a
  // disk that honours flushes). The default, and what the engine's
  // "acknowledged messages are never lost" promise needs.
  kSync,
  // No flushes: journal records, and LMDB transactions (MDB_NOSYNC), are
  // written to the OS page cache with write(), not flushed. A committed
  // write survives kill -9 or any other crash of the process, because the
  // kernel owns those pages. An OS crash or power loss may undo the most
  // recent commits; LMDB states that the database then stays consistent
  // (losing only durability, not integrity) only if the filesystem
  // preserves write order, and may otherwise be corrupted. For benchmarks
  // and disposable data. A clean close (the destructor) and sync() flush
  // everything.
  kNoSync,
};

struct LmdbOptions {
  // Directory of the environment; created (with parents) if missing.
  std::string path;
  Durability durability = Durability::kSync;
  // The map size to start with. The map doubles whenever a write needs more
  // room; the file grows with data, not with the map, so a large map costs
  // only address space. Start large: a growth waits for every transaction
  // in the process to end, holds new ones (reads too) back meanwhile, and
  // redoes the transaction that ran out of room, which at a high message
  // rate is a whole checkpoint: one such 5 s step at 25,000 msg/s had an
  // ack p99 of 94-108 ms instead of ~4 (docs/benchmarks.md). 4 GiB on
  // 64-bit hosts, 256 MiB on 32-bit ones. Reopening an environment larger
  // than this keeps the larger size in use.
  std::size_t initial_map_bytes =
      sizeof(void*) >= 8 ? std::size_t{4} << 30 : std::size_t{256} << 20;
  // Most read transactions open at once (LMDB reader slots). Beyond it a
  // read fails with kUnavailable. Each concurrent read call uses one slot
  // for its duration.
  unsigned max_readers = 126;

  // ---- the journal (see "Journal and checkpoints" above) --------------------------
  // A checkpoint applies the journal to LMDB once this many bytes of it
  // (records plus their in-memory index) wait to be applied...
  std::size_t checkpoint_bytes = std::size_t{16} * 1024 * 1024;
  // ...or once the oldest unapplied batch is this old. 0: no timer (only
  // checkpoint_bytes, sync() and close checkpoint).
  std::uint32_t checkpoint_interval_ms = 1000;
  // commit() waits (up to 30 s, then fails with kUnavailable) while more
  // than this waits to be applied: checkpoints are falling behind, or
  // failing. Bounds the memory the unapplied batches hold.
  std::size_t max_unapplied_bytes = std::size_t{256} * 1024 * 1024;
  // Added to the checkpoint thread's nice value (Linux; the result is capped
  // at 19), so that on a busy core the threads that acknowledge and deliver
  // messages run first and checkpoints take the CPU they leave. On one core
  // at 27,500 messages/s this took the ack p99 from 11 to 8 ms, and at
  // 60,000 it kept the p50 flat where it otherwise climbed
  // (docs/benchmarks.md). The price, on a saturated core: the checkpoint
  // holds locks while it runs (LMDB's writer, and briefly the overlay's and
  // the map-growth gate), so writes that go straight to LMDB (cursors, last
  // seen, groups) and a map growth wait longer; commits wait for it only
  // past max_unapplied_bytes. A thread cannot lower its nice value again
  // without privilege. Above 0 the thread also asks for a 0.1 ms time slice
  // where the scheduler takes one (EEVDF, Linux 6.12+), so that it gives the
  // CPU back within that when a message thread wakes (ack p99 at 27,500
  // messages/s: a further 0.7-1 ms lower). 0: the thread runs at the
  // process's priority and slice.
  int checkpoint_nice = 10;
};

class LmdbStore final : public Store {
 public:
  // Opens (creating if needed) the environment at options.path.
  // On failure: kInvalidArgument for an empty path, kUnavailable when the
  // directory cannot be created or LMDB cannot open it (the message names
  // the path and the reason, e.g. "mdb_env_open(/x/db): Permission
  // denied"), kFailedPrecondition for an unknown schema version, kInternal
  // for a corrupt environment.
  static Result<std::unique_ptr<LmdbStore>> open(const LmdbOptions& options);

  // Checkpoints (so the next open replays nothing) and closes the
  // environment. In Durability::kNoSync, flushes it first. Precondition:
  // no call on this object is in progress.
  ~LmdbStore() override;

  LmdbStore(const LmdbStore&) = delete;
  LmdbStore& operator=(const LmdbStore&) = delete;

  // Checkpoints now (applies every journaled batch to LMDB, see above) and
  // flushes everything to stable storage (mdb_env_sync with force). In
  // Durability::kSync every commit is durable without it; in kNoSync it is
  // how to make the commits so far durable.
  Status sync();

  // The journal's state, for tests and metrics.
  struct JournalStats {
    std::uint64_t last_lsn = 0;     // the newest record committed
    std::uint64_t applied_lsn = 0;  // the newest record applied to LMDB
    std::size_t unapplied_batches = 0;
    std::size_t unapplied_bytes = 0;  // what checkpoint_bytes is compared with
    std::uint64_t checkpoints = 0;    // since open
    std::uint64_t checkpoint_failures = 0;
    // Checkpoint transactions committed early, at a batch boundary, so that
    // a direct write (a token, a profile, a cursor) waiting for LMDB's
    // writer lock got in; the checkpoint then went on in a new one.
    std::uint64_t checkpoint_yields = 0;
    double checkpoint_seconds = 0;  // time spent in checkpoints since open
    double last_checkpoint_seconds = 0;
    Status last_checkpoint_error;  // OK unless the last checkpoint failed
  };
  JournalStats journal_stats() const;
  // The current map size in bytes (grows on demand; for tests and metrics).
  std::size_t map_bytes() const;
  const LmdbOptions& options() const;

  // ---- Store -----------------------------------------------------------------
  Result<UserId> create_user(const NewUser& user) override;
  Result<User> get_user(UserId id) override;
  Result<User> find_user_by_name(std::string_view name) override;
  Status update_profile(UserId id, const ProfileUpdate& update) override;
  Status set_password_hash(UserId id, std::string_view hash) override;
  Result<std::string> get_password_hash(UserId id) override;

  Status put_token(std::string_view token_hash, const TokenRecord& record) override;
  Result<TokenRecord> get_token(std::string_view token_hash) override;
  Status delete_token(std::string_view token_hash) override;

  Result<GroupId> create_group(std::string_view name, UserId owner, std::span<const UserId> members,
                               std::int64_t now_ms, std::uint32_t max_members) override;
  Result<Group> get_group(GroupId id) override;
  Result<std::vector<Member>> group_members(GroupId id) override;
  Result<MemberRole> member_role(GroupId group, UserId user) override;
  Status add_member(GroupId group, UserId user, MemberRole role,
                    std::uint32_t max_members) override;
  Status remove_member(GroupId group, UserId user) override;
  Result<std::vector<GroupId>> groups_of(UserId user) override;

  Status add_contact(UserId owner, UserId contact, std::int64_t now_ms) override;
  Status remove_contact(UserId owner, UserId contact) override;
  Result<std::vector<UserId>> contacts_of(UserId owner) override;
  Result<std::vector<UserId>> watchers_of(UserId contact) override;

  Status touch_direct_conversation(ConversationId conv, std::int64_t now_ms) override;
  Result<std::vector<ConversationId>> conversations_of(UserId user) override;
  Result<ConversationState> conversation_state(ConversationId conv) override;

  // One journal record (and in kSync one flush) for the whole batch; see
  // "Journal and checkpoints". A per-message problem (a malformed message)
  // fails that message alone; a journal or LMDB failure fails every
  // message and stores nothing. Not concurrent with another commit():
  // calls are serialised.
  std::vector<CommitOutcome> commit(std::span<const NewMessage> batch) override;
  Result<std::shared_ptr<const Message>> find_by_client_id(UserId sender,
                                                           const ClientMsgId& id) override;
  Result<std::vector<std::shared_ptr<const Message>>> history(ConversationId conv,
                                                              const HistoryQuery& query) override;

  Result<std::vector<InboxItem>> read_inbox(UserId user, std::uint64_t after,
                                            std::uint32_t limit) override;
  Result<std::uint64_t> inbox_head(UserId user) override;
  Status set_device_cursor(UserId user, std::string_view device_id,
                           std::uint64_t inbox_seq) override;
  Result<std::uint64_t> device_cursor(UserId user, std::string_view device_id) override;
  Status set_read_cursor(UserId user, ConversationId conv, std::uint64_t seq) override;
  Result<std::uint64_t> read_cursor(UserId user, ConversationId conv) override;

  Status set_last_seen(UserId user, std::int64_t at_ms) override;
  Result<std::int64_t> last_seen(UserId user) override;

 private:
  struct Impl;
  explicit LmdbStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace chatcore
