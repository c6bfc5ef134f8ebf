// Store: the persistence interface of the engine.
//
// Everything durable lives behind this interface: users and credentials,
// tokens, groups and membership (both directions), contacts (both
// directions), messages, inboxes, idempotency keys, device and read cursors,
// last seen. Backends: MemoryStore (memory_store.hpp, tests and embedding)
// and LmdbStore (adapters/lmdb, the daemon's default). Every backend passes
// the one conformance suite in tests/conformance/.
//
// The central operation is commit(): a BATCH of messages in one transaction
// (group commit: one fsync for the whole batch). Each message is atomic on
// its own: the message, its conversation seq (last + 1, no gaps), one inbox
// entry per recipient and the dedup key (sender, client_msg_id) are stored
// together or not at all. A message whose (sender, client_msg_id) is already
// known stores nothing and reports the original message (duplicate = true).
//
// When commit() returns, the batch is as durable as the backend's
// durability setting promises (for LmdbStore in Durability::kSync: on disk).
// The engine acknowledges a send only after that.
//
// Keys are ranges, never offsets: every read names one partition (a
// conversation, a user) and a range within it, so the interface maps onto
// LMDB, PostgreSQL or a wide-column store alike.
//
// Errors: every call returns Status/Result. kNotFound for a missing entity,
// kAlreadyExists for a uniqueness violation, kGroupFull at the member cap,
// kInternal/kUnavailable for backend failures (with the backend's message).
//
// Thread-safety: every Store method may be called from any thread
// concurrently. commit() calls are serialised by the caller in practice (one
// storage thread), but implementations must not rely on it for correctness.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chatcore/ids.hpp"
#include "chatcore/model.hpp"
#include "chatcore/status.hpp"

namespace chatcore {

// A login token as stored: only its hash is ever persisted.
struct TokenRecord {
  UserId user;
  std::int64_t expires_at_ms = 0;
};

// A page request over one conversation's history. At most one of
// before_seq/after_seq is set; both bounds are exclusive.
//  * neither: the newest `limit` messages;
//  * before_seq: the `limit` messages just before it;
//  * after_seq: the `limit` messages just after it.
// The result is always in chronological (ascending seq) order.
struct HistoryQuery {
  std::optional<std::uint64_t> before_seq;
  std::optional<std::uint64_t> after_seq;
  std::uint32_t limit = 50;
};

class Store {
 public:
  virtual ~Store() = default;

  // ---- users and credentials -------------------------------------------
  // Creates a user with the next free id (1, 2, ...). kAlreadyExists if the
  // name is taken (names compare byte-wise); kFailedPrecondition once
  // kMaxUserId ids have been issued.
  virtual Result<UserId> create_user(const NewUser& user) = 0;
  virtual Result<User> get_user(UserId id) = 0;
  virtual Result<User> find_user_by_name(std::string_view name) = 0;
  virtual Status update_profile(UserId id, const ProfileUpdate& update) = 0;
  // The password hash (an opaque string, e.g. libsodium's Argon2id string).
  virtual Status set_password_hash(UserId id, std::string_view hash) = 0;
  virtual Result<std::string> get_password_hash(UserId id) = 0;

  // ---- tokens (stored by hash; the raw token never reaches the store) ----
  virtual Status put_token(std::string_view token_hash, const TokenRecord& record) = 0;
  // kNotFound if unknown or deleted. Expiry is the caller's business.
  virtual Result<TokenRecord> get_token(std::string_view token_hash) = 0;
  // OK even if absent (revocation is idempotent).
  virtual Status delete_token(std::string_view token_hash) = 0;

  // ---- groups and membership ----------------------------------------------
  // Creates a group owned by `owner`; `members` may or may not contain the
  // owner (it is always added, as kOwner); duplicates are ignored. kNotFound
  // if any user is unknown; kGroupFull if the distinct members exceed
  // max_members. Atomic: on error nothing is created.
  virtual Result<GroupId> create_group(std::string_view name, UserId owner,
                                       std::span<const UserId> members, std::int64_t now_ms,
                                       std::uint32_t max_members) = 0;
  virtual Result<Group> get_group(GroupId id) = 0;
  // Members in ascending user id order. kNotFound for an unknown group.
  virtual Result<std::vector<Member>> group_members(GroupId id) = 0;
  // The role of `user` in `group`, kNotFound if not a member (or no group).
  virtual Result<MemberRole> member_role(GroupId group, UserId user) = 0;
  // kAlreadyExists if already a member; kGroupFull at max_members;
  // kNotFound for an unknown group or user.
  virtual Status add_member(GroupId group, UserId user, MemberRole role,
                            std::uint32_t max_members) = 0;
  // kNotFound if not a member. Removing the owner is kFailedPrecondition.
  virtual Status remove_member(GroupId group, UserId user) = 0;
  // Groups `user` belongs to, ascending.
  virtual Result<std::vector<GroupId>> groups_of(UserId user) = 0;

  // ---- contacts (directed: `owner` lists `contact`) ----------------------
  // kNotFound for an unknown contact user; kAlreadyExists if present;
  // kInvalidArgument for owner == contact.
  virtual Status add_contact(UserId owner, UserId contact, std::int64_t now_ms) = 0;
  // kNotFound if absent.
  virtual Status remove_contact(UserId owner, UserId contact) = 0;
  // The users `owner` has added, ascending.
  virtual Result<std::vector<UserId>> contacts_of(UserId owner) = 0;
  // The users who have added `contact` (the audience of its presence).
  virtual Result<std::vector<UserId>> watchers_of(UserId contact) = 0;

  // ---- conversations --------------------------------------------------------
  // Records that `user` takes part in direct conversation `conv` (so it is
  // listed by conversations_of even before a message). Idempotent. commit()
  // does this itself for every direct message's participants.
  virtual Status touch_direct_conversation(ConversationId conv, std::int64_t now_ms) = 0;
  // Every conversation `user` takes part in: direct ones touched or messaged,
  // and the groups it belongs to. Unordered.
  virtual Result<std::vector<ConversationId>> conversations_of(UserId user) = 0;
  // The conversation's newest seq/message; last_seq 0 when it has none.
  virtual Result<ConversationState> conversation_state(ConversationId conv) = 0;

  // ---- messages ------------------------------------------------------------
  // Commits a batch; one CommitOutcome per input, same order. If the whole
  // transaction fails (I/O error), every outcome carries that error and
  // nothing was stored. Durable on return (see the file comment).
  virtual std::vector<CommitOutcome> commit(std::span<const NewMessage> batch) = 0;
  // kNotFound if (sender, client_msg_id) was never committed.
  virtual Result<std::shared_ptr<const Message>> find_by_client_id(UserId sender,
                                                                   const ClientMsgId& id) = 0;
  // See HistoryQuery. An unknown conversation is an empty page, not an error.
  virtual Result<std::vector<std::shared_ptr<const Message>>> history(
      ConversationId conv, const HistoryQuery& query) = 0;

  // ---- inboxes and cursors ---------------------------------------------------
  // Up to `limit` inbox items with inbox_seq > after, ascending.
  virtual Result<std::vector<InboxItem>> read_inbox(UserId user, std::uint64_t after,
                                                    std::uint32_t limit) = 0;
  // The user's highest inbox seq (0 if the inbox is empty).
  virtual Result<std::uint64_t> inbox_head(UserId user) = 0;
  // Per-device delivery cursor (the last inbox seq the device reported having).
  virtual Status set_device_cursor(UserId user, std::string_view device_id,
                                   std::uint64_t inbox_seq) = 0;
  // 0 if the device has never reported one.
  virtual Result<std::uint64_t> device_cursor(UserId user, std::string_view device_id) = 0;
  // Per-user read cursor of a conversation ("read up to seq N"); never moves
  // backwards (a lower value is ignored, OK).
  virtual Status set_read_cursor(UserId user, ConversationId conv, std::uint64_t seq) = 0;
  // 0 if never set.
  virtual Result<std::uint64_t> read_cursor(UserId user, ConversationId conv) = 0;

  // ---- presence --------------------------------------------------------------
  virtual Status set_last_seen(UserId user, std::int64_t at_ms) = 0;
  // kNotFound if never seen.
  virtual Result<std::int64_t> last_seen(UserId user) = 0;
};

}  // namespace chatcore
