// The chat domain as plain value types: users, groups, members, messages,
// inbox entries. No behaviour lives here; see store.hpp for persistence and
// engine.hpp for the rules.
//
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "chatcore/ids.hpp"
#include "chatcore/status.hpp"

namespace chatcore {

struct User {
  UserId id;
  std::string name;          // unique login name, 1..64 bytes
  std::string display_name;  // shown to others; defaults to name
  std::string email;         // optional, may be empty
  std::string phone;         // optional, may be empty
  std::string about;         // free text profile line
  std::string image_url;     // avatar URL, may be empty
  std::int64_t created_at_ms = 0;
};

// What signup supplies; the Store assigns the id.
struct NewUser {
  std::string name;
  std::string display_name;
  std::string email;
  std::string phone;
  std::int64_t created_at_ms = 0;
};

// A partial profile update: only engaged fields change.
struct ProfileUpdate {
  std::optional<std::string> display_name;
  std::optional<std::string> about;
  std::optional<std::string> image_url;
};

enum class MemberRole : std::uint8_t { kMember = 0, kAdmin = 1, kOwner = 2 };

struct Group {
  GroupId id;
  std::string name;
  UserId owner;
  std::int64_t created_at_ms = 0;
};

struct Member {
  UserId user;
  MemberRole role = MemberRole::kMember;
  friend bool operator==(const Member&, const Member&) = default;
};

// A stored chat message. `seq` is the conversation sequence number: dense,
// starting at 1, the one order every member sees.
struct Message {
  MessageId id;
  ConversationId conversation;
  std::uint64_t seq = 0;
  UserId sender;
  ClientMsgId client_msg_id;
  std::string body;  // valid UTF-8, at most Limits::max_body_chars code points
  std::int64_t sent_at_ms = 0;
};

// One entry of a user's inbox: "the message at (conversation, seq) is yours
// at inbox position inbox_seq". Inbox seqs are dense per user, from 1.
struct InboxEntry {
  std::uint64_t inbox_seq = 0;
  ConversationId conversation;
  std::uint64_t seq = 0;
  MessageId message_id;
};

// An inbox entry joined with its message, as sync and delivery need it.
struct InboxItem {
  std::uint64_t inbox_seq = 0;
  std::shared_ptr<const Message> message;
};

// Where a conversation stands: its newest seq and message (if any).
struct ConversationState {
  ConversationId conversation;
  std::uint64_t last_seq = 0;
  MessageId last_message_id;
  std::int64_t last_activity_ms = 0;  // sent_at of the newest message, or creation time
};

// One message to commit. The engine fills every field; the Store assigns
// `seq` and inbox seqs inside its transaction.
struct NewMessage {
  MessageId id;  // fresh Snowflake (ignored if the send turns out a duplicate)
  ConversationId conversation;
  UserId sender;
  ClientMsgId client_msg_id;
  std::string body;
  std::int64_t sent_at_ms = 0;
  // Everyone whose inbox receives the message, sender included (for the
  // sender's other devices). No duplicates.
  std::vector<UserId> recipients;
};

// The outcome of committing one NewMessage.
struct CommitOutcome {
  Status status;  // non-OK: nothing of this message was stored
  // On success: the stored message (for a duplicate, the ORIGINAL message).
  std::shared_ptr<const Message> message;
  bool duplicate = false;  // true: an earlier send with the same (sender, client_msg_id)
  // The inbox position given to each recipient (empty for a duplicate).
  std::vector<std::pair<UserId, std::uint64_t>> inbox;
};

}  // namespace chatcore
