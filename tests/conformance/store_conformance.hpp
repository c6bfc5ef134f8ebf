// The Store conformance suite: the one set of cases every backend passes.
//
// Written once as a doctest templated test case over a fixture type, and
// instantiated per backend (memory_store_test.cpp, lmdb_store_test.cpp):
//
//   struct MyFixture {
//     MyFixture();            // a fresh, empty store
//     chatcore::Store& store();
//   };
//   TYPE_TO_STRING(MyFixture);
//   TEST_CASE_TEMPLATE_INVOKE(store_conformance, MyFixture);
//
// Each SUBCASE is a leaf, and doctest re-runs the test case from the top
// for every leaf, so every SUBCASE gets its own fixture (a fresh store).
// The suite tests the contract in store.hpp and nothing backend-specific;
// durability, reopening and map growth are in the backend's own file.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "chatcore/store.hpp"

namespace doctest {
template <>
struct StringMaker<chatcore::ErrorCode> {
  static String convert(chatcore::ErrorCode code) { return chatcore::error_code_name(code); }
};
template <typename Tag>
struct StringMaker<chatcore::Id<Tag>> {
  static String convert(chatcore::Id<Tag> id) { return std::to_string(id.value).c_str(); }
};
template <>
struct StringMaker<chatcore::ConversationId> {
  static String convert(chatcore::ConversationId id) {
    return ("conv:" + std::to_string(id.value)).c_str();
  }
};
// Seq lists, so a failed page comparison shows the seqs.
template <>
struct StringMaker<std::vector<std::uint64_t>> {
  static String convert(const std::vector<std::uint64_t>& v) {
    std::string out = "[";
    for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
    return (out + "]").c_str();
  }
};
template <>
struct StringMaker<chatcore::MemberRole> {
  static String convert(chatcore::MemberRole role) {
    return std::to_string(static_cast<int>(role)).c_str();
  }
};
}  // namespace doctest

namespace chatcore::conformance {

inline const Status& status_of(const Status& s) { return s; }
template <typename T>
Status status_of(const Result<T>& r) {
  return r.status();
}
template <typename T>
ErrorCode code_of(const T& status_or_result) {
  return status_of(status_or_result).code();
}

// Assert OK, printing the error (code and backend message) when it is not.
#define CC_REQUIRE_OK(expr)                                                        \
  do {                                                                             \
    const auto& cc_ok_value_ = (expr);                                             \
    REQUIRE_MESSAGE(cc_ok_value_.is_ok(),                                          \
                    ::chatcore::conformance::status_of(cc_ok_value_).to_string()); \
  } while (0)
#define CC_CHECK_OK(expr)                                                        \
  do {                                                                           \
    const auto& cc_ok_value_ = (expr);                                           \
    CHECK_MESSAGE(cc_ok_value_.is_ok(),                                          \
                  ::chatcore::conformance::status_of(cc_ok_value_).to_string()); \
  } while (0)

// A client message id that encodes n (distinct n, distinct ids).
inline ClientMsgId client_id(std::uint64_t n) {
  ClientMsgId id;
  for (int i = 0; i < 8; ++i) id.bytes[static_cast<std::size_t>(i)] = (n >> (56 - 8 * i)) & 0xff;
  id.bytes[15] = 0xc1;
  return id;
}

inline UserId add_user(Store& store, const std::string& name) {
  NewUser u;
  u.name = name;
  u.created_at_ms = 1'000;
  auto r = store.create_user(u);
  CC_REQUIRE_OK(r);
  return *r;
}

// Builds NewMessages with fresh message ids and client ids.
class MessageMaker {
 public:
  NewMessage operator()(ConversationId conv, UserId sender, std::vector<UserId> recipients,
                        std::string body = {}) {
    std::uint64_t n = next_++;
    NewMessage m;
    m.id = MessageId(1'000'000 + n);
    m.conversation = conv;
    m.sender = sender;
    m.client_msg_id = client_id(n);
    m.body = body.empty() ? "message " + std::to_string(n) : std::move(body);
    m.sent_at_ms = static_cast<std::int64_t>(10'000 + n);
    m.recipients = std::move(recipients);
    return m;
  }

 private:
  std::uint64_t next_ = 1;
};

inline CommitOutcome commit_one(Store& store, const NewMessage& m) {
  auto out = store.commit(std::span<const NewMessage>(&m, 1));
  REQUIRE(out.size() == 1);
  CC_REQUIRE_OK(out[0].status);
  REQUIRE(out[0].message != nullptr);
  return out[0];
}

inline std::vector<std::uint64_t> seqs_of(const std::vector<std::shared_ptr<const Message>>& page) {
  std::vector<std::uint64_t> out;
  for (const auto& m : page) out.push_back(m->seq);
  return out;
}

inline std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t last) {
  std::vector<std::uint64_t> out;
  for (std::uint64_t s = first; s <= last; ++s) out.push_back(s);
  return out;
}

inline std::vector<std::shared_ptr<const Message>> page(Store& store, ConversationId conv,
                                                        std::optional<std::uint64_t> before,
                                                        std::optional<std::uint64_t> after,
                                                        std::uint32_t limit) {
  HistoryQuery q;
  q.before_seq = before;
  q.after_seq = after;
  q.limit = limit;
  auto r = store.history(conv, q);
  CC_REQUIRE_OK(r);
  return *r;
}

inline void check_same_message(const Message& got, const NewMessage& sent, std::uint64_t seq) {
  CHECK(got.id == sent.id);
  CHECK(got.conversation == sent.conversation);
  CHECK(got.seq == seq);
  CHECK(got.sender == sent.sender);
  CHECK(got.client_msg_id == sent.client_msg_id);
  CHECK(got.body == sent.body);
  CHECK(got.sent_at_ms == sent.sent_at_ms);
}

inline std::vector<ConversationId> sorted(std::vector<ConversationId> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// The cases, one function per SUBCASE: small functions keep compile time
// (and memory) reasonable under -O2 -g and the sanitizers.
namespace cases {

// users: ids are 1, 2, 3; names are unique byte-wise; lookups
inline void users_ids_names_lookups(Store& store) {
  NewUser alice;
  alice.name = "alice";
  alice.display_name = "Alice A.";
  alice.email = "alice@example.com";
  alice.phone = "+1 555 0100";
  alice.created_at_ms = 1'700'000'000'000;
  auto first = store.create_user(alice);
  CC_REQUIRE_OK(first);
  CHECK(first->value == 1);
  CHECK(add_user(store, "bob").value == 2);
  CHECK(add_user(store, "carol").value == 3);

  NewUser again;
  again.name = "alice";
  CHECK(code_of(store.create_user(again)) == ErrorCode::kAlreadyExists);
  // Byte-wise comparison: "Alice" is another name. The failed create above
  // consumed no id.
  CHECK(add_user(store, "Alice").value == 4);
  CHECK(add_user(store, std::string("nul\0byte", 8)).value == 5);
  CHECK(add_user(store, std::string(64, 'x')).value == 6);
  NewUser bad;
  CHECK(code_of(store.create_user(bad)) == ErrorCode::kInvalidArgument);
  bad.name = std::string(65, 'x');
  CHECK(code_of(store.create_user(bad)) == ErrorCode::kInvalidArgument);

  auto got = store.get_user(UserId(1));
  CC_REQUIRE_OK(got);
  CHECK(got->id == UserId(1));
  CHECK(got->name == "alice");
  CHECK(got->display_name == "Alice A.");
  CHECK(got->email == "alice@example.com");
  CHECK(got->phone == "+1 555 0100");
  CHECK(got->about.empty());
  CHECK(got->image_url.empty());
  CHECK(got->created_at_ms == 1'700'000'000'000);
  // display_name defaults to the name.
  CHECK(store.get_user(UserId(2))->display_name == "bob");

  auto by_name = store.find_user_by_name("bob");
  CC_REQUIRE_OK(by_name);
  CHECK(by_name->id == UserId(2));
  CHECK(store.find_user_by_name(std::string("nul\0byte", 8))->id == UserId(5));
  CHECK(code_of(store.find_user_by_name("nobody")) == ErrorCode::kNotFound);
  CHECK(code_of(store.find_user_by_name("ALICE")) == ErrorCode::kNotFound);
  CHECK(code_of(store.find_user_by_name("")) == ErrorCode::kNotFound);
  CHECK(code_of(store.get_user(UserId(99))) == ErrorCode::kNotFound);
  CHECK(code_of(store.get_user(UserId())) == ErrorCode::kNotFound);
}

// users: a profile update changes only the given fields
inline void users_profile_update(Store& store) {
  UserId a = add_user(store, "alice");
  ProfileUpdate up;
  up.about = "hello";
  CC_REQUIRE_OK(store.update_profile(a, up));
  auto u = store.get_user(a);
  CC_REQUIRE_OK(u);
  CHECK(u->about == "hello");
  CHECK(u->display_name == "alice");
  CHECK(u->image_url.empty());

  ProfileUpdate up2;
  up2.display_name = "Alice";
  up2.image_url = "https://example.com/a.png";
  CC_REQUIRE_OK(store.update_profile(a, up2));
  u = store.get_user(a);
  CHECK(u->display_name == "Alice");
  CHECK(u->image_url == "https://example.com/a.png");
  CHECK(u->about == "hello");
  CHECK(u->name == "alice");

  ProfileUpdate clear;
  clear.about = "";
  CC_REQUIRE_OK(store.update_profile(a, clear));
  CHECK(store.get_user(a)->about.empty());
  CHECK(code_of(store.update_profile(UserId(42), up)) == ErrorCode::kNotFound);
}

// users: password hash
inline void users_password_hash(Store& store) {
  UserId a = add_user(store, "alice");
  UserId b = add_user(store, "bob");
  CHECK(code_of(store.get_password_hash(a)) == ErrorCode::kNotFound);
  const std::string hash = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA";
  CC_REQUIRE_OK(store.set_password_hash(a, hash));
  auto got = store.get_password_hash(a);
  CC_REQUIRE_OK(got);
  CHECK(*got == hash);
  CHECK(code_of(store.get_password_hash(b)) == ErrorCode::kNotFound);
  CC_REQUIRE_OK(store.set_password_hash(a, "second"));
  CHECK(*store.get_password_hash(a) == "second");
  CHECK(code_of(store.set_password_hash(UserId(9), hash)) == ErrorCode::kNotFound);
  CHECK(code_of(store.get_password_hash(UserId(9))) == ErrorCode::kNotFound);
}

// tokens: put, get, delete (idempotent)
inline void tokens(Store& store) {
  const std::string h1(32, '\x01');
  const std::string h2 = std::string("\0\xff token", 8);
  CHECK(code_of(store.get_token(h1)) == ErrorCode::kNotFound);
  CC_REQUIRE_OK(store.put_token(h1, TokenRecord{UserId(1), 5'000}));
  CC_REQUIRE_OK(store.put_token(h2, TokenRecord{UserId(2), 6'000}));
  auto t1 = store.get_token(h1);
  CC_REQUIRE_OK(t1);
  CHECK(t1->user == UserId(1));
  CHECK(t1->expires_at_ms == 5'000);
  CHECK(store.get_token(h2)->user == UserId(2));
  // put replaces.
  CC_REQUIRE_OK(store.put_token(h1, TokenRecord{UserId(1), 7'000}));
  CHECK(store.get_token(h1)->expires_at_ms == 7'000);

  CC_REQUIRE_OK(store.delete_token(h1));
  CHECK(code_of(store.get_token(h1)) == ErrorCode::kNotFound);
  CC_CHECK_OK(store.delete_token(h1));
  CC_CHECK_OK(store.delete_token("never-issued"));
  CHECK(store.get_token(h2)->user == UserId(2));

  CHECK(code_of(store.put_token("", TokenRecord{UserId(1), 0})) == ErrorCode::kInvalidArgument);
  CHECK(code_of(store.put_token(std::string(257, 'h'), TokenRecord{UserId(1), 0})) ==
        ErrorCode::kInvalidArgument);
  CC_CHECK_OK(store.put_token(std::string(256, 'h'), TokenRecord{UserId(3), 0}));
  CHECK(store.get_token(std::string(256, 'h'))->user == UserId(3));
}

// groups: create (owner always kOwner, members deduplicated, atomic)
inline void groups_create(Store& store) {
  UserId a = add_user(store, "alice");
  UserId b = add_user(store, "bob");
  UserId c = add_user(store, "carol");
  std::vector<UserId> members = {c, b, b, a, c};  // owner listed, duplicates
  auto g = store.create_group("friends", a, members, 5'000, 100);
  CC_REQUIRE_OK(g);
  CHECK(g->value == 1);
  auto group = store.get_group(*g);
  CC_REQUIRE_OK(group);
  CHECK(group->id == *g);
  CHECK(group->name == "friends");
  CHECK(group->owner == a);
  CHECK(group->created_at_ms == 5'000);
  auto listed = store.group_members(*g);
  CC_REQUIRE_OK(listed);
  CHECK(*listed == std::vector<Member>{{a, MemberRole::kOwner},
                                       {b, MemberRole::kMember},
                                       {c, MemberRole::kMember}});
  CHECK(*store.member_role(*g, a) == MemberRole::kOwner);
  CHECK(*store.member_role(*g, b) == MemberRole::kMember);

  // The owner alone is a valid group; an owner not in the list is added.
  auto solo = store.create_group("solo", b, {}, 6'000, 100);
  CC_REQUIRE_OK(solo);
  CHECK(solo->value == 2);
  CHECK(*store.group_members(*solo) == std::vector<Member>{{b, MemberRole::kOwner}});

  // An unknown member or owner: kNotFound, nothing created.
  std::vector<UserId> with_unknown = {b, UserId(77)};
  CHECK(code_of(store.create_group("x", a, with_unknown, 7'000, 100)) == ErrorCode::kNotFound);
  CHECK(code_of(store.create_group("x", UserId(78), {}, 7'000, 100)) == ErrorCode::kNotFound);
  CHECK(code_of(store.get_group(GroupId(3))) == ErrorCode::kNotFound);
  CHECK(*store.groups_of(a) == std::vector<GroupId>{GroupId(1)});
  CHECK(*store.groups_of(b) == std::vector<GroupId>{GroupId(1), GroupId(2)});
  auto third = store.create_group("third", c, {}, 8'000, 100);
  CC_REQUIRE_OK(third);
  CHECK(third->value == 3);

  CHECK(code_of(store.get_group(GroupId(99))) == ErrorCode::kNotFound);
  CHECK(code_of(store.group_members(GroupId(99))) == ErrorCode::kNotFound);
  CHECK(code_of(store.member_role(GroupId(99), a)) == ErrorCode::kNotFound);
  CHECK(store.groups_of(UserId(99))->empty());
}

// groups: the member cap (kGroupFull) on create and on add_member
inline void groups_member_cap(Store& store) {
  std::vector<UserId> users;
  for (int i = 0; i < 102; ++i) users.push_back(add_user(store, "u" + std::to_string(i)));
  UserId owner = users[0];
  // 100 distinct members including the owner fit; duplicates do not count.
  std::vector<UserId> hundred(users.begin() + 1, users.begin() + 100);
  hundred.push_back(owner);
  hundred.push_back(users[5]);
  auto full = store.create_group("full", owner, hundred, 1, 100);
  CC_REQUIRE_OK(full);
  CHECK(store.group_members(*full)->size() == 100);
  // 101 distinct: refused, nothing created.
  std::vector<UserId> too_many(users.begin() + 1, users.begin() + 101);
  CHECK(code_of(store.create_group("over", owner, too_many, 1, 100)) == ErrorCode::kGroupFull);
  CHECK(code_of(store.get_group(GroupId(2))) == ErrorCode::kNotFound);
  CHECK(store.groups_of(users[100])->empty());

  CHECK(code_of(store.add_member(*full, users[100], MemberRole::kMember, 100)) ==
        ErrorCode::kGroupFull);
  CHECK(code_of(store.member_role(*full, users[100])) == ErrorCode::kNotFound);
  // A member already present is reported as such even in a full group.
  CHECK(code_of(store.add_member(*full, users[3], MemberRole::kMember, 100)) ==
        ErrorCode::kAlreadyExists);
  // A removal makes room again.
  CC_REQUIRE_OK(store.remove_member(*full, users[7]));
  CC_REQUIRE_OK(store.add_member(*full, users[100], MemberRole::kMember, 100));
  CHECK(store.group_members(*full)->size() == 100);
  // The cap is the caller's: a smaller one applies to the same group.
  auto small = store.create_group("small", owner, std::vector<UserId>{users[1]}, 1, 3);
  CC_REQUIRE_OK(small);
  CC_REQUIRE_OK(store.add_member(*small, users[2], MemberRole::kAdmin, 3));
  CHECK(code_of(store.add_member(*small, users[3], MemberRole::kMember, 3)) ==
        ErrorCode::kGroupFull);
}

// groups: add_member, member_role, remove_member, groups_of
inline void groups_membership(Store& store) {
  UserId a = add_user(store, "alice");
  UserId b = add_user(store, "bob");
  UserId c = add_user(store, "carol");
  UserId d = add_user(store, "dave");
  auto g = store.create_group("g", a, std::vector<UserId>{b}, 1, 100);
  CC_REQUIRE_OK(g);
  CC_REQUIRE_OK(store.add_member(*g, c, MemberRole::kAdmin, 100));
  CHECK(*store.member_role(*g, c) == MemberRole::kAdmin);
  CHECK(code_of(store.add_member(*g, c, MemberRole::kMember, 100)) == ErrorCode::kAlreadyExists);
  CHECK(code_of(store.add_member(*g, a, MemberRole::kMember, 100)) == ErrorCode::kAlreadyExists);
  CHECK(code_of(store.add_member(*g, UserId(50), MemberRole::kMember, 100)) ==
        ErrorCode::kNotFound);
  CHECK(code_of(store.add_member(GroupId(50), d, MemberRole::kMember, 100)) ==
        ErrorCode::kNotFound);
  // A group has one owner, fixed at creation.
  CHECK(code_of(store.add_member(*g, d, MemberRole::kOwner, 100)) == ErrorCode::kInvalidArgument);
  CHECK(code_of(store.member_role(*g, d)) == ErrorCode::kNotFound);
  CHECK(*store.group_members(*g) == std::vector<Member>{{a, MemberRole::kOwner},
                                                        {b, MemberRole::kMember},
                                                        {c, MemberRole::kAdmin}});

  auto g2 = store.create_group("g2", c, std::vector<UserId>{b}, 2, 100);
  CC_REQUIRE_OK(g2);
  CHECK(*store.groups_of(b) == std::vector<GroupId>{*g, *g2});
  CHECK(*store.groups_of(c) == std::vector<GroupId>{*g, *g2});
  CHECK(store.groups_of(d)->empty());

  CC_REQUIRE_OK(store.remove_member(*g, b));
  CHECK(code_of(store.member_role(*g, b)) == ErrorCode::kNotFound);
  CHECK(*store.groups_of(b) == std::vector<GroupId>{*g2});
  CHECK(code_of(store.remove_member(*g, b)) == ErrorCode::kNotFound);
  CHECK(code_of(store.remove_member(*g, d)) == ErrorCode::kNotFound);
  CHECK(code_of(store.remove_member(GroupId(50), b)) == ErrorCode::kNotFound);
  CHECK(code_of(store.remove_member(*g, a)) == ErrorCode::kFailedPrecondition);
  CHECK(*store.member_role(*g, a) == MemberRole::kOwner);
  // An admin can be removed; a removed member can come back.
  CC_REQUIRE_OK(store.remove_member(*g, c));
  CC_REQUIRE_OK(store.add_member(*g, b, MemberRole::kMember, 100));
  CHECK(*store.group_members(*g) ==
        std::vector<Member>{{a, MemberRole::kOwner}, {b, MemberRole::kMember}});
  CHECK(*store.groups_of(b) == std::vector<GroupId>{*g, *g2});
  CHECK(*store.groups_of(c) == std::vector<GroupId>{*g2});
}

// contacts and watchers, both directions
inline void contacts_and_watchers(Store& store) {
  UserId a = add_user(store, "alice");
  UserId b = add_user(store, "bob");
  UserId c = add_user(store, "carol");
  CC_REQUIRE_OK(store.add_contact(a, c, 1));
  CC_REQUIRE_OK(store.add_contact(a, b, 2));
  CC_REQUIRE_OK(store.add_contact(c, b, 3));
  CHECK(*store.contacts_of(a) == std::vector<UserId>{b, c});
  CHECK(*store.contacts_of(c) == std::vector<UserId>{b});
  CHECK(store.contacts_of(b)->empty());
  CHECK(*store.watchers_of(b) == std::vector<UserId>{a, c});
  CHECK(*store.watchers_of(c) == std::vector<UserId>{a});
  CHECK(store.watchers_of(a)->empty());

  CHECK(code_of(store.add_contact(a, b, 4)) == ErrorCode::kAlreadyExists);
  CHECK(code_of(store.add_contact(a, a, 4)) == ErrorCode::kInvalidArgument);
  CHECK(code_of(store.add_contact(a, UserId(40), 4)) == ErrorCode::kNotFound);
  CHECK(code_of(store.add_contact(UserId(40), a, 4)) == ErrorCode::kNotFound);
  CHECK(store.watchers_of(UserId(40))->empty());

  CC_REQUIRE_OK(store.remove_contact(a, b));
  CHECK(*store.contacts_of(a) == std::vector<UserId>{c});
  CHECK(*store.watchers_of(b) == std::vector<UserId>{c});
  CHECK(code_of(store.remove_contact(a, b)) == ErrorCode::kNotFound);
  CHECK(code_of(store.remove_contact(b, a)) == ErrorCode::kNotFound);
  // Directed: c's entry for b is untouched; a may add b again.
  CC_REQUIRE_OK(store.add_contact(a, b, 5));
  CHECK(*store.watchers_of(b) == std::vector<UserId>{a, c});
}

// conversations_of and conversation_state
inline void conversations(Store& store) {
  MessageMaker make;
  UserId a = add_user(store, "alice");
  UserId b = add_user(store, "bob");
  UserId c = add_user(store, "carol");
  ConversationId ab = ConversationId::direct(a, b);
  ConversationId bc = ConversationId::direct(c, b);
  CHECK(store.conversations_of(a)->empty());

  // Unknown conversation: no messages, not an error.
  auto none = store.conversation_state(ab);
  CC_REQUIRE_OK(none);
  CHECK(none->conversation == ab);
  CHECK(none->last_seq == 0);
  CHECK(!none->last_message_id.valid());

  CC_REQUIRE_OK(store.touch_direct_conversation(ab, 2'000));
  CC_REQUIRE_OK(store.touch_direct_conversation(ab, 3'000));  // idempotent
  CHECK(*store.conversations_of(a) == std::vector<ConversationId>{ab});
  CHECK(*store.conversations_of(b) == std::vector<ConversationId>{ab});
  CHECK(store.conversations_of(c)->empty());
  auto touched = store.conversation_state(ab);
  CHECK(touched->last_seq == 0);
  CHECK(touched->last_activity_ms == 2'000);  // creation time, kept by later touches
  CHECK(code_of(store.touch_direct_conversation(ConversationId::group(GroupId(1)), 1)) ==
        ErrorCode::kInvalidArgument);
  CHECK(code_of(store.touch_direct_conversation(ConversationId(), 1)) ==
        ErrorCode::kInvalidArgument);

  // A message in an untouched direct conversation lists it for both sides.
  NewMessage m = make(bc, c, {b, c});
  auto out = commit_one(store, m);
  CHECK(sorted(*store.conversations_of(b)) == sorted({ab, bc}));
  CHECK(*store.conversations_of(c) == std::vector<ConversationId>{bc});
  auto st = store.conversation_state(bc);
  CC_REQUIRE_OK(st);
  CHECK(st->last_seq == 1);
  CHECK(st->last_message_id == m.id);
  CHECK(st->last_activity_ms == m.sent_at_ms);

  // Groups are listed while the user is a member.
  auto g = store.create_group("g", a, std::vector<UserId>{c}, 4'000, 100);
  CC_REQUIRE_OK(g);
  ConversationId gc = ConversationId::group(*g);
  CHECK(sorted(*store.conversations_of(a)) == sorted({ab, gc}));
  CHECK(sorted(*store.conversations_of(c)) == sorted({bc, gc}));
  auto gst = store.conversation_state(gc);
  CHECK(gst->last_seq == 0);
  CHECK(gst->last_activity_ms == 4'000);
  CC_REQUIRE_OK(store.remove_member(*g, c));
  CHECK(*store.conversations_of(c) == std::vector<ConversationId>{bc});
  CC_REQUIRE_OK(store.add_member(*g, b, MemberRole::kMember, 100));
  CHECK(sorted(*store.conversations_of(b)) == sorted({ab, bc, gc}));
  // Touching again after messages changes nothing.
  CC_REQUIRE_OK(store.touch_direct_conversation(bc, 99'000));
  CHECK(store.conversation_state(bc)->last_seq == 1);
  CHECK(store.conversation_state(bc)->last_activity_ms == m.sent_at_ms);
}

// commit: seqs dense per conversation, inbox seqs dense per user, sender included
inline void commit_dense_seqs(Store& store) {
  MessageMaker make;
  UserId a = add_user(store, "alice");
  UserId b = add_user(store, "bob");
  UserId c = add_user(store, "carol");
  ConversationId ab = ConversationId::direct(a, b);
  auto g = store.create_group("g", a, std::vector<UserId>{b, c}, 1, 100);
  CC_REQUIRE_OK(g);
  ConversationId gc = ConversationId::group(*g);

  std::vector<NewMessage> batch = {make(ab, a, {a, b}), make(gc, b, {a, b, c}), make(ab, b, {b, a}),
                                   make(gc, c, {c, a, b})};
  auto out = store.commit(batch);
  REQUIRE(out.size() == 4);
  for (const auto& o : out) {
    CC_REQUIRE_OK(o.status);
    REQUIRE(o.message != nullptr);
    CHECK(!o.duplicate);
  }
  check_same_message(*out[0].message, batch[0], 1);
  check_same_message(*out[1].message, batch[1], 1);
  check_same_message(*out[2].message, batch[2], 2);
  check_same_message(*out[3].message, batch[3], 2);
  using Inbox = std::vector<std::pair<UserId, std::uint64_t>>;
  CHECK(out[0].inbox == Inbox{{a, 1}, {b, 1}});
  CHECK(out[1].inbox == Inbox{{a, 2}, {b, 2}, {c, 1}});
  CHECK(out[2].inbox == Inbox{{b, 3}, {a, 3}});
  CHECK(out[3].inbox == Inbox{{c, 2}, {a, 4}, {b, 4}});
  CHECK(*store.inbox_head(a) == 4);
  CHECK(*store.inbox_head(b) == 4);
  CHECK(*store.inbox_head(c) == 2);

  // The sender's own inbox holds its message (for its other devices).
  auto inbox_c = store.read_inbox(c, 0, 10);
  CC_REQUIRE_OK(inbox_c);
  REQUIRE(inbox_c->size() == 2);
  CHECK((*inbox_c)[1].message->sender == c);
  check_same_message(*(*inbox_c)[1].message, batch[3], 2);

  // A second batch continues both sequences.
  std::vector<NewMessage> next = {make(gc, a, {a, b, c})};
  auto out2 = store.commit(next);
  CC_REQUIRE_OK(out2[0].status);
  CHECK(out2[0].message->seq == 3);
  CHECK(out2[0].inbox == Inbox{{a, 5}, {b, 5}, {c, 3}});
  CHECK(store.commit(std::span<const NewMessage>()).empty());
}

// commit: a batch of many messages across conversations
inline void commit_many_messages(Store& store) {
  MessageMaker make;
  std::vector<UserId> users;
  for (int i = 0; i < 5; ++i) users.push_back(add_user(store, "u" + std::to_string(i)));
  auto g = store.create_group("g", users[0], users, 1, 100);
  CC_REQUIRE_OK(g);
  std::vector<ConversationId> convs = {
      ConversationId::direct(users[0], users[1]), ConversationId::direct(users[0], users[2]),
      ConversationId::direct(users[1], users[2]), ConversationId::direct(users[3], users[4]),
      ConversationId::group(*g)};
  std::vector<NewMessage> batch;
  for (int i = 0; i < 200; ++i) {
    ConversationId conv = convs[static_cast<std::size_t>(i * 7 % 5)];
    std::vector<UserId> rcpt =
        conv.is_group() ? users : std::vector<UserId>{conv.low_user(), conv.high_user()};
    UserId sender = rcpt[static_cast<std::size_t>(i) % rcpt.size()];
    batch.push_back(make(conv, sender, rcpt, "body " + std::to_string(i)));
  }
  auto out = store.commit(batch);
  REQUIRE(out.size() == batch.size());
  std::map<ConversationId, std::uint64_t> conv_seq;
  std::map<UserId, std::vector<std::pair<ConversationId, std::uint64_t>>> inbox;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    CC_REQUIRE_OK(out[i].status);
    std::uint64_t seq = ++conv_seq[batch[i].conversation];
    check_same_message(*out[i].message, batch[i], seq);
    REQUIRE(out[i].inbox.size() == batch[i].recipients.size());
    for (std::size_t r = 0; r < batch[i].recipients.size(); ++r) {
      UserId u = batch[i].recipients[r];
      inbox[u].emplace_back(batch[i].conversation, seq);
      CHECK(out[i].inbox[r] == std::make_pair(u, std::uint64_t{inbox[u].size()}));
    }
  }
  for (ConversationId conv : convs) {
    auto all = page(store, conv, std::nullopt, std::uint64_t{0}, 1000);
    CHECK(seqs_of(all) == range(1, conv_seq[conv]));
    CHECK(store.conversation_state(conv)->last_seq == conv_seq[conv]);
  }
  for (UserId u : users) {
    auto items = store.read_inbox(u, 0, 1000);
    CC_REQUIRE_OK(items);
    REQUIRE(items->size() == inbox[u].size());
    for (std::size_t k = 0; k < items->size(); ++k) {
      CHECK((*items)[k].inbox_seq == k + 1);
      CHECK((*items)[k].message->conversation == inbox[u][k].first);
      CHECK((*items)[k].message->seq == inbox[u][k].second);
    }
    CHECK(*store.inbox_head(u) == inbox[u].size());
  }
}

// commit: a duplicate client id returns the original and stores nothing
inline void commit_duplicates(Store& store) {
  MessageMaker make;
  UserId a = add_user(store, "alice");
  UserId b = add_user(store, "bob");
  ConversationId ab = ConversationId::direct(a, b);
  NewMessage original = make(ab, a, {a, b}, "original");
  auto first = commit_one(store, original);
  CHECK(first.message->seq == 1);

  // Across batches: a resend (new Snowflake, even a new body) is the original.
  NewMessage resend = original;
  resend.id = MessageId(999);
  resend.body = "resent";
  NewMessage other = make(ab, b, {a, b});
  std::vector<NewMessage> batch2 = {resend, other};
  auto out2 = store.commit(batch2);
  CC_REQUIRE_OK(out2[0].status);
  CHECK(out2[0].duplicate);
  check_same_message(*out2[0].message, original, 1);
  CHECK(out2[0].inbox.empty());
  CC_REQUIRE_OK(out2[1].status);
  CHECK(!out2[1].duplicate);
  CHECK(out2[1].message->seq == 2);  // the duplicate consumed no seq
  CHECK(out2[1].inbox == std::vector<std::pair<UserId, std::uint64_t>>{{a, 2}, {b, 2}});

  // Within one batch: the second copy is a duplicate of the first.
  NewMessage twice = make(ab, b, {a, b}, "twice");
  NewMessage twice_again = twice;
  twice_again.id = MessageId(998);
  std::vector<NewMessage> batch3 = {twice, twice_again, make(ab, a, {a, b})};
  auto out3 = store.commit(batch3);
  CC_REQUIRE_OK(out3[0].status);
  CHECK(!out3[0].duplicate);
  CHECK(out3[0].message->seq == 3);
  CC_REQUIRE_OK(out3[1].status);
  CHECK(out3[1].duplicate);
  check_same_message(*out3[1].message, twice, 3);
  CHECK(out3[1].inbox.empty());
  CHECK(out3[2].message->seq == 4);
  CHECK(out3[2].inbox == std::vector<std::pair<UserId, std::uint64_t>>{{a, 4}, {b, 4}});

  // Nothing of the duplicates was stored.
  CHECK(store.conversation_state(ab)->last_seq == 4);
  CHECK(*store.inbox_head(a) == 4);
  CHECK(*store.inbox_head(b) == 4);
  auto all = page(store, ab, std::nullopt, std::nullopt, 100);
  CHECK(seqs_of(all) == range(1, 4));
  CHECK(all[0]->body == "original");

  // The key is (sender, client id): another sender may reuse the bytes.
  NewMessage same_bytes_other_sender = make(ab, b, {a, b});
  same_bytes_other_sender.client_msg_id = original.client_msg_id;
  auto other_sender = commit_one(store, same_bytes_other_sender);
  CHECK(!other_sender.duplicate);
  CHECK(other_sender.message->seq == 5);

  auto found = store.find_by_client_id(a, original.client_msg_id);
  CC_REQUIRE_OK(found);
  check_same_message(**found, original, 1);
  auto found_b = store.find_by_client_id(b, original.client_msg_id);
  CC_REQUIRE_OK(found_b);
  CHECK((*found_b)->seq == 5);
  CHECK(code_of(store.find_by_client_id(a, client_id(424242))) == ErrorCode::kNotFound);
  CHECK(code_of(store.find_by_client_id(UserId(77), original.client_msg_id)) ==
        ErrorCode::kNotFound);
}

// commit: a malformed message fails alone and stores nothing
inline void commit_malformed(Store& store) {
  MessageMaker make;
  UserId a = add_user(store, "alice");
  UserId b = add_user(store, "bob");
  ConversationId ab = ConversationId::direct(a, b);
  NewMessage no_recipients = make(ab, a, {});
  NewMessage dup_recipients = make(ab, a, {a, b, a});
  NewMessage zero_recipient = make(ab, a, {a, UserId()});
  NewMessage bad_conv = make(ConversationId(), a, {a, b});
  NewMessage bad_conv2 = make(ConversationId(std::uint64_t{1} << 63), a, {a, b});
  NewMessage no_sender = make(ab, UserId(), {a, b});
  std::vector<NewMessage> batch = {make(ab, a, {a, b}), no_recipients, dup_recipients,
                                   zero_recipient,      bad_conv,      make(ab, b, {a, b}),
                                   bad_conv2,           no_sender};
  auto out = store.commit(batch);
  REQUIRE(out.size() == batch.size());
  CC_CHECK_OK(out[0].status);
  CHECK(out[0].message->seq == 1);
  CC_CHECK_OK(out[5].status);
  CHECK(out[5].message->seq == 2);
  for (std::size_t i : {1, 2, 3, 4, 6, 7}) {
    CAPTURE(i);
    CHECK(code_of(out[i].status) == ErrorCode::kInvalidArgument);
    CHECK(out[i].message == nullptr);
    CHECK(out[i].inbox.empty());
    CHECK(code_of(store.find_by_client_id(a, batch[i].client_msg_id)) == ErrorCode::kNotFound);
  }
  CHECK(store.conversation_state(ab)->last_seq == 2);
  CHECK(*store.inbox_head(a) == 2);
  CHECK(*store.inbox_head(b) == 2);
  // The failed send's client id was not consumed: fixed, it commits.
  no_recipients.recipients = {a, b};
  auto retried = commit_one(store, no_recipients);
  CHECK(!retried.duplicate);
  CHECK(retried.message->seq == 3);
}

// history: newest page, before, after, limit; always ascending
inline void history_pages(Store& store) {
  MessageMaker make;
  UserId a = add_user(store, "alice");
  UserId b = add_user(store, "bob");
  UserId c = add_user(store, "carol");
  ConversationId ab = ConversationId::direct(a, b);
  ConversationId ac = ConversationId::direct(a, c);  // a neighbour in key order
  std::vector<NewMessage> batch;
  for (int i = 0; i < 25; ++i) {
    batch.push_back(make(ab, i % 2 ? a : b, {a, b}));
    if (i % 5 == 0) batch.push_back(make(ac, a, {a, c}));
  }
  auto out = store.commit(batch);
  for (const auto& o : out) CC_REQUIRE_OK(o.status);

  CHECK(seqs_of(page(store, ab, std::nullopt, std::nullopt, 10)) == range(16, 25));
  CHECK(seqs_of(page(store, ab, std::uint64_t{16}, std::nullopt, 10)) == range(6, 15));
  CHECK(seqs_of(page(store, ab, std::uint64_t{6}, std::nullopt, 10)) == range(1, 5));
  CHECK(page(store, ab, std::uint64_t{1}, std::nullopt, 10).empty());
  CHECK(page(store, ab, std::uint64_t{0}, std::nullopt, 10).empty());
  CHECK(seqs_of(page(store, ab, std::uint64_t{1000}, std::nullopt, 3)) == range(23, 25));
  CHECK(seqs_of(page(store, ab, std::nullopt, std::uint64_t{0}, 10)) == range(1, 10));
  CHECK(seqs_of(page(store, ab, std::nullopt, std::uint64_t{20}, 10)) == range(21, 25));
  CHECK(page(store, ab, std::nullopt, std::uint64_t{25}, 10).empty());
  CHECK(page(store, ab, std::nullopt, std::uint64_t{1000}, 10).empty());
  CHECK(seqs_of(page(store, ab, std::nullopt, std::nullopt, 1000)) == range(1, 25));
  CHECK(page(store, ab, std::nullopt, std::nullopt, 0).empty());
  CHECK(seqs_of(page(store, ac, std::nullopt, std::nullopt, 100)) == range(1, 5));

  // Pages carry whole messages of the right conversation.
  auto newest = page(store, ab, std::nullopt, std::nullopt, 1);
  REQUIRE(newest.size() == 1);
  const NewMessage* last_ab = nullptr;
  for (const auto& m : batch) {
    if (m.conversation == ab) last_ab = &m;
  }
  REQUIRE(last_ab != nullptr);
  check_same_message(*newest[0], *last_ab, 25);

  CHECK(page(store, ConversationId::direct(b, c), std::nullopt, std::nullopt, 10).empty());
  CHECK(page(store, ConversationId::group(GroupId(5)), std::nullopt, std::nullopt, 10).empty());
  HistoryQuery both;
  both.before_seq = 10;
  both.after_seq = 2;
  CHECK(code_of(store.history(ab, both)) == ErrorCode::kInvalidArgument);
}

// read_inbox after a cursor with a limit; inbox_head
inline void inbox_reads(Store& store) {
  MessageMaker make;
  UserId a = add_user(store, "alice");
  UserId b = add_user(store, "bob");
  UserId c = add_user(store, "carol");
  CHECK(*store.inbox_head(a) == 0);
  CHECK(store.read_inbox(a, 0, 10)->empty());
  std::vector<NewMessage> batch;
  for (int i = 0; i < 30; ++i) {
    ConversationId conv = ConversationId::direct(a, i % 3 ? b : c);
    batch.push_back(make(conv, a, {a, conv.peer_of(a)}));
  }
  auto out = store.commit(batch);
  for (const auto& o : out) CC_REQUIRE_OK(o.status);
  CHECK(*store.inbox_head(a) == 30);
  CHECK(*store.inbox_head(b) == 20);
  CHECK(*store.inbox_head(c) == 10);

  auto first = store.read_inbox(a, 0, 10);
  CC_REQUIRE_OK(first);
  REQUIRE(first->size() == 10);
  for (std::size_t k = 0; k < 10; ++k) {
    CHECK((*first)[k].inbox_seq == k + 1);
    CHECK((*first)[k].message->id == batch[k].id);
  }
  auto middle = store.read_inbox(a, 10, 10);
  REQUIRE(middle->size() == 10);
  CHECK(middle->front().inbox_seq == 11);
  CHECK(middle->back().inbox_seq == 20);
  auto tail = store.read_inbox(a, 25, 10);
  REQUIRE(tail->size() == 5);
  CHECK(tail->front().inbox_seq == 26);
  check_same_message(*tail->back().message, batch[29], tail->back().message->seq);
  CHECK(store.read_inbox(a, 30, 10)->empty());
  CHECK(store.read_inbox(a, 1000, 10)->empty());
  CHECK(store.read_inbox(a, 0, 0)->empty());

  auto for_c = store.read_inbox(c, 3, 100);
  REQUIRE(for_c->size() == 7);
  for (std::size_t k = 0; k < for_c->size(); ++k) {
    CHECK((*for_c)[k].inbox_seq == k + 4);
    CHECK((*for_c)[k].message->conversation == ConversationId::direct(a, c));
    CHECK((*for_c)[k].message->seq == k + 4);
  }
  CHECK(*store.inbox_head(UserId(99)) == 0);
  CHECK(store.read_inbox(UserId(99), 0, 10)->empty());
}

// device cursors
inline void device_cursors(Store& store) {
  UserId a = add_user(store, "alice");
  UserId b = add_user(store, "bob");
  CHECK(*store.device_cursor(a, "phone") == 0);
  CC_REQUIRE_OK(store.set_device_cursor(a, "phone", 5));
  CHECK(*store.device_cursor(a, "phone") == 5);
  CHECK(*store.device_cursor(a, "laptop") == 0);
  CHECK(*store.device_cursor(b, "phone") == 0);
  CC_REQUIRE_OK(store.set_device_cursor(a, "phone", 9));
  CC_REQUIRE_OK(store.set_device_cursor(a, "laptop", 2));
  CC_REQUIRE_OK(store.set_device_cursor(b, "phone", 1));
  CHECK(*store.device_cursor(a, "phone") == 9);
  CHECK(*store.device_cursor(a, "laptop") == 2);
  CHECK(*store.device_cursor(b, "phone") == 1);
  // Device ids are bytes; a prefix is another device.
  CHECK(*store.device_cursor(a, "phon") == 0);
  CC_REQUIRE_OK(store.set_device_cursor(a, std::string(256, 'd'), 7));
  CHECK(*store.device_cursor(a, std::string(256, 'd')) == 7);
  CHECK(code_of(store.set_device_cursor(a, std::string(257, 'd'), 7)) ==
        ErrorCode::kInvalidArgument);
}

// read cursors never move backwards
inline void read_cursors(Store& store) {
  UserId a = add_user(store, "alice");
  UserId b = add_user(store, "bob");
  ConversationId ab = ConversationId::direct(a, b);
  ConversationId g = ConversationId::group(GroupId(1));
  CHECK(*store.read_cursor(a, ab) == 0);
  CC_REQUIRE_OK(store.set_read_cursor(a, ab, 5));
  CHECK(*store.read_cursor(a, ab) == 5);
  CC_CHECK_OK(store.set_read_cursor(a, ab, 3));  // lower: ignored, OK
  CHECK(*store.read_cursor(a, ab) == 5);
  CC_REQUIRE_OK(store.set_read_cursor(a, ab, 7));
  CHECK(*store.read_cursor(a, ab) == 7);
  CHECK(*store.read_cursor(b, ab) == 0);
  CHECK(*store.read_cursor(a, g) == 0);
  CC_REQUIRE_OK(store.set_read_cursor(a, g, 2));
  CHECK(*store.read_cursor(a, g) == 2);
  CHECK(*store.read_cursor(a, ab) == 7);
}

// last seen
inline void last_seen(Store& store) {
  UserId a = add_user(store, "alice");
  UserId b = add_user(store, "bob");
  CHECK(code_of(store.last_seen(a)) == ErrorCode::kNotFound);
  CC_REQUIRE_OK(store.set_last_seen(a, 1'700'000'000'123));
  CHECK(*store.last_seen(a) == 1'700'000'000'123);
  CC_REQUIRE_OK(store.set_last_seen(a, 1'700'000'000'999));
  CHECK(*store.last_seen(a) == 1'700'000'000'999);
  CHECK(code_of(store.last_seen(b)) == ErrorCode::kNotFound);
}

// reads run concurrently with commits and see whole batches
inline void concurrent_reads(Store& store) {
  MessageMaker make;
  UserId a = add_user(store, "alice");
  UserId b = add_user(store, "bob");
  ConversationId ab = ConversationId::direct(a, b);
  constexpr std::uint64_t kBatches = 30;
  constexpr std::uint64_t kPerBatch = 10;
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::mutex failures_mu;
  std::vector<std::string> failures;
  auto failed = [&](std::string what) {
    std::lock_guard lock(failures_mu);
    failures.push_back(std::move(what));
  };
  std::thread reader([&] {
    std::uint64_t last_head = 0;
    do {
      // A batch is one transaction: readers see all of it or none of it.
      auto head = store.inbox_head(b);
      if (!head) {
        failed("inbox_head: " + head.status().to_string());
      } else if (*head < last_head || *head % kPerBatch != 0) {
        failed("inbox head " + std::to_string(*head) + " after " + std::to_string(last_head));
      } else {
        last_head = *head;
      }
      auto st = store.conversation_state(ab);
      if (!st || st->last_seq < last_head || st->last_seq % kPerBatch != 0) {
        failed("conversation_state behind the inbox or mid-batch");
      }
      std::uint64_t after = last_head > 5 ? last_head - 5 : 0;
      auto items = store.read_inbox(b, after, 50);
      if (!items) {
        failed("read_inbox: " + items.status().to_string());
      } else {
        for (std::size_t k = 0; k < items->size(); ++k) {
          if ((*items)[k].inbox_seq != after + 1 + k) failed("read_inbox skipped a seq");
        }
      }
      auto newest = store.history(ab, HistoryQuery{});
      if (!newest) {
        failed("history: " + newest.status().to_string());
      } else if (!newest->empty() && newest->back()->seq % kPerBatch != 0) {
        failed("history shows part of a batch");
      }
      ++reads;
    } while (!done.load());
  });
  for (std::uint64_t i = 0; i < kBatches; ++i) {
    std::vector<NewMessage> batch;
    for (std::uint64_t k = 0; k < kPerBatch; ++k) batch.push_back(make(ab, a, {a, b}));
    for (const auto& o : store.commit(batch)) {
      if (!o.status) failed("commit: " + o.status.to_string());
    }
  }
  done.store(true);
  reader.join();
  CHECK(failures.empty());
  for (const auto& f : failures) FAIL_CHECK(f);
  CHECK(reads.load() > 0);
  CHECK(*store.inbox_head(b) == kBatches * kPerBatch);
}

}  // namespace cases
}  // namespace chatcore::conformance

TEST_CASE_TEMPLATE_DEFINE("Store conformance", T, store_conformance) {
  // One fresh fixture per SUBCASE (doctest re-enters the test case per leaf).
  T fixture;
  chatcore::Store& store = fixture.store();
  namespace cases = chatcore::conformance::cases;
  SUBCASE("users: ids are 1, 2, 3; names are unique byte-wise; lookups") {
    cases::users_ids_names_lookups(store);
  }
  SUBCASE("users: a profile update changes only the given fields") {
    cases::users_profile_update(store);
  }
  SUBCASE("users: password hash") { cases::users_password_hash(store); }
  SUBCASE("tokens: put, get, delete (idempotent)") { cases::tokens(store); }
  SUBCASE("groups: create (owner always kOwner, members deduplicated, atomic)") {
    cases::groups_create(store);
  }
  SUBCASE("groups: the member cap (kGroupFull) on create and on add_member") {
    cases::groups_member_cap(store);
  }
  SUBCASE("groups: add_member, member_role, remove_member, groups_of") {
    cases::groups_membership(store);
  }
  SUBCASE("contacts and watchers, both directions") { cases::contacts_and_watchers(store); }
  SUBCASE("conversations_of and conversation_state") { cases::conversations(store); }
  SUBCASE("commit: seqs dense per conversation, inbox seqs dense per user, sender included") {
    cases::commit_dense_seqs(store);
  }
  SUBCASE("commit: a batch of many messages across conversations") {
    cases::commit_many_messages(store);
  }
  SUBCASE("commit: a duplicate client id returns the original and stores nothing") {
    cases::commit_duplicates(store);
  }
  SUBCASE("commit: a malformed message fails alone and stores nothing") {
    cases::commit_malformed(store);
  }
  SUBCASE("history: newest page, before, after, limit; always ascending") {
    cases::history_pages(store);
  }
  SUBCASE("read_inbox after a cursor with a limit; inbox_head") { cases::inbox_reads(store); }
  SUBCASE("device cursors") { cases::device_cursors(store); }
  SUBCASE("read cursors never move backwards") { cases::read_cursors(store); }
  SUBCASE("last seen") { cases::last_seen(store); }
  SUBCASE("reads run concurrently with commits and see whole batches") {
    cases::concurrent_reads(store);
  }
}
