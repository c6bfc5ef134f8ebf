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
// MemoryStore. In particular commit() runs a whole batch in ONE write
// transaction, i.e. one fsync for the batch in Durability::kSync (group
// commit), and returns only once that transaction is committed.
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
//  * kFailedPrecondition (open only): the environment was written by a newer
//    schema version than this build understands.
//
// Thread-safety: every method may be called from any thread concurrently
// (the Store contract). Reads run in their own read-only transactions
// (MDB_NOTLS: a read transaction is not tied to a thread) and proceed in
// parallel with each other and with a write. Writes are serialised by an
// internal mutex; LMDB allows one writer per environment anyway.
//
// Caveats (in the spirit of lmdb.h's list):
//  * One LmdbStore per environment per process. LMDB's locks are per
//    process: opening the same directory twice in one process, even through
//    two LmdbStore objects, corrupts the lock state. Several processes may
//    open the same environment (LMDB supports it), but only this class
//    grows the map, and a process that does not know about the growth sees
//    MDB_MAP_RESIZED, which this class handles and others might not.
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
#include <memory>
#include <string>

#include "chatcore/status.hpp"
#include "chatcore/store.hpp"

namespace chatcore {

// What a commit promises when it returns. Chosen once, at open.
enum class Durability {
  // Every write transaction (each commit() batch, each other write call)
  // returns only after LMDB has flushed it to stable storage with
  // fdatasync()/fsync(), like a write() followed by fsync(). A committed
  // write survives kill -9 of the process, an OS crash and a power loss
  // (given a disk that honours flushes). The default, and what the engine's
  // "acknowledged messages are never lost" promise needs.
  kSync,
  // MDB_NOSYNC: a commit returns once its pages are written to the OS page
  // cache (write(), not mmap writes, since MDB_WRITEMAP is not used), without
  // a flush. A committed write survives kill -9 or any other crash of the
  // process, because the kernel owns those pages. An OS crash or power loss
  // may undo the most recent commits; LMDB states that the database then
  // stays consistent (losing only durability, not integrity) only if the
  // filesystem preserves write order, and may otherwise be corrupted. For
  // benchmarks and disposable data. A clean close (the destructor) and
  // sync() flush everything.
  kNoSync,
};

struct LmdbOptions {
  // Directory of the environment; created (with parents) if missing.
  std::string path;
  Durability durability = Durability::kSync;
  // The map size to start with. The map doubles whenever a write needs more
  // room, so this only needs to be a good guess; the file grows with data,
  // not with the map. Reopening an environment larger than this keeps the
  // larger size in use.
  std::size_t initial_map_bytes = std::size_t{64} * 1024 * 1024;
  // Most read transactions open at once (LMDB reader slots). Beyond it a
  // read fails with kUnavailable. Each concurrent read call uses one slot
  // for its duration.
  unsigned max_readers = 126;
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

  // Closes the environment. In Durability::kNoSync, flushes it first.
  // Precondition: no call on this object is in progress.
  ~LmdbStore() override;

  LmdbStore(const LmdbStore&) = delete;
  LmdbStore& operator=(const LmdbStore&) = delete;

  // Flushes every committed write to stable storage (mdb_env_sync with
  // force). Only useful in Durability::kNoSync; a no-op cost otherwise.
  Status sync();
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

  // One write transaction for the whole batch. A per-message problem (a
  // malformed message) fails that message alone; an LMDB failure fails
  // every message and stores nothing. MDB_MAP_FULL is never reported: the
  // map grows and the transaction is retried.
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
