// MemoryStore: the Store contract held in std containers under one mutex.
//
// Layout mirrors the LMDB store's sub-databases (adapters/lmdb) so the two
// stay easy to compare, with two shortcuts that only memory allows:
//  * a conversation's messages live in a vector indexed by seq - 1 (seqs are
//    dense from 1), so history is a slice;
//  * an inbox is a vector indexed by inbox_seq - 1 that points straight at
//    the shared message, so read_inbox needs no join.
// Messages are immutable once committed and shared as shared_ptr<const
// Message> between the conversation, every inbox and every reader.
//
// Every public method takes the one mutex for its whole duration, so each
// call is atomic and a commit() batch is seen all at once or not at all.
#include "chatcore/memory_store.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <utility>

namespace chatcore {

namespace {

// Bounds the stores enforce on their keys (the LMDB store needs bounded keys;
// the memory store enforces the same so both pass one conformance suite).
constexpr std::size_t kMaxUserNameBytes = 64;
constexpr std::size_t kMaxTokenHashBytes = 256;
constexpr std::size_t kMaxDeviceIdBytes = 256;

std::string user_label(UserId id) { return "user " + std::to_string(id.value); }
std::string group_label(GroupId id) { return "group " + std::to_string(id.value); }

Status check_user_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxUserNameBytes) {
    return Status::invalid_argument("user name must be 1.." + std::to_string(kMaxUserNameBytes) +
                                    " bytes");
  }
  return Status::ok();
}

Status check_token_hash(std::string_view hash) {
  if (hash.empty() || hash.size() > kMaxTokenHashBytes) {
    return Status::invalid_argument("token hash must be 1.." + std::to_string(kMaxTokenHashBytes) +
                                    " bytes");
  }
  return Status::ok();
}

Status check_device_id(std::string_view device) {
  if (device.size() > kMaxDeviceIdBytes) {
    return Status::invalid_argument("device id longer than " + std::to_string(kMaxDeviceIdBytes) +
                                    " bytes");
  }
  return Status::ok();
}

// The per-message checks of commit(); a failure is that message's outcome.
Status check_new_message(const NewMessage& m) {
  if (!ConversationId::from_raw(m.conversation.value)) {
    return Status::invalid_argument("malformed conversation id " +
                                    std::to_string(m.conversation.value));
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

bool valid_role(MemberRole role) {
  return role == MemberRole::kMember || role == MemberRole::kAdmin || role == MemberRole::kOwner;
}

}  // namespace

struct MemoryStore::State {
  struct UserRecord {
    User user;
    std::optional<std::string> password_hash;
  };
  struct GroupRecord {
    Group group;
    std::map<UserId, MemberRole> members;
  };
  struct Conversation {
    std::vector<std::shared_ptr<const Message>> messages;  // index = seq - 1
    std::int64_t created_at_ms = 0;
  };
  using DedupKey = std::pair<UserId, ClientMsgId>;

  std::mutex mu;
  std::uint64_t next_user_id = 1;
  std::uint64_t next_group_id = 1;
  std::map<UserId, UserRecord> users;
  std::map<std::string, UserId, std::less<>> user_names;
  std::map<std::string, TokenRecord, std::less<>> tokens;
  std::map<GroupId, GroupRecord> groups;
  std::map<UserId, std::set<GroupId>> user_groups;
  std::map<UserId, std::map<UserId, std::int64_t>> contacts;  // owner -> contact -> added at
  std::map<UserId, std::set<UserId>> watchers;                // contact -> owners
  std::map<ConversationId, Conversation> conversations;
  std::map<UserId, std::vector<std::shared_ptr<const Message>>> inboxes;  // index = inbox_seq - 1
  std::map<DedupKey, std::shared_ptr<const Message>> dedup;
  std::map<UserId, std::set<ConversationId>> user_convs;  // direct conversations only
  std::map<UserId, std::map<std::string, std::uint64_t, std::less<>>> device_cursors;
  std::map<std::pair<UserId, ConversationId>, std::uint64_t> read_cursors;
  std::map<UserId, std::int64_t> last_seen;

  bool user_exists(UserId id) const { return users.count(id) != 0; }

  // Records both participants of a direct conversation and creates its state.
  void touch_direct(ConversationId conv, std::int64_t now_ms) {
    user_convs[conv.low_user()].insert(conv);
    user_convs[conv.high_user()].insert(conv);
    conversations.try_emplace(conv, Conversation{{}, now_ms});
  }
};

MemoryStore::MemoryStore() : state_(std::make_unique<State>()) {}
MemoryStore::~MemoryStore() = default;

// ---- users and credentials ---------------------------------------------------

Result<UserId> MemoryStore::create_user(const NewUser& user) {
  if (Status s = check_user_name(user.name); !s) return s;
  std::lock_guard lock(state_->mu);
  if (state_->user_names.count(user.name) != 0) {
    return Status::already_exists("user name '" + user.name + "' is taken");
  }
  if (state_->next_user_id > kMaxUserId) {
    return Status::failed_precondition("all user ids are used");
  }
  UserId id(state_->next_user_id++);
  User u;
  u.id = id;
  u.name = user.name;
  u.display_name = user.display_name.empty() ? user.name : user.display_name;
  u.email = user.email;
  u.phone = user.phone;
  u.created_at_ms = user.created_at_ms;
  state_->users.emplace(id, State::UserRecord{std::move(u), std::nullopt});
  state_->user_names.emplace(user.name, id);
  return id;
}

Result<User> MemoryStore::get_user(UserId id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->users.find(id);
  if (it == state_->users.end()) return Status::not_found(user_label(id) + " not found");
  return it->second.user;
}

Result<User> MemoryStore::find_user_by_name(std::string_view name) {
  std::lock_guard lock(state_->mu);
  auto it = state_->user_names.find(name);
  if (it == state_->user_names.end()) {
    return Status::not_found("no user named '" + std::string(name) + "'");
  }
  return state_->users.at(it->second).user;
}

Status MemoryStore::update_profile(UserId id, const ProfileUpdate& update) {
  std::lock_guard lock(state_->mu);
  auto it = state_->users.find(id);
  if (it == state_->users.end()) return Status::not_found(user_label(id) + " not found");
  User& u = it->second.user;
  if (update.display_name) u.display_name = *update.display_name;
  if (update.about) u.about = *update.about;
  if (update.image_url) u.image_url = *update.image_url;
  return Status::ok();
}

Status MemoryStore::set_password_hash(UserId id, std::string_view hash) {
  std::lock_guard lock(state_->mu);
  auto it = state_->users.find(id);
  if (it == state_->users.end()) return Status::not_found(user_label(id) + " not found");
  it->second.password_hash = std::string(hash);
  return Status::ok();
}

Result<std::string> MemoryStore::get_password_hash(UserId id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->users.find(id);
  if (it == state_->users.end()) return Status::not_found(user_label(id) + " not found");
  if (!it->second.password_hash) return Status::not_found(user_label(id) + " has no password");
  return *it->second.password_hash;
}

// ---- tokens ------------------------------------------------------------------------

Status MemoryStore::put_token(std::string_view token_hash, const TokenRecord& record) {
  if (Status s = check_token_hash(token_hash); !s) return s;
  std::lock_guard lock(state_->mu);
  state_->tokens.insert_or_assign(std::string(token_hash), record);
  return Status::ok();
}

Result<TokenRecord> MemoryStore::get_token(std::string_view token_hash) {
  if (Status s = check_token_hash(token_hash); !s) return s;
  std::lock_guard lock(state_->mu);
  auto it = state_->tokens.find(token_hash);
  if (it == state_->tokens.end()) return Status::not_found("unknown token");
  return it->second;
}

Status MemoryStore::delete_token(std::string_view token_hash) {
  if (Status s = check_token_hash(token_hash); !s) return s;
  std::lock_guard lock(state_->mu);
  auto it = state_->tokens.find(token_hash);
  if (it != state_->tokens.end()) state_->tokens.erase(it);
  return Status::ok();
}

// ---- groups and membership -----------------------------------------------------------

Result<GroupId> MemoryStore::create_group(std::string_view name, UserId owner,
                                          std::span<const UserId> members, std::int64_t now_ms,
                                          std::uint32_t max_members) {
  std::set<UserId> distinct(members.begin(), members.end());
  distinct.insert(owner);
  // The size check comes first: it bounds the work an oversized list costs.
  if (distinct.size() > max_members) {
    return Status::group_full("a group has at most " + std::to_string(max_members) + " members");
  }
  std::lock_guard lock(state_->mu);
  for (UserId u : distinct) {
    if (!state_->user_exists(u)) return Status::not_found(user_label(u) + " not found");
  }
  if (state_->next_group_id > kMaxGroupId) {
    return Status::failed_precondition("all group ids are used");
  }
  GroupId id(state_->next_group_id++);
  State::GroupRecord rec;
  rec.group = Group{id, std::string(name), owner, now_ms};
  for (UserId u : distinct) {
    rec.members.emplace(u, u == owner ? MemberRole::kOwner : MemberRole::kMember);
    state_->user_groups[u].insert(id);
  }
  state_->groups.emplace(id, std::move(rec));
  state_->conversations.try_emplace(ConversationId::group(id), State::Conversation{{}, now_ms});
  return id;
}

Result<Group> MemoryStore::get_group(GroupId id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->groups.find(id);
  if (it == state_->groups.end()) return Status::not_found(group_label(id) + " not found");
  return it->second.group;
}

Result<std::vector<Member>> MemoryStore::group_members(GroupId id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->groups.find(id);
  if (it == state_->groups.end()) return Status::not_found(group_label(id) + " not found");
  std::vector<Member> out;
  out.reserve(it->second.members.size());
  for (const auto& [user, role] : it->second.members) out.push_back(Member{user, role});
  return out;
}

Result<MemberRole> MemoryStore::member_role(GroupId group, UserId user) {
  std::lock_guard lock(state_->mu);
  auto it = state_->groups.find(group);
  if (it == state_->groups.end()) return Status::not_found(group_label(group) + " not found");
  auto m = it->second.members.find(user);
  if (m == it->second.members.end()) {
    return Status::not_found(user_label(user) + " is not a member of " + group_label(group));
  }
  return m->second;
}

Status MemoryStore::add_member(GroupId group, UserId user, MemberRole role,
                               std::uint32_t max_members) {
  // A group has exactly one owner, fixed at creation (Group::owner).
  if (!valid_role(role) || role == MemberRole::kOwner) {
    return Status::invalid_argument("a member is added as kMember or kAdmin");
  }
  std::lock_guard lock(state_->mu);
  auto it = state_->groups.find(group);
  if (it == state_->groups.end()) return Status::not_found(group_label(group) + " not found");
  if (!state_->user_exists(user)) return Status::not_found(user_label(user) + " not found");
  auto& members = it->second.members;
  if (members.count(user) != 0) {
    return Status::already_exists(user_label(user) + " is already a member");
  }
  if (members.size() >= max_members) {
    return Status::group_full(group_label(group) + " has " + std::to_string(members.size()) +
                              " members, the maximum");
  }
  members.emplace(user, role);
  state_->user_groups[user].insert(group);
  return Status::ok();
}

Status MemoryStore::remove_member(GroupId group, UserId user) {
  std::lock_guard lock(state_->mu);
  auto it = state_->groups.find(group);
  if (it == state_->groups.end()) return Status::not_found(group_label(group) + " not found");
  auto& members = it->second.members;
  auto m = members.find(user);
  if (m == members.end()) {
    return Status::not_found(user_label(user) + " is not a member of " + group_label(group));
  }
  if (it->second.group.owner == user) {
    return Status::failed_precondition("the owner cannot be removed from " + group_label(group));
  }
  members.erase(m);
  auto ug = state_->user_groups.find(user);
  if (ug != state_->user_groups.end()) {
    ug->second.erase(group);
    if (ug->second.empty()) state_->user_groups.erase(ug);
  }
  return Status::ok();
}

Result<std::vector<GroupId>> MemoryStore::groups_of(UserId user) {
  std::lock_guard lock(state_->mu);
  auto it = state_->user_groups.find(user);
  if (it == state_->user_groups.end()) return std::vector<GroupId>{};
  return std::vector<GroupId>(it->second.begin(), it->second.end());
}

// ---- contacts ------------------------------------------------------------------------

Status MemoryStore::add_contact(UserId owner, UserId contact, std::int64_t now_ms) {
  if (owner == contact) return Status::invalid_argument("a user cannot add itself as a contact");
  std::lock_guard lock(state_->mu);
  if (!state_->user_exists(owner)) return Status::not_found(user_label(owner) + " not found");
  if (!state_->user_exists(contact)) return Status::not_found(user_label(contact) + " not found");
  auto& list = state_->contacts[owner];
  if (!list.emplace(contact, now_ms).second) {
    return Status::already_exists(user_label(contact) + " is already a contact");
  }
  state_->watchers[contact].insert(owner);
  return Status::ok();
}

Status MemoryStore::remove_contact(UserId owner, UserId contact) {
  std::lock_guard lock(state_->mu);
  auto it = state_->contacts.find(owner);
  if (it == state_->contacts.end() || it->second.erase(contact) == 0) {
    return Status::not_found(user_label(contact) + " is not a contact of " + user_label(owner));
  }
  if (it->second.empty()) state_->contacts.erase(it);
  auto w = state_->watchers.find(contact);
  if (w != state_->watchers.end()) {
    w->second.erase(owner);
    if (w->second.empty()) state_->watchers.erase(w);
  }
  return Status::ok();
}

Result<std::vector<UserId>> MemoryStore::contacts_of(UserId owner) {
  std::lock_guard lock(state_->mu);
  std::vector<UserId> out;
  auto it = state_->contacts.find(owner);
  if (it != state_->contacts.end()) {
    for (const auto& entry : it->second) out.push_back(entry.first);
  }
  return out;
}

Result<std::vector<UserId>> MemoryStore::watchers_of(UserId contact) {
  std::lock_guard lock(state_->mu);
  auto it = state_->watchers.find(contact);
  if (it == state_->watchers.end()) return std::vector<UserId>{};
  return std::vector<UserId>(it->second.begin(), it->second.end());
}

// ---- conversations -------------------------------------------------------------------

Status MemoryStore::touch_direct_conversation(ConversationId conv, std::int64_t now_ms) {
  if (!ConversationId::from_raw(conv.value) || !conv.is_direct()) {
    return Status::invalid_argument("not a direct conversation id: " + std::to_string(conv.value));
  }
  std::lock_guard lock(state_->mu);
  state_->touch_direct(conv, now_ms);
  return Status::ok();
}

Result<std::vector<ConversationId>> MemoryStore::conversations_of(UserId user) {
  std::lock_guard lock(state_->mu);
  std::vector<ConversationId> out;
  if (auto it = state_->user_convs.find(user); it != state_->user_convs.end()) {
    out.assign(it->second.begin(), it->second.end());
  }
  if (auto it = state_->user_groups.find(user); it != state_->user_groups.end()) {
    for (GroupId g : it->second) out.push_back(ConversationId::group(g));
  }
  return out;
}

Result<ConversationState> MemoryStore::conversation_state(ConversationId conv) {
  std::lock_guard lock(state_->mu);
  ConversationState st;
  st.conversation = conv;
  auto it = state_->conversations.find(conv);
  if (it == state_->conversations.end()) return st;
  const auto& c = it->second;
  if (c.messages.empty()) {
    st.last_activity_ms = c.created_at_ms;
  } else {
    const Message& last = *c.messages.back();
    st.last_seq = last.seq;
    st.last_message_id = last.id;
    st.last_activity_ms = last.sent_at_ms;
  }
  return st;
}

// ---- messages ------------------------------------------------------------------------

std::vector<CommitOutcome> MemoryStore::commit(std::span<const NewMessage> batch) {
  std::vector<CommitOutcome> outcomes(batch.size());
  std::lock_guard lock(state_->mu);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const NewMessage& in = batch[i];
    CommitOutcome& out = outcomes[i];
    if (Status s = check_new_message(in); !s) {
      out.status = std::move(s);
      continue;
    }
    // Earlier messages of this batch are already applied, so a duplicate
    // within the batch is found here just like one from an earlier batch.
    State::DedupKey key{in.sender, in.client_msg_id};
    if (auto d = state_->dedup.find(key); d != state_->dedup.end()) {
      out.message = d->second;
      out.duplicate = true;
      continue;
    }
    auto& conv =
        state_->conversations.try_emplace(in.conversation, State::Conversation{{}, in.sent_at_ms})
            .first->second;
    auto msg = std::make_shared<Message>();
    msg->id = in.id;
    msg->conversation = in.conversation;
    msg->seq = conv.messages.size() + 1;
    msg->sender = in.sender;
    msg->client_msg_id = in.client_msg_id;
    msg->body = in.body;
    msg->sent_at_ms = in.sent_at_ms;
    std::shared_ptr<const Message> stored = std::move(msg);
    conv.messages.push_back(stored);
    out.inbox.reserve(in.recipients.size());
    for (UserId r : in.recipients) {
      auto& inbox = state_->inboxes[r];
      inbox.push_back(stored);
      out.inbox.emplace_back(r, inbox.size());
    }
    if (in.conversation.is_direct()) state_->touch_direct(in.conversation, in.sent_at_ms);
    state_->dedup.emplace(key, stored);
    out.message = std::move(stored);
  }
  return outcomes;
}

Result<std::shared_ptr<const Message>> MemoryStore::find_by_client_id(UserId sender,
                                                                      const ClientMsgId& id) {
  std::lock_guard lock(state_->mu);
  auto it = state_->dedup.find(State::DedupKey{sender, id});
  if (it == state_->dedup.end()) {
    return Status::not_found("no message " + id.to_uuid() + " from " + user_label(sender));
  }
  return it->second;
}

Result<std::vector<std::shared_ptr<const Message>>> MemoryStore::history(
    ConversationId conv, const HistoryQuery& query) {
  if (query.before_seq && query.after_seq) {
    return Status::invalid_argument("a history query sets at most one of before/after");
  }
  std::lock_guard lock(state_->mu);
  std::vector<std::shared_ptr<const Message>> out;
  auto it = state_->conversations.find(conv);
  if (it == state_->conversations.end() || query.limit == 0) return out;
  const auto& msgs = it->second.messages;
  const std::uint64_t last = msgs.size();
  // [first, end) in seq terms; seqs are dense, so seq s is msgs[s - 1].
  std::uint64_t first = 1;
  std::uint64_t end = last + 1;
  if (query.after_seq) {
    if (*query.after_seq >= last) return out;
    first = *query.after_seq + 1;
    end = std::min<std::uint64_t>(end, first + query.limit);
  } else {
    if (query.before_seq) end = std::min<std::uint64_t>(end, *query.before_seq);
    if (end <= 1) return out;
    first = end - std::min<std::uint64_t>(end - 1, query.limit);
  }
  out.assign(msgs.begin() + static_cast<std::ptrdiff_t>(first - 1),
             msgs.begin() + static_cast<std::ptrdiff_t>(end - 1));
  return out;
}

// ---- inboxes and cursors ---------------------------------------------------------------

Result<std::vector<InboxItem>> MemoryStore::read_inbox(UserId user, std::uint64_t after,
                                                       std::uint32_t limit) {
  std::lock_guard lock(state_->mu);
  std::vector<InboxItem> out;
  auto it = state_->inboxes.find(user);
  if (it == state_->inboxes.end()) return out;
  const auto& inbox = it->second;
  for (std::uint64_t seq = after + 1; seq <= inbox.size() && out.size() < limit; ++seq) {
    out.push_back(InboxItem{seq, inbox[seq - 1]});
  }
  return out;
}

Result<std::uint64_t> MemoryStore::inbox_head(UserId user) {
  std::lock_guard lock(state_->mu);
  auto it = state_->inboxes.find(user);
  return it == state_->inboxes.end() ? std::uint64_t{0} : std::uint64_t{it->second.size()};
}

Status MemoryStore::set_device_cursor(UserId user, std::string_view device_id,
                                      std::uint64_t inbox_seq) {
  if (Status s = check_device_id(device_id); !s) return s;
  std::lock_guard lock(state_->mu);
  state_->device_cursors[user].insert_or_assign(std::string(device_id), inbox_seq);
  return Status::ok();
}

Result<std::uint64_t> MemoryStore::device_cursor(UserId user, std::string_view device_id) {
  if (Status s = check_device_id(device_id); !s) return s;
  std::lock_guard lock(state_->mu);
  auto it = state_->device_cursors.find(user);
  if (it == state_->device_cursors.end()) return std::uint64_t{0};
  auto d = it->second.find(device_id);
  return d == it->second.end() ? std::uint64_t{0} : d->second;
}

Status MemoryStore::set_read_cursor(UserId user, ConversationId conv, std::uint64_t seq) {
  std::lock_guard lock(state_->mu);
  auto& cursor = state_->read_cursors[{user, conv}];
  cursor = std::max(cursor, seq);
  return Status::ok();
}

Result<std::uint64_t> MemoryStore::read_cursor(UserId user, ConversationId conv) {
  std::lock_guard lock(state_->mu);
  auto it = state_->read_cursors.find({user, conv});
  return it == state_->read_cursors.end() ? std::uint64_t{0} : it->second;
}

// ---- presence ----------------------------------------------------------------------------

Status MemoryStore::set_last_seen(UserId user, std::int64_t at_ms) {
  std::lock_guard lock(state_->mu);
  state_->last_seen.insert_or_assign(user, at_ms);
  return Status::ok();
}

Result<std::int64_t> MemoryStore::last_seen(UserId user) {
  std::lock_guard lock(state_->mu);
  auto it = state_->last_seen.find(user);
  if (it == state_->last_seen.end()) return Status::not_found(user_label(user) + " never seen");
  return it->second;
}

}  // namespace chatcore
