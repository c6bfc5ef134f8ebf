// MemoryStore: a complete Store held in process memory.
//
// For tests, examples and applications that keep chat state elsewhere or not
// at all. It has every behaviour of the durable stores (it passes the same
// conformance suite) except durability: everything is gone with the object.
//
// Thread-safety: every method may be called from any thread (one mutex).
#pragma once

#include <memory>

#include "chatcore/store.hpp"

namespace chatcore {

class MemoryStore final : public Store {
 public:
  MemoryStore();
  ~MemoryStore() override;

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
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace chatcore
