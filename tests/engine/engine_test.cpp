// Engine tests with fake sessions: the promises of DESIGN.md §2, one by one.
// Single-threaded engines (storage_thread = false) make the order of events
// explicit: nothing commits until poll().
#include "chatcore/engine.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>

#include "chatcore/memory_store.hpp"
#include "support/fake_session.hpp"

using namespace chatcore;
using namespace chatcore::testing;

namespace {

struct World {
  explicit World(int users = 3, EngineOptions o = {}) : options(o) {
    options.storage_thread = false;
    for (int i = 1; i <= users; ++i) {
      NewUser u;
      u.name = "user" + std::to_string(i);
      REQUIRE(store.create_user(u).is_ok());
    }
    engine = std::make_unique<Engine>(options, store, auth, clock, &notifier);
  }
  EngineOptions options;
  MemoryStore store;
  FakeAuth auth;
  ManualClock clock{1'800'000'000'000};
  RecordingNotifier notifier;
  std::unique_ptr<Engine> engine;
};

ConversationId dm(std::uint64_t a, std::uint64_t b) {
  return ConversationId::direct(UserId(a), UserId(b));
}

}  // namespace

TEST_CASE("nothing but Hello is accepted before authentication") {
  World w;
  TestClient c(*w.engine);
  auto rid = c.send_to_peer(2, 1, "hi");
  CHECK(c.error_of(rid) == ErrorCode::kProtocolViolation);
  CHECK(c.session().closed == CloseCode::kProtocolViolation);
}

TEST_CASE("a bad token is refused with 4001") {
  World w;
  TestClient c(*w.engine);
  c.frame(encode_hello(7, "forged", "dev", 0));
  CHECK(c.error_of(7) == ErrorCode::kUnauthenticated);
  CHECK(c.session().closed == CloseCode::kUnauthenticated);
}

TEST_CASE("a frame that fails the verifier closes with 4002; a server frame with 4000") {
  World w;
  TestClient c(*w.engine);
  c.hello(1);
  std::vector<std::uint8_t> junk = {0xff, 0x00, 0x13, 0x37, 0x42, 0x42, 0x42, 0x42};
  c.frame(junk);
  CHECK(c.session().closed == CloseCode::kMalformedFrame);

  TestClient d(*w.engine);
  d.hello(2);
  d.frame(encode_deliver(1, Message{}));  // a server->client frame sent by a client
  CHECK(d.session().closed == CloseCode::kProtocolViolation);
}

TEST_CASE("Welcome tells the user, inbox head and the heartbeat contract") {
  World w;
  TestClient c(*w.engine);
  c.hello(2);
  auto welcome = c.of_type(wire::Body::Welcome);
  REQUIRE(welcome.size() == 1);
  CHECK(welcome[0]->request_id() == 1);
  CHECK(welcome[0]->body_as_Welcome()->user_id() == 2);
  CHECK(welcome[0]->body_as_Welcome()->inbox_head() == 0);
  CHECK(welcome[0]->body_as_Welcome()->heartbeat_ms() == 5000);
  CHECK(welcome[0]->body_as_Welcome()->presence_timeout_ms() == 30000);
  CHECK(welcome[0]->body_as_Welcome()->max_body_chars() == 100000);
}

TEST_CASE("promise 1: the Ack comes only after the commit") {
  World w;
  TestClient alice(*w.engine), bob(*w.engine);
  alice.hello(1);
  bob.hello(2);
  auto rid = alice.send_to_peer(2, 1, "hello bob");
  CHECK(alice.reply(rid) == nullptr);  // nothing committed yet: no ack
  CHECK(w.store.history(dm(1, 2), {}).value().empty());
  CHECK(w.engine->poll() == 1);
  const wire::Frame* ack = alice.reply(rid);
  REQUIRE(ack != nullptr);
  REQUIRE(ack->body_type() == wire::Body::Ack);
  CHECK(ack->body_as_Ack()->seq() == 1);
  CHECK(ack->body_as_Ack()->inbox_seq() == 1);
  CHECK(ack->body_as_Ack()->conversation_id() == dm(1, 2).value);
  CHECK_FALSE(ack->body_as_Ack()->duplicate());
  CHECK(w.store.history(dm(1, 2), {}).value().size() == 1);
  CHECK(bob.delivered_bodies() == std::vector<std::string>{"hello bob"});
}

TEST_CASE("promise 2: one order per conversation, seqs without gaps") {
  World w;
  TestClient alice(*w.engine), bob(*w.engine);
  alice.hello(1);
  bob.hello(2);
  for (int i = 0; i < 5; ++i) {
    alice.send_to_peer(2, 100 + i, "a" + std::to_string(i));
    bob.send_to_peer(1, 200 + i, "b" + std::to_string(i));
  }
  w.engine->poll();
  auto history = w.store.history(dm(1, 2), {}).value();
  REQUIRE(history.size() == 10);
  for (std::size_t i = 0; i < history.size(); ++i) CHECK(history[i]->seq == i + 1);
  // Both sides received the conversation in exactly that order.
  std::vector<std::string> order;
  for (const auto& m : history) order.push_back(m->body);
  CHECK(alice.delivered_bodies() == order);
  CHECK(bob.delivered_bodies() == order);
  for (std::size_t i = 1; i < history.size(); ++i) CHECK(history[i]->id > history[i - 1]->id);
}

TEST_CASE("promise 3: every device of every member gets every message exactly once") {
  World w;
  TestClient phone(*w.engine), laptop(*w.engine), bob(*w.engine);
  phone.hello(1, "phone");
  laptop.hello(1, "laptop");
  bob.hello(2, "bob-phone");
  phone.send_to_peer(2, 1, "from phone");
  bob.send_to_peer(1, 2, "from bob");
  w.engine->poll();
  // The sender's other device sees its own message; so does the sender.
  CHECK(laptop.delivered_bodies() == std::vector<std::string>{"from phone", "from bob"});
  CHECK(phone.delivered_bodies() == std::vector<std::string>{"from phone", "from bob"});
  CHECK(laptop.delivered_seqs() == std::vector<std::uint64_t>{1, 2});
  CHECK(bob.delivered_seqs() == std::vector<std::uint64_t>{1, 2});
}

TEST_CASE("promise 3: an offline member gets everything after its cursor on Hello") {
  World w;
  auto group = w.engine->create_group(UserId(1), "trio", std::vector<UserId>{UserId(2), UserId(3)});
  REQUIRE(group.is_ok());
  auto conv = ConversationId::group(*group);
  TestClient alice(*w.engine), bob(*w.engine);
  alice.hello(1);
  bob.hello(2);
  for (int i = 1; i <= 6; ++i) alice.send_to_conv(conv, i, "m" + std::to_string(i));
  w.engine->poll();
  CHECK(w.notifier.pushes.size() == 6);  // carol is offline: the push hook fires
  for (const auto& [user, id] : w.notifier.pushes) CHECK(user == UserId(3));

  TestClient carol(*w.engine);
  carol.hello(3, "carol-phone", /*cursor=*/2);  // she had the first two already
  CHECK(carol.delivered_seqs() == std::vector<std::uint64_t>{3, 4, 5, 6});
  CHECK(carol.delivered_bodies() == std::vector<std::string>{"m3", "m4", "m5", "m6"});
  // Then live deliveries continue gap-free.
  bob.send_to_conv(conv, 50, "live");
  w.engine->poll();
  CHECK(carol.delivered_seqs() == std::vector<std::uint64_t>{3, 4, 5, 6, 7});
}

TEST_CASE("promise 4: a resend with the same client id is stored once") {
  World w;
  TestClient alice(*w.engine), bob(*w.engine);
  alice.hello(1);
  bob.hello(2);
  auto first = alice.send_to_peer(2, 42, "once");
  auto again_same_batch = alice.send_to_peer(2, 42, "once");
  w.engine->poll();
  auto later = alice.send_to_peer(2, 42, "once");
  w.engine->poll();
  const auto* a1 = alice.reply(first)->body_as_Ack();
  const auto* a2 = alice.reply(again_same_batch)->body_as_Ack();
  const auto* a3 = alice.reply(later)->body_as_Ack();
  REQUIRE(a1);
  REQUIRE(a2);
  REQUIRE(a3);
  CHECK_FALSE(a1->duplicate());
  CHECK(a2->duplicate());
  CHECK(a3->duplicate());
  CHECK(a2->message_id() == a1->message_id());
  CHECK(a3->message_id() == a1->message_id());
  CHECK(a3->seq() == a1->seq());
  CHECK(w.store.history(dm(1, 2), {}).value().size() == 1);
  CHECK(bob.delivered_seqs() == std::vector<std::uint64_t>{1});  // delivered once
}

TEST_CASE("promise 5: only participants send and read") {
  World w;
  auto group = w.engine->create_group(UserId(1), "pair", std::vector<UserId>{UserId(2)});
  REQUIRE(group.is_ok());
  TestClient carol(*w.engine);
  carol.hello(3);
  auto rid = carol.send_to_conv(ConversationId::group(*group), 1, "let me in");
  CHECK(carol.error_of(rid) == ErrorCode::kPermissionDenied);
  rid = carol.send_to_conv(dm(1, 2), 2, "let me in");
  CHECK(carol.error_of(rid) == ErrorCode::kPermissionDenied);
  rid = carol.send_to_conv(ConversationId::group(GroupId(999)), 3, "anyone?");
  CHECK(carol.error_of(rid) == ErrorCode::kNotFound);
  rid = carol.send_to_conv(ConversationId(12345), 4, "malformed id");  // lo > hi
  CHECK(carol.error_of(rid) == ErrorCode::kInvalidArgument);
  CHECK(w.engine->history(UserId(3), dm(1, 2), {}).status().code() == ErrorCode::kPermissionDenied);
  CHECK(w.engine->history(UserId(3), ConversationId::group(*group), {}).status().code() ==
        ErrorCode::kPermissionDenied);
  CHECK_FALSE(carol.session().closed);  // refusals keep the connection
  w.engine->poll();
  CHECK(w.store.history(dm(1, 2), {}).value().empty());
}

TEST_CASE("promise 6: bad bodies get stable errors and the connection stays") {
  World w;
  TestClient alice(*w.engine);
  alice.hello(1);
  std::string max_body(100'000, 'x');
  auto ok = alice.send_to_peer(2, 1, max_body);
  auto too_big = alice.send_to_peer(2, 2, max_body + "y");
  auto bad_utf8 = alice.send_to_peer(2, 3, "bad \xC3(");
  auto empty = alice.send_to_peer(2, 4, "");
  auto to_nobody = alice.send_to_peer(77, 5, "hello?");
  auto to_self = alice.send_to_peer(1, 6, "me");
  CHECK(alice.error_of(too_big) == ErrorCode::kTooLarge);
  CHECK(alice.error_of(bad_utf8) == ErrorCode::kInvalidUtf8);
  CHECK(alice.error_of(empty) == ErrorCode::kInvalidArgument);
  CHECK(alice.error_of(to_nobody) == ErrorCode::kNotFound);
  CHECK(alice.error_of(to_self) == ErrorCode::kInvalidArgument);
  // Error frames carry the stable name and a readable message.
  const auto* err = alice.reply(too_big)->body_as_Error();
  CHECK(err->name()->str() == "too_large");
  CHECK(err->message()->str().find("100000") != std::string::npos);
  w.engine->poll();
  REQUIRE(alice.reply(ok) != nullptr);
  CHECK(alice.reply(ok)->body_type() == wire::Body::Ack);
  CHECK_FALSE(alice.session().closed);
  CHECK(w.store.history(dm(1, 2), {}).value().size() == 1);  // only the valid one
}

TEST_CASE("promise 6: the per-user rate limit answers with retry-after") {
  EngineOptions o;
  o.limits.sends_per_second = 1;
  o.limits.send_burst = 2;
  World w(3, o);
  TestClient alice(*w.engine);
  alice.hello(1);
  auto r1 = alice.send_to_peer(2, 1, "1");
  auto r2 = alice.send_to_peer(2, 2, "2");
  auto r3 = alice.send_to_peer(2, 3, "3");
  CHECK(alice.error_of(r3) == ErrorCode::kRateLimited);
  CHECK(alice.reply(r3)->body_as_Error()->retry_after_ms() == 1000);
  w.clock.advance(1000);
  auto r4 = alice.send_to_peer(2, 4, "4");
  w.engine->poll();
  CHECK(alice.reply(r1)->body_type() == wire::Body::Ack);
  CHECK(alice.reply(r2)->body_type() == wire::Body::Ack);
  CHECK(alice.reply(r4)->body_type() == wire::Body::Ack);
  CHECK(w.engine->stats().rate_limited == 1);
}

TEST_CASE("a slow reader is paced from the store, then closed past the hard limit") {
  EngineOptions o;
  o.limits.outbound_soft_bytes = 2'000;
  o.limits.outbound_hard_bytes = 1'000'000;
  World w(2, o);
  TestClient alice(*w.engine), bob(*w.engine);
  alice.hello(1);
  bob.hello(2);
  bob.session().hold = true;  // bob's socket stops draining
  for (int i = 1; i <= 50; ++i) alice.send_to_peer(2, i, std::string(200, 'a'));
  w.engine->poll();
  auto partial = bob.delivered_seqs().size();
  CHECK(partial < 50);                         // paused at the soft limit, nothing lost
  CHECK(alice.delivered_seqs().size() == 50);  // alice is not held back by bob
  while (bob.delivered_seqs().size() < 50) {
    bob.session().drain();
    w.engine->on_writable(bob.id());
  }
  std::vector<std::uint64_t> expect;
  for (std::uint64_t i = 1; i <= 50; ++i) expect.push_back(i);
  CHECK(bob.delivered_seqs() == expect);

  // Replies are not paced; a reader that never drains is closed past the hard limit.
  EngineOptions tight;
  tight.limits.outbound_soft_bytes = 1'000;
  tight.limits.outbound_hard_bytes = 4'000;
  World w2(2, tight);
  TestClient stuck(*w2.engine);
  stuck.hello(2);
  stuck.session().hold = true;
  for (int i = 0; i < 100 && !stuck.session().closed; ++i) {
    stuck.frame(encode_heartbeat(stuck.next_rid()));
  }
  CHECK(stuck.session().closed == CloseCode::kSlowConsumer);
  CHECK(w2.engine->stats().slow_consumer_closes == 1);
}

TEST_CASE("groups: owners add, members leave, the owner stays, the cap holds") {
  EngineOptions o;
  o.limits.max_group_members = 3;
  World w(5, o);
  auto g = w.engine->create_group(UserId(1), "club", std::vector<UserId>{UserId(2)});
  REQUIRE(g.is_ok());
  CHECK(w.engine->add_member(UserId(2), *g, UserId(3)).code() == ErrorCode::kPermissionDenied);
  CHECK(w.engine->add_member(UserId(4), *g, UserId(3)).code() == ErrorCode::kPermissionDenied);
  CHECK(w.engine->add_member(UserId(1), *g, UserId(3)).is_ok());
  CHECK(w.engine->add_member(UserId(1), *g, UserId(4)).code() == ErrorCode::kGroupFull);
  CHECK(w.engine->add_member(UserId(1), GroupId(77), UserId(4)).code() == ErrorCode::kNotFound);
  CHECK(w.engine->remove_member(UserId(2), *g, UserId(3)).code() == ErrorCode::kPermissionDenied);
  CHECK(w.engine->remove_member(UserId(3), *g, UserId(3)).is_ok());  // leaving
  CHECK(w.engine->remove_member(UserId(1), *g, UserId(1)).code() == ErrorCode::kFailedPrecondition);
  CHECK(w.engine->remove_member(UserId(1), *g, UserId(2)).is_ok());
  auto members = w.engine->group_members(UserId(1), *g);
  REQUIRE(members.is_ok());
  REQUIRE(members->size() == 1);
  CHECK((*members)[0].first.role == MemberRole::kOwner);
  CHECK(w.engine->group_members(UserId(2), *g).status().code() == ErrorCode::kPermissionDenied);
  CHECK(w.engine->create_group(UserId(1), "", {}).status().code() == ErrorCode::kInvalidArgument);
}

TEST_CASE("promise 7: presence goes to watchers; offline at once on clean close") {
  World w;
  REQUIRE(w.store.add_contact(UserId(2), UserId(1), 0).is_ok());  // bob watches alice
  TestClient bob(*w.engine);
  bob.hello(2);
  TestClient alice(*w.engine);
  alice.hello(1);
  auto pushed = bob.of_type(wire::Body::Presence);
  REQUIRE(pushed.size() == 1);
  CHECK(pushed[0]->body_as_Presence()->user_id() == 1);
  CHECK(pushed[0]->body_as_Presence()->online());
  CHECK(w.engine->presence_of(UserId(1)).online);
  w.clock.advance(5000);
  alice.disconnect(/*clean=*/true);
  pushed = bob.of_type(wire::Body::Presence);
  REQUIRE(pushed.size() == 2);
  CHECK_FALSE(pushed[1]->body_as_Presence()->online());
  CHECK(pushed[1]->body_as_Presence()->last_seen_ms() == w.clock.now_ms());
  CHECK(w.store.last_seen(UserId(1)).value() == w.clock.now_ms());
  CHECK_FALSE(w.engine->presence_of(UserId(1)).online);
  // Users who do not watch alice hear nothing.
  CHECK(alice.of_type(wire::Body::Presence).empty());
}

TEST_CASE("promise 7: silence past the timeout closes the session and goes offline") {
  World w;
  REQUIRE(w.store.add_contact(UserId(2), UserId(1), 0).is_ok());
  TestClient bob(*w.engine), alice(*w.engine);
  bob.hello(2);
  alice.hello(1);
  for (int i = 0; i < 6; ++i) {
    w.clock.advance(5000);
    alice.frame(encode_heartbeat(alice.next_rid()));
    bob.frame(encode_heartbeat(bob.next_rid()));
    w.engine->tick();
  }
  CHECK_FALSE(alice.session().closed);
  CHECK(alice.of_type(wire::Body::HeartbeatAck).size() == 6);
  std::int64_t last_alive = w.clock.now_ms();
  w.clock.advance(30'000);
  bob.frame(encode_heartbeat(bob.next_rid()));
  w.engine->tick();
  CHECK(alice.session().closed == CloseCode::kHeartbeatTimeout);
  CHECK_FALSE(bob.session().closed);
  auto pushed = bob.of_type(wire::Body::Presence);
  REQUIRE(pushed.size() == 2);
  CHECK_FALSE(pushed[1]->body_as_Presence()->online());
  CHECK(pushed[1]->body_as_Presence()->last_seen_ms() == last_alive);
  alice.disconnect(false);  // the transport reports the close it was asked for
  CHECK(w.store.last_seen(UserId(1)).value() == last_alive);
}

TEST_CASE("group presence is fetched on demand, only by members") {
  World w;
  auto g = w.engine->create_group(UserId(1), "g", std::vector<UserId>{UserId(2)});
  REQUIRE(g.is_ok());
  TestClient alice(*w.engine), carol(*w.engine);
  alice.hello(1);
  carol.hello(3);
  flatbuffers::FlatBufferBuilder b;
  auto q = wire::CreatePresenceQuery(b, 0, g->value);
  b.Finish(wire::CreateFrame(b, 99, wire::Body::PresenceQuery, q.Union()));
  std::vector<std::uint8_t> bytes(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
  alice.frame(bytes);
  const auto* list = alice.reply(99)->body_as_PresenceList();
  REQUIRE(list);
  REQUIRE(list->items()->size() == 2);
  CHECK(list->items()->Get(0)->user_id() == 1);
  CHECK(list->items()->Get(0)->online());
  CHECK(list->items()->Get(1)->user_id() == 2);
  CHECK_FALSE(list->items()->Get(1)->online());
  carol.frame(bytes);
  CHECK(carol.error_of(99) == ErrorCode::kPermissionDenied);
}

TEST_CASE("History and Sync frames page in chronological order") {
  World w;
  TestClient alice(*w.engine);
  alice.hello(1);
  for (int i = 1; i <= 10; ++i) alice.send_to_peer(2, i, "m" + std::to_string(i));
  w.engine->poll();
  flatbuffers::FlatBufferBuilder b;
  b.Finish(wire::CreateFrame(b, 500, wire::Body::History,
                             wire::CreateHistory(b, dm(1, 2).value, 8, 0, 3).Union()));
  alice.frame({b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()});
  const auto* page = alice.reply(500)->body_as_HistoryPage();
  REQUIRE(page);
  REQUIRE(page->messages()->size() == 3);
  CHECK(page->messages()->Get(0)->seq() == 5);
  CHECK(page->messages()->Get(2)->seq() == 7);

  flatbuffers::FlatBufferBuilder s;
  s.Finish(wire::CreateFrame(s, 501, wire::Body::Sync, wire::CreateSync(s, 7, 100).Union()));
  alice.frame({s.GetBufferPointer(), s.GetBufferPointer() + s.GetSize()});
  const auto* batch = alice.reply(501)->body_as_SyncBatch();
  REQUIRE(batch);
  CHECK(batch->inbox_head() == 10);
  REQUIRE(batch->items()->size() == 3);
  CHECK(batch->items()->Get(0)->inbox_seq() == 8);
  CHECK(batch->items()->Get(2)->message()->body()->str() == "m10");
}

TEST_CASE("mark_read keeps a read cursor for unread counts") {
  World w;
  TestClient alice(*w.engine);
  alice.hello(1);
  for (int i = 1; i <= 4; ++i) alice.send_to_peer(2, i, "x");
  w.engine->poll();
  CHECK(w.engine->mark_read(UserId(2), dm(1, 2), 3).is_ok());
  CHECK(w.store.read_cursor(UserId(2), dm(1, 2)).value() == 3);
  CHECK(w.engine->mark_read(UserId(2), dm(1, 2), 99).is_ok());  // clamped to the last seq
  CHECK(w.store.read_cursor(UserId(2), dm(1, 2)).value() == 4);
  CHECK(w.engine->mark_read(UserId(3), dm(1, 2), 1).code() == ErrorCode::kPermissionDenied);
}

TEST_CASE("revoking a credential closes its sessions and the user goes offline at once") {
  World w;
  TestClient a1(*w.engine), a2(*w.engine);
  a1.hello(1, "phone");
  a2.hello(1, "laptop");
  w.engine->revoke_credential("tok-1");
  CHECK(a1.session().closed == CloseCode::kUnauthenticated);
  CHECK(a2.session().closed == CloseCode::kUnauthenticated);
  a1.disconnect(true);
  a2.disconnect(true);
  CHECK_FALSE(w.engine->presence_of(UserId(1)).online);
}

TEST_CASE("shutdown acks what it accepted, refuses the rest, closes with 1001") {
  World w;
  TestClient alice(*w.engine);
  alice.hello(1);
  auto accepted = alice.send_to_peer(2, 1, "in flight");
  w.engine->shutdown();
  REQUIRE(alice.reply(accepted) != nullptr);
  CHECK(alice.reply(accepted)->body_type() == wire::Body::Ack);
  CHECK(alice.session().closed == CloseCode::kGoingAway);
  bool refused = false;
  w.engine->send_message(
      UserId(1), SendRequest{ConversationId(), UserId(2), client_id(2), "late"},
      [&](Result<SendResult> r) { refused = r.status().code() == ErrorCode::kUnavailable; });
  CHECK(refused);
}

TEST_CASE("send_message (the HTTP path) shares the rules and the pipeline") {
  World w;
  TestClient bob(*w.engine);
  bob.hello(2);
  std::optional<Result<SendResult>> got;
  w.engine->send_message(UserId(1), SendRequest{ConversationId(), UserId(2), client_id(9), "api"},
                         [&](Result<SendResult> r) { got = std::move(r); });
  CHECK_FALSE(got.has_value());
  w.engine->poll();
  REQUIRE(got.has_value());
  REQUIRE(got->is_ok());
  CHECK((*got)->message->seq == 1);
  CHECK((*got)->sender_inbox_seq == 1);
  CHECK(bob.delivered_bodies() == std::vector<std::string>{"api"});
}

TEST_CASE("post runs tasks on the owner thread inside poll, in order, with a wakeup") {
  World w;
  std::atomic<int> wakeups{0};
  w.engine->set_wakeup([&] { ++wakeups; });
  std::vector<int> order;
  std::thread worker([&] {
    w.engine->post([&] { order.push_back(1); });
    w.engine->post([&] { order.push_back(2); });
  });
  worker.join();
  CHECK(order.empty());  // nothing runs outside poll()
  CHECK(wakeups.load() == 2);
  w.engine->poll();
  CHECK(order == std::vector<int>{1, 2});
}

TEST_CASE("one group message reaches each member at that member's own inbox seq") {
  World w;
  auto g = w.engine->create_group(UserId(1), "g", std::vector<UserId>{UserId(2), UserId(3)});
  REQUIRE(g.is_ok());
  TestClient alice(*w.engine), bob(*w.engine), carol(*w.engine);
  alice.hello(1);
  bob.hello(2);
  carol.hello(3);
  alice.send_to_peer(3, 1, "dm first");  // alice and carol: inbox 1; bob: nothing yet
  w.engine->poll();
  alice.send_to_conv(ConversationId::group(*g), 2, "to the group");
  w.engine->poll();
  CHECK(alice.delivered_seqs() == std::vector<std::uint64_t>{1, 2});
  CHECK(carol.delivered_seqs() == std::vector<std::uint64_t>{1, 2});
  CHECK(bob.delivered_seqs() == std::vector<std::uint64_t>{1});
  CHECK(bob.delivered_bodies() == std::vector<std::string>{"to the group"});
  CHECK(carol.delivered_bodies() == std::vector<std::string>{"dm first", "to the group"});
}
