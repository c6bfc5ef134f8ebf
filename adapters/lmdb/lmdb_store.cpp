// LmdbStore: the Store contract on LMDB. See lmdb_store.hpp for the manual.
//
// Design notes.
//
// Tables. One named sub-database per table, all in one environment, so one
// write transaction covers a message, its inbox entries and its dedup key.
// Keys are fixed-width big-endian integers (plus a byte string for names,
// token hashes and device ids): memcmp order is numeric order, and the first
// 8 bytes are the partition (a user, a conversation, a group).
//
//   meta            "schema_version" | "next_user_id" | "next_group_id"
//                   | "journal_lsn" -> u64
//   users           uid               -> User fields
//   user_names      name              -> uid
//   passwords       uid               -> hash
//   tokens          token_hash        -> (uid, expires_at)
//   groups          gid               -> (name, owner, created_at)
//   members         (gid, uid)        -> role
//   user_groups     (uid, gid)        -> ""
//   contacts        (owner, contact)  -> added_at
//   watchers        (contact, owner)  -> ""
//   messages        (conv, seq)       -> (id, sender, client_msg_id, sent_at, body)
//   conv_state      conv              -> (0, 0, created_at)   see "Conversation state"
//   inbox           (uid, inbox_seq)  -> (conv, seq, message_id)
//   dedup           (sender, client_msg_id) -> (conv, seq)
//   user_convs      (uid, conv)       -> ""     direct conversations only
//   device_cursors  (uid, device_id)  -> inbox_seq
//   read_cursors    (uid, conv)       -> seq
//   last_seen       uid               -> at_ms
//
// An inbox head is never stored: it is the last key of the user's range,
// one cursor step, so it cannot drift from the entries themselves.
//
// Conversation state. Likewise a conversation's last seq, last message id
// and last activity are read off its newest `messages` key (one cursor
// step), not stored: rewriting a conv_state record for every message cost
// one more dirty B-tree leaf per message, i.e. one more 4 KiB page copied
// and flushed per commit (docs/benchmarks.md). conv_state keeps only what
// a conversation has before its first message: its creation time. Schema
// version 1 did rewrite it per message; its records are still read (the
// newest message supersedes their last_* fields, which agree with it
// anyway), and opening such an environment marks it version 2, so a build
// that would trust the stale fields refuses it.
//
// The journal. commit() writes no LMDB transaction: it appends the batch
// (every message with its seq and inbox positions already assigned) as one
// record to the journal (journal.hpp) and adds it to the overlay
// (overlay.hpp), where reads find it. checkpoint() applies the overlay's
// batches to LMDB in one write transaction that also records the last
// applied lsn ("journal_lsn"), then trims them from the overlay. recover()
// at open applies the journal's records after journal_lsn: the same writes,
// so a replay after a crash stores exactly what a checkpoint would have.
// Schema version 3 marks an environment that may have a journal, so that
// a version-2 build, which would not replay it, refuses it.
//
// The commit path, in order (commit()): look up dedup keys, newest seqs
// and inbox heads in the overlay, then what it lacks in an LMDB snapshot
// taken after that (an entry only ever moves from the overlay into LMDB,
// never back, so this order cannot miss one); assign seqs; append and
// flush the record; add the batch to the overlay. commit_mu makes that a
// unit: a checkpoint takes it to rotate the journal, so that every record
// before the rotation is in the batches it applies.
//
// Records. Values are a private codec: a version byte, then fixed-width
// big-endian integers and varint-length-prefixed byte strings. A record that
// fails to decode is reported as kInternal, never guessed at.
//
// Errors inside a transaction. The Txn/Cursor helpers and the codec throw
// TxnFailure, and the transaction boundary (Impl::read / Impl::write) catches
// it, aborts the transaction and turns it into a Status. TxnFailure never
// leaves this file. This keeps each operation a straight line of reads and
// writes, and guarantees that any failure discards the whole transaction.
//
// Locking. mdb_env_set_mapsize (map growth) requires that no transaction
// is open in the process, while reads run concurrently from any thread
// (MDB_NOTLS) with the single writer. Every transaction therefore holds
// txn_mu shared for its lifetime; growth takes it exclusively. New
// transactions first pass gate_mu, which a pending growth holds, so a steady
// stream of overlapping reads cannot starve the growth (std::shared_mutex
// prefers readers on glibc). write_mu serialises the writers of this process
// before they touch txn_mu, so no writer ever waits for LMDB's own writer
// lock while holding txn_mu shared (which would stall a pending growth).
// overlay_mu is a leaf: it is taken inside read transactions (read_merged),
// and nothing is waited for while holding it. Lock order: checkpoint_mu,
// commit_mu, then the LMDB locks; overlay_mu last.
#include "chatcore/lmdb_store.hpp"

#include <fmt/core.h>
#include <lmdb.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <span>
#include <system_error>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "journal.hpp"
#include "overlay.hpp"
#include "writeback.hpp"

namespace chatcore {

namespace {

using lmdb_internal::DedupKey;
using lmdb_internal::DedupKeyHash;
using lmdb_internal::Journal;
using lmdb_internal::JournaledBatch;
using lmdb_internal::JournaledMessage;
using lmdb_internal::Overlay;

constexpr std::uint64_t kSchemaVersion = 3;
// Journal bytes applied per LMDB transaction by a checkpoint or a replay.
constexpr std::size_t kApplyChunkBytes = std::size_t{64} << 20;
// A checkpoint slice runs at least this long before it commits early for a
// waiting writer (so that a stream of writers cannot reduce a checkpoint to
// one flush per batch), and then waits at most kMaxYieldWait for the
// waiting writers to take the writer lock.
constexpr auto kMinSliceBeforeYield = std::chrono::milliseconds(2);
constexpr auto kMaxYieldWait = std::chrono::milliseconds(20);
// Index entries a checkpoint trims from the overlay per hold of its lock
// (see trim_applied): 0.1-0.2 ms of work, a bound on what it adds to an ack.
constexpr std::size_t kTrimSliceEntries = 2048;
// Messages a checkpoint applies in key order at a time (apply_batches_sorted):
// its chance to let a waiting writer in comes between two such groups, a
// few milliseconds apart.
constexpr std::size_t kApplyGroupMessages = 1024;
constexpr std::uint8_t kRecordVersion = 1;

// Key bounds (LMDB keys are at most 511 bytes); MemoryStore enforces the same.
constexpr std::size_t kMaxUserNameBytes = 64;
constexpr std::size_t kMaxTokenHashBytes = 256;
constexpr std::size_t kMaxDeviceIdBytes = 256;

// Doubling from 1 MiB, 40 growths reach far beyond any disk; the cap only
// turns a logic error into an error instead of an endless loop.
constexpr int kMaxRetries = 40;

// Not an LMDB or errno code: a record that does not decode.
constexpr int kCorruptRecord = std::numeric_limits<int>::min();

enum Db : unsigned {
  kMeta,
  kUsers,
  kUserNames,
  kPasswords,
  kTokens,
  kGroups,
  kMembers,
  kUserGroups,
  kContacts,
  kWatchers,
  kMessages,
  kConvState,
  kInbox,
  kDedup,
  kUserConvs,
  kDeviceCursors,
  kReadCursors,
  kLastSeen,
  kDbCount,
};

constexpr std::array<const char*, kDbCount> kDbNames = {
    "meta",    "users",       "user_names", "passwords",      "tokens",       "groups",
    "members", "user_groups", "contacts",   "watchers",       "messages",     "conv_state",
    "inbox",   "dedup",       "user_convs", "device_cursors", "read_cursors", "last_seen",
};

using DbTable = std::array<MDB_dbi, kDbCount>;

// A failure inside a transaction body; see the file comment.
struct TxnFailure {
  int rc;
  std::string what;  // the failing operation, e.g. "mdb_put(messages)"
};

[[noreturn]] void fail(int rc, std::string what) { throw TxnFailure{rc, std::move(what)}; }

Status to_status(int rc, std::string_view what, const std::string& path) {
  if (rc == kCorruptRecord) {
    return Status::internal(fmt::format("lmdb {}: {}: record does not decode", path, what));
  }
  std::string msg = fmt::format("lmdb {}: {}: {}", path, what, mdb_strerror(rc));
  switch (rc) {
    case MDB_MAP_FULL:
    case MDB_READERS_FULL:
    case MDB_MAP_RESIZED:
      return Status::unavailable(std::move(msg));
    default:
      // Positive codes are errno values from the OS (I/O, permissions,
      // space): the same call may work once the environment is fixed.
      // Negative codes are LMDB's own: corruption and misuse.
      return rc > 0 ? Status::unavailable(std::move(msg)) : Status::internal(std::move(msg));
  }
}

// ---- byte helpers -------------------------------------------------------------

void store_be64(unsigned char* p, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<unsigned char>(v & 0xff);
    v >>= 8;
  }
}

std::uint64_t load_be64(const void* data) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

std::string_view as_view(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

MDB_val as_val(std::string_view s) { return {s.size(), const_cast<char*>(s.data())}; }

// A key built in place: big-endian integers and raw bytes, no allocation.
class Key {
 public:
  Key& u64(std::uint64_t v) {
    reserve(8);
    store_be64(buf_.data() + n_, v);
    n_ += 8;
    return *this;
  }
  Key& bytes(std::string_view b) {
    reserve(b.size());
    std::memcpy(buf_.data() + n_, b.data(), b.size());
    n_ += b.size();
    return *this;
  }
  Key& bytes(const ClientMsgId& id) {
    return bytes({reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size()});
  }
  std::string_view view() const { return {reinterpret_cast<const char*>(buf_.data()), n_}; }

 private:
  void reserve(std::size_t more) {
    // Callers validate lengths first; this guards the buffer regardless.
    if (n_ + more > buf_.size()) fail(MDB_BAD_VALSIZE, "building a key");
  }
  std::array<unsigned char, 16 + kMaxTokenHashBytes> buf_{};
  std::size_t n_ = 0;
};

// ---- record codec -----------------------------------------------------------------

class Encoder {
 public:
  Encoder() { buf_.push_back(static_cast<char>(kRecordVersion)); }
  Encoder& u8(std::uint8_t v) {
    buf_.push_back(static_cast<char>(v));
    return *this;
  }
  Encoder& u64(std::uint64_t v) {
    unsigned char b[8];
    store_be64(b, v);
    buf_.append(reinterpret_cast<const char*>(b), 8);
    return *this;
  }
  Encoder& i64(std::int64_t v) { return u64(static_cast<std::uint64_t>(v)); }
  // 7 bits per byte, least significant first; the high bit means "more".
  Encoder& varint(std::uint64_t n) {
    do {
      auto b = static_cast<std::uint8_t>(n & 0x7f);
      n >>= 7;
      buf_.push_back(static_cast<char>(n != 0 ? b | 0x80 : b));
    } while (n != 0);
    return *this;
  }
  // A varint length, then the bytes.
  Encoder& bytes(std::string_view s) {
    varint(s.size());
    buf_.append(s);
    return *this;
  }
  void reserve(std::size_t n) { buf_.reserve(n); }
  std::size_t size() const { return buf_.size(); }
  Encoder& fixed(const ClientMsgId& id) {
    buf_.append(reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size());
    return *this;
  }
  std::string_view view() const { return buf_; }

 private:
  std::string buf_;
};

class Decoder {
 public:
  // `what` names the record kind in error messages.
  Decoder(std::string_view in, const char* what) : in_(in), what_(what) {
    if (u8() != kRecordVersion) corrupt();
  }
  Decoder(std::string_view in, Db db) : Decoder(in, kDbNames[db]) {}
  std::uint8_t u8() {
    need(1);
    return static_cast<std::uint8_t>(in_[pos_++]);
  }
  std::uint64_t u64() {
    need(8);
    std::uint64_t v = load_be64(in_.data() + pos_);
    pos_ += 8;
    return v;
  }
  std::int64_t i64() { return static_cast<std::int64_t>(u64()); }
  std::uint64_t varint() {
    std::uint64_t n = 0;
    for (int shift = 0;; shift += 7) {
      if (shift > 63) corrupt();
      std::uint8_t b = u8();
      n |= std::uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) break;
    }
    return n;
  }
  std::string bytes() {
    std::uint64_t n = varint();
    need(n);
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  void fixed(ClientMsgId& id) {
    need(id.bytes.size());
    std::memcpy(id.bytes.data(), in_.data() + pos_, id.bytes.size());
    pos_ += id.bytes.size();
  }
  // Every record is decoded whole; trailing bytes mean a wrong layout.
  void finish() const {
    if (pos_ != in_.size()) corrupt();
  }

 private:
  void need(std::uint64_t n) const {
    if (n > in_.size() - pos_) corrupt();
  }
  [[noreturn]] void corrupt() const { fail(kCorruptRecord, std::string("a record of ") + what_); }
  std::string_view in_;
  std::size_t pos_ = 0;
  const char* what_;
};

// ---- transactions and cursors -------------------------------------------------------

// Aborts the transaction unless it was released to mdb_txn_commit.
class TxnHandle {
 public:
  explicit TxnHandle(MDB_txn* txn) : txn_(txn) {}
  ~TxnHandle() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
  }
  TxnHandle(const TxnHandle&) = delete;
  TxnHandle& operator=(const TxnHandle&) = delete;
  MDB_txn* release() { return std::exchange(txn_, nullptr); }

 private:
  MDB_txn* txn_;
};

// An open transaction with table-level helpers. Values returned as
// string_view point into the map and are valid until the transaction ends.
class Txn {
 public:
  Txn(MDB_txn* txn, const DbTable& dbs) : txn_(txn), dbs_(dbs) {}

  MDB_txn* raw() const { return txn_; }
  MDB_dbi dbi(Db db) const { return dbs_[db]; }

  std::optional<std::string_view> get(Db db, const Key& key) const {
    MDB_val k = as_val(key.view());
    MDB_val v;
    int rc = mdb_get(txn_, dbs_[db], &k, &v);
    if (rc == MDB_NOTFOUND) return std::nullopt;
    if (rc != 0) fail(rc, std::string("mdb_get(") + kDbNames[db] + ")");
    return as_view(v);
  }
  bool exists(Db db, const Key& key) const { return get(db, key).has_value(); }

  void put(Db db, const Key& key, std::string_view value) {
    MDB_val k = as_val(key.view());
    MDB_val v = as_val(value);
    int rc = mdb_put(txn_, dbs_[db], &k, &v, 0);
    if (rc != 0) fail(rc, std::string("mdb_put(") + kDbNames[db] + ")");
  }

  // False if the key was absent.
  bool del(Db db, const Key& key) {
    MDB_val k = as_val(key.view());
    int rc = mdb_del(txn_, dbs_[db], &k, nullptr);
    if (rc == MDB_NOTFOUND) return false;
    if (rc != 0) fail(rc, std::string("mdb_del(") + kDbNames[db] + ")");
    return true;
  }

 private:
  MDB_txn* txn_;
  const DbTable& dbs_;
};

// A cursor over one table; closed with its scope, which always ends before
// the transaction does.
class Cursor {
 public:
  Cursor(const Txn& txn, Db db) : db_(db) {
    int rc = mdb_cursor_open(txn.raw(), txn.dbi(db), &cursor_);
    if (rc != 0) fail(rc, std::string("mdb_cursor_open(") + kDbNames[db] + ")");
  }
  ~Cursor() { mdb_cursor_close(cursor_); }
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;

  // The first entry with a key >= `key`.
  bool seek(const Key& key) {
    key_ = as_val(key.view());
    return step(MDB_SET_RANGE);
  }
  // The last entry with a key < `key`.
  bool seek_before(const Key& key) { return seek(key) ? prev() : last(); }
  bool next() { return step(MDB_NEXT); }
  bool prev() { return step(MDB_PREV); }
  bool last() { return step(MDB_LAST); }

  // Stores key -> value (write transactions), leaving the cursor there.
  void put(const Key& key, std::string_view value) {
    MDB_val k = as_val(key.view());
    MDB_val v = as_val(value);
    int rc = mdb_cursor_put(cursor_, &k, &v, 0);
    if (rc != 0) fail(rc, std::string("mdb_cursor_put(") + kDbNames[db_] + ")");
  }

  std::string_view key() const { return as_view(key_); }
  std::string_view value() const { return as_view(value_); }
  bool has_prefix(std::uint64_t partition) const {
    return key_.mv_size >= 8 && load_be64(key_.mv_data) == partition;
  }
  // The big-endian integer at byte `offset` of the key.
  std::uint64_t key_u64(std::size_t offset) const {
    if (key_.mv_size < offset + 8) fail(kCorruptRecord, std::string("a key of ") + kDbNames[db_]);
    return load_be64(static_cast<const char*>(key_.mv_data) + offset);
  }

 private:
  bool step(MDB_cursor_op op) {
    int rc = mdb_cursor_get(cursor_, &key_, &value_, op);
    if (rc == MDB_NOTFOUND) return false;
    if (rc != 0) fail(rc, std::string("mdb_cursor_get(") + kDbNames[db_] + ")");
    return true;
  }
  MDB_cursor* cursor_ = nullptr;
  MDB_val key_{};
  MDB_val value_{};
  Db db_;
};

// Positions `c` on the last entry of `partition` (the first 8 key bytes).
bool seek_last_in(Cursor& c, std::uint64_t partition) {
  bool found = partition == std::numeric_limits<std::uint64_t>::max()
                   ? c.last()
                   : c.seek_before(Key().u64(partition + 1));
  return found && c.has_prefix(partition);
}

// Calls fn(cursor) for every entry of `partition`, in key order.
template <typename Fn>
void scan_partition(const Txn& txn, Db db, std::uint64_t partition, Fn&& fn) {
  Cursor c(txn, db);
  for (bool ok = c.seek(Key().u64(partition)); ok && c.has_prefix(partition); ok = c.next()) {
    fn(c);
  }
}

// ---- validation (the same rules as MemoryStore) ---------------------------------------

Status check_user_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxUserNameBytes) {
    return Status::invalid_argument(
        fmt::format("user name must be 1..{} bytes", kMaxUserNameBytes));
  }
  return Status::ok();
}

Status check_token_hash(std::string_view hash) {
  if (hash.empty() || hash.size() > kMaxTokenHashBytes) {
    return Status::invalid_argument(
        fmt::format("token hash must be 1..{} bytes", kMaxTokenHashBytes));
  }
  return Status::ok();
}

Status check_device_id(std::string_view device) {
  if (device.size() > kMaxDeviceIdBytes) {
    return Status::invalid_argument(
        fmt::format("device id longer than {} bytes", kMaxDeviceIdBytes));
  }
  return Status::ok();
}

Status check_new_message(const NewMessage& m) {
  if (!ConversationId::from_raw(m.conversation.value)) {
    return Status::invalid_argument(
        fmt::format("malformed conversation id {}", m.conversation.value));
  }
  if (!m.sender.valid()) return Status::invalid_argument("message without a sender");
  if (m.recipients.empty()) return Status::invalid_argument("message without recipients");
  std::vector<UserId> sorted = m.recipients;
  std::sort(sorted.begin(), sorted.end());
  if (!sorted.front().valid()) return Status::invalid_argument("invalid recipient id 0");
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    return Status::invalid_argument("duplicate recipient");
  }
  return Status::ok();
}

std::string user_label(UserId id) { return fmt::format("user {}", id.value); }
std::string group_label(GroupId id) { return fmt::format("group {}", id.value); }

// ---- records -------------------------------------------------------------------------

Key meta_key(std::string_view name) { return Key().bytes(name); }

std::uint64_t read_counter(const Txn& txn, std::string_view name, std::uint64_t absent) {
  auto v = txn.get(kMeta, meta_key(name));
  if (!v) return absent;
  Decoder d(*v, kMeta);
  std::uint64_t n = d.u64();
  d.finish();
  return n;
}

void write_counter(Txn& txn, std::string_view name, std::uint64_t value) {
  txn.put(kMeta, meta_key(name), Encoder().u64(value).view());
}

std::string encode_user(const User& u) {
  return std::string(Encoder()
                         .bytes(u.name)
                         .bytes(u.display_name)
                         .bytes(u.email)
                         .bytes(u.phone)
                         .bytes(u.about)
                         .bytes(u.image_url)
                         .i64(u.created_at_ms)
                         .view());
}

std::optional<User> load_user(const Txn& txn, UserId id) {
  auto v = txn.get(kUsers, Key().u64(id.value));
  if (!v) return std::nullopt;
  Decoder d(*v, kUsers);
  User u;
  u.id = id;
  u.name = d.bytes();
  u.display_name = d.bytes();
  u.email = d.bytes();
  u.phone = d.bytes();
  u.about = d.bytes();
  u.image_url = d.bytes();
  u.created_at_ms = d.i64();
  d.finish();
  return u;
}

bool user_exists(const Txn& txn, UserId id) {
  return id.valid() && txn.exists(kUsers, Key().u64(id.value));
}

std::optional<Group> load_group(const Txn& txn, GroupId id) {
  auto v = txn.get(kGroups, Key().u64(id.value));
  if (!v) return std::nullopt;
  Decoder d(*v, kGroups);
  Group g;
  g.id = id;
  g.name = d.bytes();
  g.owner = UserId(d.u64());
  g.created_at_ms = d.i64();
  d.finish();
  return g;
}

std::optional<MemberRole> load_role(const Txn& txn, GroupId group, UserId user) {
  auto v = txn.get(kMembers, Key().u64(group.value).u64(user.value));
  if (!v) return std::nullopt;
  Decoder d(*v, kMembers);
  std::uint8_t role = d.u8();
  d.finish();
  if (role > static_cast<std::uint8_t>(MemberRole::kOwner)) fail(kCorruptRecord, "a member role");
  return static_cast<MemberRole>(role);
}

void put_member(Txn& txn, GroupId group, UserId user, MemberRole role) {
  txn.put(kMembers, Key().u64(group.value).u64(user.value),
          Encoder().u8(static_cast<std::uint8_t>(role)).view());
  txn.put(kUserGroups, Key().u64(user.value).u64(group.value), {});
}

std::string encode_message(const Message& m) {
  return std::string(Encoder()
                         .u64(m.id.value)
                         .u64(m.sender.value)
                         .fixed(m.client_msg_id)
                         .i64(m.sent_at_ms)
                         .bytes(m.body)
                         .view());
}

std::shared_ptr<const Message> decode_message(ConversationId conv, std::uint64_t seq,
                                              std::string_view value) {
  Decoder d(value, kMessages);
  auto m = std::make_shared<Message>();
  m->conversation = conv;
  m->seq = seq;
  m->id = MessageId(d.u64());
  m->sender = UserId(d.u64());
  d.fixed(m->client_msg_id);
  m->sent_at_ms = d.i64();
  m->body = d.bytes();
  d.finish();
  return m;
}

// The stored message at (conv, seq); its absence means a dangling reference.
std::shared_ptr<const Message> load_message(const Txn& txn, ConversationId conv,
                                            std::uint64_t seq) {
  auto v = txn.get(kMessages, Key().u64(conv.value).u64(seq));
  if (!v) {
    fail(kCorruptRecord, fmt::format("a reference to missing message ({}, {})", conv.value, seq));
  }
  return decode_message(conv, seq, *v);
}

struct ConvStateRecord {
  std::uint64_t last_seq = 0;
  std::uint64_t last_message_id = 0;
  std::int64_t last_activity_ms = 0;
};

// The seq of the conversation's newest message, 0 if it has none.
std::uint64_t last_seq_in(const Txn& txn, ConversationId conv) {
  Cursor c(txn, kMessages);
  return seek_last_in(c, conv.value) ? c.key_u64(8) : 0;
}

std::optional<ConvStateRecord> load_conv_state(const Txn& txn, ConversationId conv) {
  auto v = txn.get(kConvState, Key().u64(conv.value));
  if (!v) return std::nullopt;
  Decoder d(*v, kConvState);
  ConvStateRecord r;
  r.last_seq = d.u64();
  r.last_message_id = d.u64();
  r.last_activity_ms = d.i64();
  d.finish();
  return r;
}

void put_conv_state(Txn& txn, ConversationId conv, const ConvStateRecord& r) {
  txn.put(kConvState, Key().u64(conv.value),
          Encoder().u64(r.last_seq).u64(r.last_message_id).i64(r.last_activity_ms).view());
}

// Records a direct conversation for both participants, and its state (with
// creation time `now_ms`) if it has none yet. Reads before writing so that
// the common case (already known) dirties no page.
void touch_direct(Txn& txn, ConversationId conv, std::int64_t now_ms) {
  for (UserId u : {conv.low_user(), conv.high_user()}) {
    Key k = Key().u64(u.value).u64(conv.value);
    if (!txn.exists(kUserConvs, k)) txn.put(kUserConvs, k, {});
  }
  if (!txn.exists(kConvState, Key().u64(conv.value))) {
    put_conv_state(txn, conv, ConvStateRecord{0, 0, now_ms});
  }
}

std::uint64_t inbox_head_in(const Txn& txn, UserId user) {
  Cursor c(txn, kInbox);
  return seek_last_in(c, user.value) ? c.key_u64(8) : 0;
}

// ---- journal records (see "The journal" above) ------------------------------------------

// A batch as one journal record: the record version byte, a varint count,
// then per message
//   u64 conv, u64 seq, u64 id, u64 sender, 16-byte client id, i64 sent_at,
//   bytes body, u8 first_of_direct, varint n, n x (u64 user, u64 inbox_seq).
// Everything a checkpoint writes is in it, seqs included, so replaying it
// writes exactly what the first application would have.
std::string encode_batch(const JournaledBatch& batch) {
  std::size_t estimate = 8;
  for (const auto& jm : batch.messages)
    estimate += 80 + jm.message->body.size() + 16 * jm.inbox.size();
  Encoder e;
  e.reserve(estimate);
  e.varint(batch.messages.size());
  for (const auto& jm : batch.messages) {
    const Message& m = *jm.message;
    e.u64(m.conversation.value).u64(m.seq).u64(m.id.value).u64(m.sender.value);
    e.fixed(m.client_msg_id).i64(m.sent_at_ms).bytes(m.body);
    e.u8(jm.first_of_direct ? 1 : 0).varint(jm.inbox.size());
    for (const auto& [user, inbox_seq] : jm.inbox) e.u64(user.value).u64(inbox_seq);
  }
  return std::string(e.view());
}

// Throws TxnFailure(kCorruptRecord) for a record that does not decode.
JournaledBatch decode_batch(std::string_view record) {
  Decoder d(record, "the journal");
  JournaledBatch batch;
  std::uint64_t count = d.varint();
  for (std::uint64_t i = 0; i < count; ++i) {
    auto m = std::make_shared<Message>();
    auto conv = ConversationId::from_raw(d.u64());
    if (!conv) fail(kCorruptRecord, "a conversation id in the journal");
    m->conversation = *conv;
    m->seq = d.u64();
    m->id = MessageId(d.u64());
    m->sender = UserId(d.u64());
    d.fixed(m->client_msg_id);
    m->sent_at_ms = d.i64();
    m->body = d.bytes();
    JournaledMessage jm;
    jm.first_of_direct = d.u8() != 0;
    std::uint64_t n = d.varint();
    for (std::uint64_t r = 0; r < n; ++r) {
      UserId user(d.u64());
      std::uint64_t inbox_seq = d.u64();
      jm.inbox.emplace_back(user, inbox_seq);
    }
    jm.message = std::move(m);
    batch.messages.push_back(std::move(jm));
  }
  d.finish();
  return batch;
}

// Writes journaled batches into the message tables (what commit() did in
// its own transaction before the journal existed), each table's entries in
// key order through one cursor. Why: put() searches each key from the root,
// and consecutive puts of a checkpoint land in unrelated places (the
// conversation, two inboxes, the dedup key). In key order, most land on the
// page the cursor is already on, which LMDB checks first (mdb_cursor_set)
// and whose lookups are hot in cache. The order cannot change what is
// stored: every key is distinct.
void apply_batches_sorted(Txn& txn, std::span<const JournaledBatch* const> batches) {
  struct InboxEntry {
    std::uint64_t user, inbox_seq;
    const Message* message;
  };
  std::vector<const Message*> messages;
  std::vector<InboxEntry> inbox;
  for (const JournaledBatch* b : batches) {
    for (const JournaledMessage& jm : b->messages) {
      const Message* m = jm.message.get();
      messages.push_back(m);
      for (const auto& [user, inbox_seq] : jm.inbox) inbox.push_back({user.value, inbox_seq, m});
      if (jm.first_of_direct) touch_direct(txn, m->conversation, m->sent_at_ms);
    }
  }
  std::sort(messages.begin(), messages.end(), [](const Message* a, const Message* b) {
    return std::tie(a->conversation.value, a->seq) < std::tie(b->conversation.value, b->seq);
  });
  {
    Cursor c(txn, kMessages);
    for (const Message* m : messages) {
      c.put(Key().u64(m->conversation.value).u64(m->seq), encode_message(*m));
    }
  }
  std::sort(inbox.begin(), inbox.end(), [](const InboxEntry& a, const InboxEntry& b) {
    return std::tie(a.user, a.inbox_seq) < std::tie(b.user, b.inbox_seq);
  });
  {
    Cursor c(txn, kInbox);
    for (const InboxEntry& e : inbox) {
      const Message& m = *e.message;
      c.put(Key().u64(e.user).u64(e.inbox_seq),
            Encoder().u64(m.conversation.value).u64(m.seq).u64(m.id.value).view());
    }
  }
  // The dedup table's key order: sender, then the client id's bytes.
  std::sort(messages.begin(), messages.end(), [](const Message* a, const Message* b) {
    if (a->sender.value != b->sender.value) return a->sender.value < b->sender.value;
    return a->client_msg_id.bytes < b->client_msg_id.bytes;
  });
  {
    Cursor c(txn, kDedup);
    for (const Message* m : messages) {
      c.put(Key().u64(m->sender.value).bytes(m->client_msg_id),
            Encoder().u64(m->conversation.value).u64(m->seq).view());
    }
  }
}

std::uint64_t decode_u64_record(std::string_view v, Db db) {
  Decoder d(v, db);
  std::uint64_t n = d.u64();
  d.finish();
  return n;
}

#ifdef __linux__
// Makes the calling thread yield the CPU readily: `more` added to its nice
// value (on Linux a nice value belongs to the thread; raising it needs no
// privilege) and, where the scheduler takes one (EEVDF, Linux 6.12+), a
// 0.1 ms time slice. Why the slice: at +10 the checkpoint thread still ran
// out a full slice whenever it got the CPU, 1.5-4 ms with a 250 Hz tick,
// while the threads that ack messages waited. A short slice also gives it
// an earlier virtual deadline, so on waking it may now preempt a message
// thread, for at most 0.1 ms; measured, the two together took the 50 %-load
// ack p99 down by another 0.7-1 ms (docs/benchmarks.md). The thread keeps
// its scheduling policy (SCHED_FLAG_KEEP_POLICY, Linux 5.3+). Best effort:
// if either fails, checkpoints just run at a higher priority.
void run_in_background(int more) {
  const auto tid = static_cast<pid_t>(::gettid());
  errno = 0;
  const int now = ::getpriority(PRIO_PROCESS, static_cast<id_t>(tid));
  if (errno != 0) return;
  const int nice = std::min(now + std::min(more, 39), 19);
  // struct sched_attr (uapi linux/sched/types.h), which glibc 2.36 lacks.
  struct {
    std::uint32_t size, policy;
    std::uint64_t flags;
    std::int32_t nice;
    std::uint32_t priority;
    std::uint64_t runtime, deadline, period;
  } attr{};
  attr.size = sizeof attr;
  attr.flags = 0x08;  // SCHED_FLAG_KEEP_POLICY: a batch or idle daemon stays so
  attr.nice = nice;
  attr.runtime = 100'000;  // ns: the slice
#ifdef SYS_sched_setattr
  if (::syscall(SYS_sched_setattr, tid, &attr, 0) == 0) return;
#endif
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(tid), nice);  // older kernels
}
#endif

// LMDB wants the map size to be a multiple of the OS page size.
std::size_t round_up_to_page(std::size_t bytes) {
  long page = ::sysconf(_SC_PAGESIZE);
  std::size_t p = page > 0 ? static_cast<std::size_t>(page) : 4096;
  return (bytes + p - 1) / p * p;
}

}  // namespace

// ---- the environment -------------------------------------------------------------

struct LmdbStore::Impl {
  explicit Impl(LmdbOptions opts) : options(std::move(opts)) {}
  ~Impl() {
    if (checkpointer.joinable()) {
      {
        std::lock_guard lock(overlay_mu);
        stopping = true;
      }
      checkpoint_cv.notify_all();
      room_cv.notify_all();
      checkpointer.join();
    }
    // A clean close leaves the journal empty, so the next open replays
    // nothing. If this fails, the journal still holds every batch and the
    // next open applies it.
    if (started) (void)checkpoint();
    journal.reset();  // releases the journal's lock
    if (env == nullptr) return;
    if (opened && options.durability == Durability::kNoSync) mdb_env_sync(env, 1);
    if (paced_fd >= 0) lmdb_internal::stop_pacing(paced_fd);
    mdb_env_close(env);  // also required after a failed mdb_env_open
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  Status failure(int rc, std::string_view what) const { return to_status(rc, what, options.path); }

  // Holds txn_mu shared for a transaction's lifetime (see the file comment).
  std::shared_lock<std::shared_mutex> lock_for_txn() {
    std::lock_guard gate(gate_mu);
    return std::shared_lock(txn_mu);
  }

  // Runs body(Txn&) -> Status in a read-only transaction.
  template <typename Body>
  Status read(Body&& body) {
    for (int attempt = 0;; ++attempt) {
      int rc = 0;
      std::string what = "mdb_txn_begin(read)";
      {
        auto lock = lock_for_txn();
        MDB_txn* raw = nullptr;
        rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &raw);
        if (rc == 0) {
          TxnHandle handle(raw);
          try {
            Txn txn(raw, dbs);
            return body(txn);
          } catch (const TxnFailure& f) {
            rc = f.rc;
            what = f.what;
          } catch (const std::exception& e) {
            return Status::internal(fmt::format("lmdb {}: {}", options.path, e.what()));
          }
        }
      }
      if (rc == MDB_MAP_RESIZED && attempt < kMaxRetries) {
        if (Status s = adopt_map_size(); !s) return s;
        continue;
      }
      return failure(rc, what);
    }
  }

  // Runs body(Txn&) -> Status in a write transaction and commits it if the
  // body returns OK; any other Status aborts it (nothing is stored). On
  // MDB_MAP_FULL the map doubles and the body runs again from scratch, so a
  // body must (re)initialise everything it outputs.
  template <typename Body>
  Status write(Body&& body) {
    return write_as(Writer::kDirect, std::forward<Body>(body));
  }

  enum class Writer { kDirect, kCheckpoint };

  template <typename Body>
  Status write_as(Writer who, Body&& body) {
    if (who == Writer::kDirect) {
      // A checkpoint asking for the lock gets it next: new writers wait
      // here meanwhile (see let_writers_in).
      std::unique_lock gate(handoff_mu);
      handoff_cv.wait(gate, [this] { return !checkpoint_resuming; });
    } else {
      std::lock_guard gate(handoff_mu);
      checkpoint_resuming = true;
    }
    // Counted while waiting, so that a running checkpoint sees us and lets
    // us in at its next batch boundary (checkpoint(): "Waiting writers").
    writers_waiting.fetch_add(1, std::memory_order_relaxed);
    std::unique_lock writer(write_mu);
    writers_waiting.fetch_sub(1, std::memory_order_relaxed);
    if (who == Writer::kCheckpoint) reopen_handoff_gate();
    for (int attempt = 0;; ++attempt) {
      int rc = 0;
      std::string what = "mdb_txn_begin(write)";
      {
        auto lock = lock_for_txn();
        MDB_txn* raw = nullptr;
        rc = mdb_txn_begin(env, nullptr, 0, &raw);
        if (rc == 0) {
          TxnHandle handle(raw);
          try {
            Txn txn(raw, dbs);
            Status s = body(txn);
            if (!s) return s;
            // mdb_txn_commit frees the transaction even when it fails.
            rc = mdb_txn_commit(handle.release());
            what = "mdb_txn_commit";
            if (rc == 0) return Status::ok();
          } catch (const TxnFailure& f) {
            rc = f.rc;
            what = f.what;
          } catch (const std::exception& e) {
            return Status::internal(fmt::format("lmdb {}: {}", options.path, e.what()));
          }
        }
      }
      if (rc == MDB_MAP_FULL && attempt < kMaxRetries) {
        if (Status s = grow_map(); !s) return s;
        continue;
      }
      if (rc == MDB_MAP_RESIZED && attempt < kMaxRetries) {
        if (Status s = adopt_map_size(); !s) return s;
        continue;
      }
      return failure(rc, what);
    }
  }

  // Doubles the map. Waits until no transaction is open in the process.
  Status grow_map() {
    std::lock_guard gate(gate_mu);
    std::unique_lock exclusive(txn_mu);
    std::size_t current = map_bytes.load();
    if (current > std::numeric_limits<std::size_t>::max() / 2) {
      return Status::unavailable(
          fmt::format("lmdb {}: map cannot grow past {} bytes", options.path, current));
    }
    std::size_t next = current * 2;
    int rc = mdb_env_set_mapsize(env, next);
    if (rc != 0) return failure(rc, fmt::format("mdb_env_set_mapsize({})", next));
    map_bytes.store(next);
    return Status::ok();
  }

  // Another process grew the map: adopt its size (mdb_env_set_mapsize(0)).
  Status adopt_map_size() {
    std::lock_guard gate(gate_mu);
    std::unique_lock exclusive(txn_mu);
    int rc = mdb_env_set_mapsize(env, 0);
    if (rc != 0) return failure(rc, "mdb_env_set_mapsize(0)");
    MDB_envinfo info;
    mdb_env_info(env, &info);
    map_bytes.store(info.me_mapsize);
    return Status::ok();
  }

  // ---- the journal and its checkpoints --------------------------------------------

  // At open: applies what the journal holds beyond the last checkpoint
  // (the batches a crash left unapplied), then starts a fresh segment.
  Status recover() {
    std::uint64_t applied = 0;
    Status s = read([&](Txn& txn) {
      applied = read_counter(txn, "journal_lsn", 0);
      return Status::ok();
    });
    if (!s) return s;
    std::vector<JournaledBatch> pending;
    std::size_t pending_bytes = 0;
    // Applied in transactions of up to ~64 MB of records, so that a long
    // journal does not need one enormous transaction.
    auto apply = [&]() -> Status {
      if (pending.empty()) return Status::ok();
      Status w = write([&](Txn& txn) {
        std::vector<const JournaledBatch*> all;
        for (const auto& b : pending) all.push_back(&b);
        apply_batches_sorted(txn, all);
        write_counter(txn, "journal_lsn", pending.back().lsn);
        return Status::ok();
      });
      if (!w) return w;
      applied_lsn = pending.back().lsn;
      pending.clear();
      pending_bytes = 0;
      return Status::ok();
    };
    applied_lsn = applied;
    auto last = journal->replay(applied, [&](std::uint64_t lsn, std::string_view record) {
      try {
        JournaledBatch b = decode_batch(record);
        b.lsn = lsn;
        pending.push_back(std::move(b));
      } catch (const TxnFailure& f) {
        return Status::internal(
            fmt::format("journal {}: record {} does not decode", journal->dir(), lsn));
      }
      pending_bytes += record.size();
      return pending_bytes >= kApplyChunkBytes ? apply() : Status::ok();
    });
    if (!last) return last.status();
    if (Status a = apply(); !a) return a;
    // The next step deletes the segments: whatever LMDB holds of them must
    // be on disk first, whatever the durability mode (and whatever mode
    // the store ran in before this open).
    {
      auto lock = lock_for_txn();
      if (int rc = mdb_env_sync(env, 1); rc != 0) return failure(rc, "mdb_env_sync");
    }
    if (Status st = journal->start(*last); !st) return st;
    started = true;
    return Status::ok();
  }

  // Runs body(txn) in a read transaction after snap(overlay) has copied
  // what the overlay holds for the partitions the read names, the two
  // consistent with each other (overlay.hpp: "Consistency").
  template <typename Snap, typename Body>
  Status read_merged(Snap&& snap, Body&& body) {
    for (;;) {
      bool stale = false;
      Status s = read([&](Txn& txn) {
        {
          std::lock_guard lock(overlay_mu);
          if (overlay.trimmed_txnid() > mdb_txn_id(txn.raw())) {
            stale = true;  // a checkpoint committed and trimmed since our snapshot
            return Status::ok();
          }
          snap(static_cast<const Overlay&>(overlay));
        }
        return body(txn);
      });
      if (!stale) return s;
    }
  }

  // Trims batches[begin, end), just applied by LMDB transaction `txnid`,
  // from the overlay. In slices of about kTrimSliceEntries index entries,
  // taking overlay_mu for each: a commit takes that lock to publish its
  // batch, so its acks wait for whatever slice is being trimmed. One trim of
  // a second's traffic at 27,500 messages/s held it for milliseconds: slicing
  // took that load's ack p99 from ~16 to ~11 ms in ad-hoc runs. A slice
  // ends at a batch boundary, so one large group batch is one slice. Trimming a prefix
  // at a time is safe: every trimmed entry is in LMDB as of `txnid`, and
  // trimmed_txnid sends older snapshots back to retry (overlay.hpp).
  void trim_applied(const std::vector<std::shared_ptr<const JournaledBatch>>& batches,
                    std::size_t begin, std::size_t end, std::size_t txnid) {
    while (begin < end) {
      std::size_t slice_end = begin;
      std::size_t entries = 0;
      while (slice_end < end && (slice_end == begin || entries < kTrimSliceEntries)) {
        for (const JournaledMessage& jm : batches[slice_end]->messages) {
          entries += 2 + jm.inbox.size();  // conversation, dedup key, inboxes
        }
        ++slice_end;
      }
      std::lock_guard lock(overlay_mu);
      overlay.trim(slice_end - begin, txnid);
      applied_lsn = batches[slice_end - 1]->lsn;
      begin = slice_end;
    }
  }

  // Applies every batch the overlay holds to LMDB, then trims them and
  // removes the journal segments they were in. One at a time (the thread,
  // sync() and close may all ask).
  Status checkpoint() {
    std::lock_guard one(checkpoint_mu);
    // Whatever way this returns, writers are not kept out after it.
    struct GateGuard {
      Impl& impl;
      ~GateGuard() { impl.reopen_handoff_gate(); }
    } gate_guard{*this};
    const auto began = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(overlay_mu);
      if (overlay.batches().empty()) return Status::ok();
    }
    // A failure here is not final: rotate() then creates the segment itself.
    (void)journal->prepare_segment();
    std::vector<std::shared_ptr<const JournaledBatch>> batches;
    {
      // Under commit_mu no commit is between its journal append and its
      // overlay add, so every record in the journal so far is in `batches`,
      // and after the rotation every one of them is in an older segment.
      std::lock_guard commit_lock(commit_mu);
      {
        std::lock_guard lock(overlay_mu);
        batches.assign(overlay.batches().begin(), overlay.batches().end());
      }
      if (Status s = journal->rotate(); !s) return s;
    }
    // In transactions of up to ~64 MB of journal each, so that a backlog
    // never needs one enormous transaction; each records how far it got.
    //
    // Waiting writers. Everything else that writes LMDB directly (a login's
    // token, a profile, group changes, device and read cursors) needs the
    // writer lock this transaction holds, and some of it runs on the
    // network or storage thread: made to wait for a whole checkpoint (a
    // quarter of a second at 27,500 messages/s), it froze every session.
    // So once a slice has run kMinSliceBeforeYield, the transaction commits
    // at the next batch boundary when a writer is waiting, and the
    // checkpoint goes on in a new one after the waiting writers got in. The
    // writer then waits for at most that commit's flush. Each slice records
    // its own journal_lsn, so an early commit is as safe as a full one.
    Status s;
    std::size_t done = 0;
    while (s && done < batches.size()) {
      std::size_t end = done;
      std::size_t bytes = 0;
      while (end < batches.size() && (end == done || bytes < kApplyChunkBytes)) {
        bytes += batches[end++]->bytes;
      }
      std::size_t txnid = 0;
      std::size_t applied = done;
      bool yielding = false;
      s = write_as(Writer::kCheckpoint, [&](Txn& txn) {
        // write() may run this again from scratch (map growth): reset.
        applied = done;
        yielding = false;
        const auto slice_began = std::chrono::steady_clock::now();
        std::vector<const JournaledBatch*> group;
        while (applied < end) {
          group.clear();
          std::size_t messages = 0;
          while (applied < end && (group.empty() || messages < kApplyGroupMessages)) {
            messages += batches[applied]->messages.size();
            group.push_back(batches[applied++].get());
          }
          apply_batches_sorted(txn, group);
          if (applied < end && writers_waiting.load(std::memory_order_relaxed) > 0 &&
              std::chrono::steady_clock::now() - slice_began >= kMinSliceBeforeYield) {
            yielding = true;
            break;
          }
        }
        // In the same transaction as the data: a crash leaves both or neither.
        write_counter(txn, "journal_lsn", batches[applied - 1]->lsn);
        txnid = mdb_txn_id(txn.raw());
        return Status::ok();
      });
      if (!s) break;
      trim_applied(batches, done, applied, txnid);
      done = applied;
      room_cv.notify_all();  // commits waiting for room: some was just made
      if (yielding) {
        checkpoint_yields.fetch_add(1, std::memory_order_relaxed);
        let_writers_in();
      }
    }
    room_cv.notify_all();
    if (s && options.durability == Durability::kNoSync) {
      // The segments go next; LMDB's copy must be on disk first, or an OS
      // crash could take both (kNoSync may lose the newest commits, but
      // must not leave a store that cannot open).
      auto lock = lock_for_txn();
      if (int rc = mdb_env_sync(env, 1); rc != 0) s = failure(rc, "mdb_env_sync");
    }
    if (s) journal->remove_old_segments();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    std::lock_guard lock(overlay_mu);
    checkpoint_seconds += seconds;
    if (!s) {
      ++checkpoint_failures;
      return s;
    }
    ++checkpoints;
    last_checkpoint_seconds = seconds;
    return s;
  }

  // After a checkpoint slice committed early for them: lets the writers
  // that were waiting take the writer lock, then has the checkpoint take it
  // back before anyone who came later. Without that hand-off, a std::mutex
  // (not fair) goes to whichever thread asks first, and a thread with a
  // queue of writes re-locks within microseconds while the checkpoint wakes
  // up: a steady stream of writes starved checkpoints (a review measured a
  // 20 ms checkpoint taking 1.3-5.7 s). New writers wait at the gate until
  // the checkpoint holds the lock again (write_as, which closes the gate
  // for every checkpoint transaction, the first one too), so the writers
  // it waits for here are exactly those already past the gate. The wait is bounded:
  // a writer stuck in a long transaction cannot hold up the checkpoint.
  void let_writers_in() {
    {
      std::lock_guard gate(handoff_mu);
      checkpoint_resuming = true;
    }
    const auto give_up = std::chrono::steady_clock::now() + kMaxYieldWait;
    while (writers_waiting.load(std::memory_order_relaxed) > 0 &&
           std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  void reopen_handoff_gate() {
    {
      std::lock_guard gate(handoff_mu);
      if (!checkpoint_resuming) return;
      checkpoint_resuming = false;
    }
    handoff_cv.notify_all();
  }

  // The checkpoint thread: applies the journal once options.checkpoint_bytes
  // of it are unapplied, or its oldest batch is checkpoint_interval_ms old.
  void checkpoint_loop() {
    using Clock = std::chrono::steady_clock;
    const auto interval = std::chrono::milliseconds(options.checkpoint_interval_ms);
    std::unique_lock lock(overlay_mu);
    while (!stopping) {
      if (overlay.batches().empty()) {
        checkpoint_cv.wait(lock);
        continue;
      }
      const bool due = checkpoint_requested || overlay.bytes() >= options.checkpoint_bytes ||
                       (interval.count() > 0 &&
                        Clock::now() >= overlay.batches().front()->committed_at + interval);
      if (!due) {
        if (interval.count() > 0) {
          checkpoint_cv.wait_until(lock, overlay.batches().front()->committed_at + interval);
        } else {
          checkpoint_cv.wait(lock);
        }
        continue;
      }
      checkpoint_requested = false;
      lock.unlock();
      Status s = checkpoint();
      lock.lock();
      if (!s) {
        // Nothing is lost (the journal and the overlay keep every batch);
        // try again shortly. commit() reports it if the backlog fills up.
        last_checkpoint_error = s;
        room_cv.notify_all();  // commits waiting for room: report it now
        checkpoint_cv.wait_for(lock, std::chrono::seconds(1), [this] { return stopping; });
      } else {
        last_checkpoint_error = Status::ok();
      }
    }
  }

  // Back-pressure, before a commit takes commit_mu (a checkpoint needs it
  // to make room): waits while more than max_unapplied_bytes are unapplied.
  Status wait_for_room() {
    std::unique_lock lock(overlay_mu);
    if (overlay.bytes() <= options.max_unapplied_bytes) return Status::ok();
    checkpoint_requested = true;
    checkpoint_cv.notify_all();
    // Waiting helps only while checkpoints work; when the last one failed,
    // say so at once (the storage thread must not stall 30 s per batch).
    bool room = last_checkpoint_error && room_cv.wait_for(lock, std::chrono::seconds(30), [this] {
      return stopping || !last_checkpoint_error || overlay.bytes() <= options.max_unapplied_bytes;
    });
    room = room && overlay.bytes() <= options.max_unapplied_bytes;
    if (room && !stopping) return Status::ok();
    return Status::unavailable(
        fmt::format("lmdb {}: {} bytes of the journal are waiting for a checkpoint (limit {}){}{}",
                    options.path, overlay.bytes(), options.max_unapplied_bytes,
                    last_checkpoint_error ? "" : "; the last checkpoint failed: ",
                    last_checkpoint_error ? "" : last_checkpoint_error.message()));
  }

  LmdbOptions options;
  MDB_env* env = nullptr;
  bool opened = false;  // mdb_env_open succeeded
  int paced_fd = -1;    // data.mdb's descriptor, registered with the pacer
  DbTable dbs{};
  std::mutex write_mu;                  // one writer at a time
  std::atomic<int> writers_waiting{0};  // write() calls waiting for write_mu
  std::mutex handoff_mu;                // guards checkpoint_resuming
  std::condition_variable handoff_cv;   // wakes writers held at the gate
  bool checkpoint_resuming = false;     // a checkpoint is owed write_mu next
  std::mutex gate_mu;                   // taken by a map growth to hold back new transactions
  std::shared_mutex txn_mu;             // shared: a transaction is open; exclusive: resizing
  std::atomic<std::size_t> map_bytes{0};

  std::unique_ptr<Journal> journal;
  bool started = false;  // recover() finished: the journal takes records
  // One commit() at a time, from its first lookup to its overlay add;
  // a checkpoint takes it briefly to rotate the journal.
  std::mutex commit_mu;
  std::mutex checkpoint_mu;  // one checkpoint at a time
  std::mutex overlay_mu;     // guards the fields below
  Overlay overlay;
  std::condition_variable checkpoint_cv;  // wakes the checkpoint thread
  std::condition_variable room_cv;        // wakes commits waiting for room
  bool stopping = false;
  bool checkpoint_requested = false;
  Status last_checkpoint_error;
  std::uint64_t applied_lsn = 0;
  std::uint64_t checkpoints = 0;
  std::uint64_t checkpoint_failures = 0;
  std::atomic<std::uint64_t> checkpoint_yields{0};  // slices committed early for a writer
  double checkpoint_seconds = 0;
  double last_checkpoint_seconds = 0;
  std::thread checkpointer;
};

Result<std::unique_ptr<LmdbStore>> LmdbStore::open(const LmdbOptions& options) {
  if (options.path.empty()) return Status::invalid_argument("LmdbOptions::path is empty");
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) {
    return Status::unavailable(
        fmt::format("lmdb: cannot create directory {}: {}", options.path, ec.message()));
  }
  auto impl = std::make_unique<Impl>(options);
  // The journal first: its lock keeps a second process from opening the
  // store before this one touches anything.
  auto journal = Journal::open((std::filesystem::path(options.path) / "journal").string(),
                               options.durability == Durability::kSync);
  if (!journal) return journal.status();
  impl->journal = std::move(*journal);
  int rc = mdb_env_create(&impl->env);
  if (rc != 0) {
    impl->env = nullptr;
    return impl->failure(rc, "mdb_env_create");
  }
  rc = mdb_env_set_maxdbs(impl->env, kDbCount);
  if (rc != 0) return impl->failure(rc, "mdb_env_set_maxdbs");
  rc = mdb_env_set_maxreaders(impl->env, options.max_readers);
  if (rc != 0) return impl->failure(rc, "mdb_env_set_maxreaders");
  // MDB_NOTLS: read transactions are not bound to the thread that began them
  // and reader slots are per transaction, so any thread may read.
  unsigned flags = MDB_NOTLS;
  if (options.durability == Durability::kNoSync) flags |= MDB_NOSYNC;
  rc = mdb_env_open(impl->env, options.path.c_str(), flags, 0664);
  if (rc != 0) return impl->failure(rc, "mdb_env_open");
  impl->opened = true;
  // Every flush of data.mdb (a checkpoint's commit above all) writes its
  // pages back in small waves, so that journal flushes do not queue behind
  // it (writeback.hpp).
  // Only in kSync: in kNoSync LMDB flushes only at sync() and checkpoints,
  // and the journal does not flush at all, so there is nothing to pace.
  if (mdb_filehandle_t fd; lmdb_internal::pacing_linked() &&
                           options.durability == Durability::kSync &&
                           mdb_env_get_fd(impl->env, &fd) == 0) {
    lmdb_internal::pace(fd);
    impl->paced_fd = fd;
  }

  // The map size is set after opening, so an environment that grew in an
  // earlier run keeps its recorded size; a smaller one is raised to the
  // requested initial size.
  MDB_envinfo info;
  mdb_env_info(impl->env, &info);
  std::size_t map = info.me_mapsize;
  std::size_t wanted = round_up_to_page(options.initial_map_bytes);
  if (map < wanted) {
    rc = mdb_env_set_mapsize(impl->env, wanted);
    if (rc != 0) return impl->failure(rc, "mdb_env_set_mapsize");
    map = wanted;
  }
  impl->map_bytes.store(map);

  Impl& self = *impl;
  Status s = impl->write([&self](Txn& txn) {
    for (unsigned i = 0; i < kDbCount; ++i) {
      int r = mdb_dbi_open(txn.raw(), kDbNames[i], MDB_CREATE, &self.dbs[i]);
      if (r != 0) fail(r, std::string("mdb_dbi_open(") + kDbNames[i] + ")");
    }
    std::uint64_t version = read_counter(txn, "schema_version", 0);
    if (version > kSchemaVersion) {
      return Status::failed_precondition(
          fmt::format("lmdb {}: schema version {} is newer than this build's {}", self.options.path,
                      version, kSchemaVersion));
    }
    // New, version 1 or 2: no data changes (see "Conversation state" and
    // "The journal" above), only the mark that keeps older builds out: a
    // version-1 build would trust stale conv_state fields, and a version-2
    // build would not replay the journal.
    if (version < kSchemaVersion) write_counter(txn, "schema_version", kSchemaVersion);
    return Status::ok();
  });
  if (!s) return s;
  if (Status r = impl->recover(); !r) return r;
  impl->checkpointer = std::thread([&self] {
#ifdef __linux__
    pthread_setname_np(pthread_self(), "cc-checkpoint");  // for `top -H` and perf
    if (const int more = self.options.checkpoint_nice; more > 0) run_in_background(more);
#endif
    self.checkpoint_loop();
  });
  return std::unique_ptr<LmdbStore>(new LmdbStore(std::move(impl)));
}

LmdbStore::LmdbStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LmdbStore::~LmdbStore() = default;

Status LmdbStore::sync() {
  if (Status s = impl_->checkpoint(); !s) return s;
  // As a writer: a flush beside a commit's own could take (and report) an
  // error that commit's flush then would not see.
  std::lock_guard writer(impl_->write_mu);
  auto lock = impl_->lock_for_txn();
  int rc = mdb_env_sync(impl_->env, 1);
  return rc == 0 ? Status::ok() : impl_->failure(rc, "mdb_env_sync");
}

LmdbStore::JournalStats LmdbStore::journal_stats() const {
  std::lock_guard lock(impl_->overlay_mu);
  JournalStats st;
  st.applied_lsn = impl_->applied_lsn;
  st.unapplied_batches = impl_->overlay.batches().size();
  st.unapplied_bytes = impl_->overlay.bytes();
  st.last_lsn = st.unapplied_batches ? impl_->overlay.batches().back()->lsn : st.applied_lsn;
  st.checkpoints = impl_->checkpoints;
  st.checkpoint_failures = impl_->checkpoint_failures;
  st.checkpoint_yields = impl_->checkpoint_yields.load(std::memory_order_relaxed);
  st.checkpoint_seconds = impl_->checkpoint_seconds;
  st.last_checkpoint_seconds = impl_->last_checkpoint_seconds;
  st.last_checkpoint_error = impl_->last_checkpoint_error;
  return st;
}

std::size_t LmdbStore::map_bytes() const { return impl_->map_bytes.load(); }

const LmdbOptions& LmdbStore::options() const { return impl_->options; }

// ---- users and credentials -------------------------------------------------------

Result<UserId> LmdbStore::create_user(const NewUser& user) {
  if (Status s = check_user_name(user.name); !s) return s;
  UserId id;
  Status s = impl_->write([&](Txn& txn) {
    if (txn.exists(kUserNames, Key().bytes(user.name))) {
      return Status::already_exists(fmt::format("user name '{}' is taken", user.name));
    }
    std::uint64_t next = read_counter(txn, "next_user_id", 1);
    if (next > kMaxUserId) return Status::failed_precondition("all user ids are used");
    id = UserId(next);
    User u;
    u.id = id;
    u.name = user.name;
    u.display_name = user.display_name.empty() ? user.name : user.display_name;
    u.email = user.email;
    u.phone = user.phone;
    u.created_at_ms = user.created_at_ms;
    txn.put(kUsers, Key().u64(id.value), encode_user(u));
    txn.put(kUserNames, Key().bytes(user.name), Encoder().u64(id.value).view());
    write_counter(txn, "next_user_id", next + 1);
    return Status::ok();
  });
  if (!s) return s;
  return id;
}

Result<User> LmdbStore::get_user(UserId id) {
  std::optional<User> user;
  Status s = impl_->read([&](Txn& txn) {
    user = load_user(txn, id);
    return Status::ok();
  });
  if (!s) return s;
  if (!user) return Status::not_found(user_label(id) + " not found");
  return std::move(*user);
}

Result<User> LmdbStore::find_user_by_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxUserNameBytes) {
    return Status::not_found(fmt::format("no user named '{}'", name));
  }
  std::optional<User> user;
  Status s = impl_->read([&](Txn& txn) {
    auto v = txn.get(kUserNames, Key().bytes(name));
    if (v) user = load_user(txn, UserId(decode_u64_record(*v, kUserNames)));
    return Status::ok();
  });
  if (!s) return s;
  if (!user) return Status::not_found(fmt::format("no user named '{}'", name));
  return std::move(*user);
}

Status LmdbStore::update_profile(UserId id, const ProfileUpdate& update) {
  return impl_->write([&](Txn& txn) {
    std::optional<User> user = load_user(txn, id);
    if (!user) return Status::not_found(user_label(id) + " not found");
    if (update.display_name) user->display_name = *update.display_name;
    if (update.about) user->about = *update.about;
    if (update.image_url) user->image_url = *update.image_url;
    txn.put(kUsers, Key().u64(id.value), encode_user(*user));
    return Status::ok();
  });
}

Status LmdbStore::set_password_hash(UserId id, std::string_view hash) {
  return impl_->write([&](Txn& txn) {
    if (!user_exists(txn, id)) return Status::not_found(user_label(id) + " not found");
    txn.put(kPasswords, Key().u64(id.value), Encoder().bytes(hash).view());
    return Status::ok();
  });
}

Result<std::string> LmdbStore::get_password_hash(UserId id) {
  std::optional<std::string> hash;
  bool known = false;
  Status s = impl_->read([&](Txn& txn) {
    known = user_exists(txn, id);
    if (auto v = txn.get(kPasswords, Key().u64(id.value))) {
      Decoder d(*v, kPasswords);
      hash = d.bytes();
      d.finish();
    }
    return Status::ok();
  });
  if (!s) return s;
  if (!known) return Status::not_found(user_label(id) + " not found");
  if (!hash) return Status::not_found(user_label(id) + " has no password");
  return std::move(*hash);
}

// ---- tokens ------------------------------------------------------------------------

Status LmdbStore::put_token(std::string_view token_hash, const TokenRecord& record) {
  if (Status s = check_token_hash(token_hash); !s) return s;
  return impl_->write([&](Txn& txn) {
    txn.put(kTokens, Key().bytes(token_hash),
            Encoder().u64(record.user.value).i64(record.expires_at_ms).view());
    return Status::ok();
  });
}

Result<TokenRecord> LmdbStore::get_token(std::string_view token_hash) {
  if (Status s = check_token_hash(token_hash); !s) return s;
  std::optional<TokenRecord> record;
  Status s = impl_->read([&](Txn& txn) {
    if (auto v = txn.get(kTokens, Key().bytes(token_hash))) {
      Decoder d(*v, kTokens);
      TokenRecord r;
      r.user = UserId(d.u64());
      r.expires_at_ms = d.i64();
      d.finish();
      record = r;
    }
    return Status::ok();
  });
  if (!s) return s;
  if (!record) return Status::not_found("unknown token");
  return *record;
}

Status LmdbStore::delete_token(std::string_view token_hash) {
  if (Status s = check_token_hash(token_hash); !s) return s;
  return impl_->write([&](Txn& txn) {
    txn.del(kTokens, Key().bytes(token_hash));
    return Status::ok();
  });
}

// ---- groups and membership -----------------------------------------------------------

Result<GroupId> LmdbStore::create_group(std::string_view name, UserId owner,
                                        std::span<const UserId> members, std::int64_t now_ms,
                                        std::uint32_t max_members) {
  std::set<UserId> distinct(members.begin(), members.end());
  distinct.insert(owner);
  // The size check comes first: it bounds the work an oversized list costs.
  if (distinct.size() > max_members) {
    return Status::group_full(fmt::format("a group has at most {} members", max_members));
  }
  GroupId id;
  Status s = impl_->write([&](Txn& txn) {
    for (UserId u : distinct) {
      if (!user_exists(txn, u)) return Status::not_found(user_label(u) + " not found");
    }
    std::uint64_t next = read_counter(txn, "next_group_id", 1);
    if (next > kMaxGroupId) return Status::failed_precondition("all group ids are used");
    id = GroupId(next);
    txn.put(kGroups, Key().u64(id.value),
            Encoder().bytes(name).u64(owner.value).i64(now_ms).view());
    for (UserId u : distinct) {
      put_member(txn, id, u, u == owner ? MemberRole::kOwner : MemberRole::kMember);
    }
    put_conv_state(txn, ConversationId::group(id), ConvStateRecord{0, 0, now_ms});
    write_counter(txn, "next_group_id", next + 1);
    return Status::ok();
  });
  if (!s) return s;
  return id;
}

Result<Group> LmdbStore::get_group(GroupId id) {
  std::optional<Group> group;
  Status s = impl_->read([&](Txn& txn) {
    group = load_group(txn, id);
    return Status::ok();
  });
  if (!s) return s;
  if (!group) return Status::not_found(group_label(id) + " not found");
  return std::move(*group);
}

Result<std::vector<Member>> LmdbStore::group_members(GroupId id) {
  std::vector<Member> out;
  Status s = impl_->read([&](Txn& txn) {
    out.clear();
    if (!txn.exists(kGroups, Key().u64(id.value))) {
      return Status::not_found(group_label(id) + " not found");
    }
    scan_partition(txn, kMembers, id.value, [&](Cursor& c) {
      Decoder d(c.value(), kMembers);
      std::uint8_t role = d.u8();
      d.finish();
      if (role > static_cast<std::uint8_t>(MemberRole::kOwner)) {
        fail(kCorruptRecord, "a member role");
      }
      out.push_back(Member{UserId(c.key_u64(8)), static_cast<MemberRole>(role)});
    });
    return Status::ok();
  });
  if (!s) return s;
  return out;
}

Result<MemberRole> LmdbStore::member_role(GroupId group, UserId user) {
  std::optional<MemberRole> role;
  bool group_known = false;
  Status s = impl_->read([&](Txn& txn) {
    group_known = txn.exists(kGroups, Key().u64(group.value));
    role = load_role(txn, group, user);
    return Status::ok();
  });
  if (!s) return s;
  if (!group_known) return Status::not_found(group_label(group) + " not found");
  if (!role) {
    return Status::not_found(user_label(user) + " is not a member of " + group_label(group));
  }
  return *role;
}

Status LmdbStore::add_member(GroupId group, UserId user, MemberRole role,
                             std::uint32_t max_members) {
  // A group has exactly one owner, fixed at creation (Group::owner).
  if (role != MemberRole::kMember && role != MemberRole::kAdmin) {
    return Status::invalid_argument("a member is added as kMember or kAdmin");
  }
  return impl_->write([&](Txn& txn) {
    if (!txn.exists(kGroups, Key().u64(group.value))) {
      return Status::not_found(group_label(group) + " not found");
    }
    if (!user_exists(txn, user)) return Status::not_found(user_label(user) + " not found");
    if (load_role(txn, group, user)) {
      return Status::already_exists(user_label(user) + " is already a member");
    }
    std::size_t count = 0;
    scan_partition(txn, kMembers, group.value, [&](Cursor&) { ++count; });
    if (count >= max_members) {
      return Status::group_full(
          fmt::format("{} has {} members, the maximum", group_label(group), count));
    }
    put_member(txn, group, user, role);
    return Status::ok();
  });
}

Status LmdbStore::remove_member(GroupId group, UserId user) {
  return impl_->write([&](Txn& txn) {
    std::optional<Group> g = load_group(txn, group);
    if (!g) return Status::not_found(group_label(group) + " not found");
    if (!load_role(txn, group, user)) {
      return Status::not_found(user_label(user) + " is not a member of " + group_label(group));
    }
    if (g->owner == user) {
      return Status::failed_precondition("the owner cannot be removed from " + group_label(group));
    }
    txn.del(kMembers, Key().u64(group.value).u64(user.value));
    txn.del(kUserGroups, Key().u64(user.value).u64(group.value));
    return Status::ok();
  });
}

Result<std::vector<GroupId>> LmdbStore::groups_of(UserId user) {
  std::vector<GroupId> out;
  Status s = impl_->read([&](Txn& txn) {
    out.clear();
    scan_partition(txn, kUserGroups, user.value,
                   [&](Cursor& c) { out.push_back(GroupId(c.key_u64(8))); });
    return Status::ok();
  });
  if (!s) return s;
  return out;
}

// ---- contacts ------------------------------------------------------------------------

Status LmdbStore::add_contact(UserId owner, UserId contact, std::int64_t now_ms) {
  if (owner == contact) return Status::invalid_argument("a user cannot add itself as a contact");
  return impl_->write([&](Txn& txn) {
    if (!user_exists(txn, owner)) return Status::not_found(user_label(owner) + " not found");
    if (!user_exists(txn, contact)) return Status::not_found(user_label(contact) + " not found");
    Key key = Key().u64(owner.value).u64(contact.value);
    if (txn.exists(kContacts, key)) {
      return Status::already_exists(user_label(contact) + " is already a contact");
    }
    txn.put(kContacts, key, Encoder().i64(now_ms).view());
    txn.put(kWatchers, Key().u64(contact.value).u64(owner.value), {});
    return Status::ok();
  });
}

Status LmdbStore::remove_contact(UserId owner, UserId contact) {
  return impl_->write([&](Txn& txn) {
    if (!txn.del(kContacts, Key().u64(owner.value).u64(contact.value))) {
      return Status::not_found(user_label(contact) + " is not a contact of " + user_label(owner));
    }
    txn.del(kWatchers, Key().u64(contact.value).u64(owner.value));
    return Status::ok();
  });
}

Result<std::vector<UserId>> LmdbStore::contacts_of(UserId owner) {
  std::vector<UserId> out;
  Status s = impl_->read([&](Txn& txn) {
    out.clear();
    scan_partition(txn, kContacts, owner.value,
                   [&](Cursor& c) { out.push_back(UserId(c.key_u64(8))); });
    return Status::ok();
  });
  if (!s) return s;
  return out;
}

Result<std::vector<UserId>> LmdbStore::watchers_of(UserId contact) {
  std::vector<UserId> out;
  Status s = impl_->read([&](Txn& txn) {
    out.clear();
    scan_partition(txn, kWatchers, contact.value,
                   [&](Cursor& c) { out.push_back(UserId(c.key_u64(8))); });
    return Status::ok();
  });
  if (!s) return s;
  return out;
}

// ---- conversations -------------------------------------------------------------------

Status LmdbStore::touch_direct_conversation(ConversationId conv, std::int64_t now_ms) {
  if (!ConversationId::from_raw(conv.value) || !conv.is_direct()) {
    return Status::invalid_argument(fmt::format("not a direct conversation id: {}", conv.value));
  }
  return impl_->write([&](Txn& txn) {
    touch_direct(txn, conv, now_ms);
    return Status::ok();
  });
}

Result<std::vector<ConversationId>> LmdbStore::conversations_of(UserId user) {
  std::vector<ConversationId> out;
  std::vector<ConversationId> recent;  // first messaged, not yet checkpointed
  Status s = impl_->read_merged(
      [&](const Overlay& o) {
        const auto* convs = o.direct_conversations(user);
        recent = convs ? *convs : std::vector<ConversationId>{};
      },
      [&](Txn& txn) {
        out.clear();
        scan_partition(txn, kUserConvs, user.value,
                       [&](Cursor& c) { out.push_back(ConversationId(c.key_u64(8))); });
        // LMDB may hold some of them already (applied, not yet trimmed).
        for (ConversationId c : recent) {
          if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
        }
        scan_partition(txn, kUserGroups, user.value, [&](Cursor& c) {
          out.push_back(ConversationId::group(GroupId(c.key_u64(8))));
        });
        return Status::ok();
      });
  if (!s) return s;
  return out;
}

Result<ConversationState> LmdbStore::conversation_state(ConversationId conv) {
  ConversationState st;
  std::shared_ptr<const Message> newest;  // from the overlay
  Status s = impl_->read_merged(
      [&](const Overlay& o) {
        const auto* run = o.conversation(conv);
        newest = run ? run->back() : nullptr;
      },
      [&](Txn& txn) {
        st = ConversationState{};
        st.conversation = conv;
        if (newest) {
          st.last_seq = newest->seq;
          st.last_message_id = newest->id;
          st.last_activity_ms = newest->sent_at_ms;
          return Status::ok();
        }
        Cursor c(txn, kMessages);
        if (seek_last_in(c, conv.value)) {
          // The newest message's header: id, sender, client id, sent_at.
          st.last_seq = c.key_u64(8);
          Decoder d(c.value(), kMessages);
          st.last_message_id = MessageId(d.u64());
          d.u64();
          ClientMsgId ignored;
          d.fixed(ignored);
          st.last_activity_ms = d.i64();
        } else if (auto rec = load_conv_state(txn, conv)) {
          st.last_activity_ms = rec->last_activity_ms;  // created, no message yet
        }
        return Status::ok();
      });
  if (!s) return s;
  return st;
}

// ---- messages ------------------------------------------------------------------------

std::vector<CommitOutcome> LmdbStore::commit(std::span<const NewMessage> batch) {
  Impl& im = *impl_;
  std::vector<CommitOutcome> outcomes(batch.size());
  auto fail_all = [&](const Status& s) {
    outcomes.assign(batch.size(), CommitOutcome{s, nullptr, false, {}});
    return outcomes;
  };
  if (Status room = im.wait_for_room(); !room) return fail_all(room);
  std::lock_guard commit_lock(im.commit_mu);

  // 1. Validate, then look up in the overlay what this batch needs: the
  //    dedup keys, and the newest conversation seqs and inbox heads. What
  //    the overlay does not hold, LMDB does (2); the lookup order matters,
  //    since entries only ever move from the overlay to LMDB.
  constexpr std::uint64_t kUnknown = std::numeric_limits<std::uint64_t>::max();
  std::vector<std::shared_ptr<const Message>> originals(batch.size());
  std::unordered_map<std::uint64_t, std::uint64_t> last_seqs;  // conversation -> newest seq
  std::unordered_map<std::uint64_t, std::uint64_t> heads;      // user -> inbox head
  std::vector<std::size_t> dedup_misses;
  bool lookups_left = false;
  {
    std::lock_guard lock(im.overlay_mu);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const NewMessage& in = batch[i];
      if (Status v = check_new_message(in); !v) {
        outcomes[i].status = std::move(v);  // nothing of it is stored
        continue;
      }
      if (auto m = im.overlay.find(DedupKey{in.sender, in.client_msg_id})) {
        originals[i] = std::move(m);
        continue;
      }
      dedup_misses.push_back(i);
      if (auto [it, fresh] = last_seqs.try_emplace(in.conversation.value, kUnknown); fresh) {
        if (const auto* run = im.overlay.conversation(in.conversation)) {
          it->second = run->back()->seq;
        } else {
          lookups_left = true;
        }
      }
      for (UserId r : in.recipients) {
        if (auto [it, fresh] = heads.try_emplace(r.value, kUnknown); fresh) {
          if (const auto* run = im.overlay.inbox(r)) {
            it->second = run->back().inbox_seq;
          } else {
            lookups_left = true;
          }
        }
      }
    }
  }
  // 2. The rest from LMDB, in a snapshot taken after the overlay lookups.
  if (lookups_left || !dedup_misses.empty()) {
    Status s = im.read([&](Txn& txn) {
      for (std::size_t i : dedup_misses) {
        const NewMessage& in = batch[i];
        originals[i].reset();
        if (auto d = txn.get(kDedup, Key().u64(in.sender.value).bytes(in.client_msg_id))) {
          Decoder dec(*d, kDedup);
          ConversationId conv(dec.u64());
          std::uint64_t seq = dec.u64();
          dec.finish();
          originals[i] = load_message(txn, conv, seq);
        }
      }
      for (auto& [conv, last] : last_seqs) {
        if (last == kUnknown) last = last_seq_in(txn, ConversationId(conv));
      }
      for (auto& [user, head] : heads) {
        if (head == kUnknown) head = inbox_head_in(txn, UserId(user));
      }
      return Status::ok();
    });
    if (!s) return fail_all(s);
  }

  // 3. Assign seqs and inbox positions, in batch order.
  auto journaled = std::make_shared<JournaledBatch>();
  std::unordered_map<DedupKey, std::shared_ptr<const Message>, DedupKeyHash> in_batch;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const NewMessage& in = batch[i];
    CommitOutcome& out = outcomes[i];
    if (!out.status) continue;
    DedupKey key{in.sender, in.client_msg_id};
    // A duplicate of a stored message, or of one earlier in this batch.
    if (!originals[i]) {
      if (auto it = in_batch.find(key); it != in_batch.end()) originals[i] = it->second;
    }
    if (originals[i]) {
      out.message = originals[i];
      out.duplicate = true;
      continue;
    }
    auto msg = std::make_shared<Message>();
    msg->id = in.id;
    msg->conversation = in.conversation;
    msg->seq = ++last_seqs[in.conversation.value];
    msg->sender = in.sender;
    msg->client_msg_id = in.client_msg_id;
    msg->body = in.body;
    msg->sent_at_ms = in.sent_at_ms;
    JournaledMessage jm;
    jm.first_of_direct = msg->seq == 1 && in.conversation.is_direct();
    jm.inbox.reserve(in.recipients.size());
    for (UserId r : in.recipients) jm.inbox.emplace_back(r, ++heads[r.value]);
    out.inbox = jm.inbox;
    out.message = msg;
    in_batch.emplace(key, msg);
    jm.message = std::move(msg);
    journaled->messages.push_back(std::move(jm));
  }
  if (journaled->messages.empty()) return outcomes;  // duplicates and refusals only

  // 4. One journal record, flushed: from here the batch is durable.
  std::string record = encode_batch(*journaled);
  auto lsn = im.journal->append(record);
  if (!lsn) return fail_all(lsn.status());
  journaled->lsn = *lsn;
  std::size_t recipients = 0;
  for (const auto& jm : journaled->messages) recipients += jm.inbox.size();
  // The overlay's index entries cost about this much beside the record.
  journaled->bytes = record.size() + 64 * recipients + 160 * journaled->messages.size();
  journaled->committed_at = std::chrono::steady_clock::now();

  // 5. Visible to reads, and queued for the next checkpoint.
  bool due = false;
  {
    std::lock_guard lock(im.overlay_mu);
    im.overlay.add(std::move(journaled));
    // The thread sleeps untimed while there is nothing to apply: the first
    // batch starts its interval.
    due = im.overlay.batches().size() == 1 || im.overlay.bytes() >= im.options.checkpoint_bytes;
  }
  if (due) im.checkpoint_cv.notify_all();
  return outcomes;
}

Result<std::shared_ptr<const Message>> LmdbStore::find_by_client_id(UserId sender,
                                                                    const ClientMsgId& id) {
  std::shared_ptr<const Message> msg;
  std::shared_ptr<const Message> recent;  // from the overlay
  Status s = impl_->read_merged(
      [&](const Overlay& o) {
        recent = o.find(DedupKey{sender, id});
      },
      [&](Txn& txn) {
        msg = recent;
        if (msg) return Status::ok();
        if (auto d = txn.get(kDedup, Key().u64(sender.value).bytes(id))) {
          Decoder dec(*d, kDedup);
          ConversationId conv(dec.u64());
          std::uint64_t seq = dec.u64();
          dec.finish();
          msg = load_message(txn, conv, seq);
        }
        return Status::ok();
      });
  if (!s) return s;
  if (!msg) {
    return Status::not_found(
        fmt::format("no message {} from {}", id.to_uuid(), user_label(sender)));
  }
  return msg;
}

Result<std::vector<std::shared_ptr<const Message>>> LmdbStore::history(ConversationId conv,
                                                                       const HistoryQuery& query) {
  if (query.before_seq && query.after_seq) {
    return Status::invalid_argument("a history query sets at most one of before/after");
  }
  std::vector<std::shared_ptr<const Message>> out;
  if (query.limit == 0) return out;
  const std::size_t limit = query.limit;
  // The overlay holds the conversation's newest seqs, [first, ...]: LMDB
  // answers below `first`, the overlay from it on.
  std::vector<std::shared_ptr<const Message>> recent;  // ascending
  std::uint64_t first = std::numeric_limits<std::uint64_t>::max();
  Status s = impl_->read_merged(
      [&](const Overlay& o) {
        recent.clear();
        first = std::numeric_limits<std::uint64_t>::max();
        const auto* run = o.conversation(conv);
        if (!run) return;
        first = run->front()->seq;
        // Seqs are contiguous: position = seq - first.
        auto index_of = [&](std::uint64_t seq) {
          return static_cast<std::size_t>(
              std::min<std::uint64_t>(seq < first ? 0 : seq - first, run->size()));
        };
        std::size_t begin = 0;
        std::size_t end = run->size();
        if (query.after_seq) {
          begin = *query.after_seq == std::numeric_limits<std::uint64_t>::max()
                      ? end
                      : index_of(*query.after_seq + 1);
          end = std::min(end, begin + limit);
        } else {
          if (query.before_seq) end = index_of(*query.before_seq);
          begin = end > limit ? end - limit : 0;
        }
        recent.assign(run->begin() + static_cast<std::ptrdiff_t>(begin),
                      run->begin() + static_cast<std::ptrdiff_t>(end));
      },
      [&](Txn& txn) {
        out.clear();
        Cursor c(txn, kMessages);
        auto take = [&] { out.push_back(decode_message(conv, c.key_u64(8), c.value())); };
        if (query.after_seq) {
          if (*query.after_seq == std::numeric_limits<std::uint64_t>::max()) return Status::ok();
          for (bool ok = c.seek(Key().u64(conv.value).u64(*query.after_seq + 1));
               ok && c.has_prefix(conv.value) && c.key_u64(8) < first && out.size() < limit;
               ok = c.next()) {
            take();
          }
          out.insert(out.end(), recent.begin(), recent.end());
          if (out.size() > limit) out.resize(limit);
        } else {
          // Walk backwards from just below the overlay's run (and below
          // before_seq), then reverse: the page is always ascending.
          std::uint64_t bound = first;
          if (query.before_seq) bound = std::min(bound, *query.before_seq);
          const std::size_t wanted = limit - std::min(limit, recent.size());
          bool ok = bound == std::numeric_limits<std::uint64_t>::max()
                        ? seek_last_in(c, conv.value)
                        : c.seek_before(Key().u64(conv.value).u64(bound));
          for (; ok && c.has_prefix(conv.value) && out.size() < wanted; ok = c.prev()) take();
          std::reverse(out.begin(), out.end());
          out.insert(out.end(), recent.begin(), recent.end());
        }
        return Status::ok();
      });
  if (!s) return s;
  return out;
}

// ---- inboxes and cursors ---------------------------------------------------------------

Result<std::vector<InboxItem>> LmdbStore::read_inbox(UserId user, std::uint64_t after,
                                                     std::uint32_t limit) {
  std::vector<InboxItem> out;
  if (limit == 0 || after == std::numeric_limits<std::uint64_t>::max()) return out;
  // As in history(): LMDB below the overlay's first inbox seq, the overlay
  // from it on.
  std::vector<InboxItem> recent;
  std::uint64_t first = std::numeric_limits<std::uint64_t>::max();
  Status s = impl_->read_merged(
      [&](const Overlay& o) {
        recent.clear();
        first = std::numeric_limits<std::uint64_t>::max();
        const auto* run = o.inbox(user);
        if (!run) return;
        first = run->front().inbox_seq;
        std::size_t begin = static_cast<std::size_t>(
            std::min<std::uint64_t>(after + 1 < first ? 0 : after + 1 - first, run->size()));
        std::size_t end = std::min<std::size_t>(run->size(), begin + limit);
        recent.assign(run->begin() + static_cast<std::ptrdiff_t>(begin),
                      run->begin() + static_cast<std::ptrdiff_t>(end));
      },
      [&](Txn& txn) {
        out.clear();
        Cursor c(txn, kInbox);
        for (bool ok = c.seek(Key().u64(user.value).u64(after + 1));
             ok && c.has_prefix(user.value) && c.key_u64(8) < first && out.size() < limit;
             ok = c.next()) {
          Decoder d(c.value(), kInbox);
          ConversationId conv(d.u64());
          std::uint64_t seq = d.u64();
          d.u64();  // the message id, for backends that cannot join cheaply
          d.finish();
          out.push_back(InboxItem{c.key_u64(8), load_message(txn, conv, seq)});
        }
        out.insert(out.end(), recent.begin(), recent.end());
        if (out.size() > limit) out.resize(limit);
        return Status::ok();
      });
  if (!s) return s;
  return out;
}

Result<std::uint64_t> LmdbStore::inbox_head(UserId user) {
  std::uint64_t head = 0;
  std::uint64_t recent = 0;  // from the overlay, 0 if it holds none
  Status s = impl_->read_merged(
      [&](const Overlay& o) {
        const auto* run = o.inbox(user);
        recent = run ? run->back().inbox_seq : 0;
      },
      [&](Txn& txn) {
        head = recent ? recent : inbox_head_in(txn, user);
        return Status::ok();
      });
  if (!s) return s;
  return head;
}

Status LmdbStore::set_device_cursor(UserId user, std::string_view device_id,
                                    std::uint64_t inbox_seq) {
  if (Status s = check_device_id(device_id); !s) return s;
  return impl_->write([&](Txn& txn) {
    txn.put(kDeviceCursors, Key().u64(user.value).bytes(device_id),
            Encoder().u64(inbox_seq).view());
    return Status::ok();
  });
}

Result<std::uint64_t> LmdbStore::device_cursor(UserId user, std::string_view device_id) {
  if (Status s = check_device_id(device_id); !s) return s;
  std::uint64_t cursor = 0;
  Status s = impl_->read([&](Txn& txn) {
    auto v = txn.get(kDeviceCursors, Key().u64(user.value).bytes(device_id));
    cursor = v ? decode_u64_record(*v, kDeviceCursors) : 0;
    return Status::ok();
  });
  if (!s) return s;
  return cursor;
}

Status LmdbStore::set_read_cursor(UserId user, ConversationId conv, std::uint64_t seq) {
  return impl_->write([&](Txn& txn) {
    Key key = Key().u64(user.value).u64(conv.value);
    auto v = txn.get(kReadCursors, key);
    // Never backwards: a late or reordered report must not un-read messages.
    if (v && decode_u64_record(*v, kReadCursors) >= seq) return Status::ok();
    txn.put(kReadCursors, key, Encoder().u64(seq).view());
    return Status::ok();
  });
}

Result<std::uint64_t> LmdbStore::read_cursor(UserId user, ConversationId conv) {
  std::uint64_t cursor = 0;
  Status s = impl_->read([&](Txn& txn) {
    auto v = txn.get(kReadCursors, Key().u64(user.value).u64(conv.value));
    cursor = v ? decode_u64_record(*v, kReadCursors) : 0;
    return Status::ok();
  });
  if (!s) return s;
  return cursor;
}

// ---- presence ----------------------------------------------------------------------------

Status LmdbStore::set_last_seen(UserId user, std::int64_t at_ms) {
  return impl_->write([&](Txn& txn) {
    txn.put(kLastSeen, Key().u64(user.value), Encoder().i64(at_ms).view());
    return Status::ok();
  });
}

Result<std::int64_t> LmdbStore::last_seen(UserId user) {
  std::int64_t at = 0;
  bool found = false;
  Status s = impl_->read([&](Txn& txn) {
    auto v = txn.get(kLastSeen, Key().u64(user.value));
    found = v.has_value();
    if (found) {
      Decoder d(*v, kLastSeen);
      at = d.i64();
      d.finish();
    }
    return Status::ok();
  });
  if (!s) return s;
  if (!found) return Status::not_found(user_label(user) + " never seen");
  return at;
}

}  // namespace chatcore
