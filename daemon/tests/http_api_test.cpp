// Tests of HttpApi and TokenAuth, driven directly (no sockets): a
// MemoryStore behind a fault-injecting decorator, an Engine without a
// storage thread (sends complete inside engine.poll()), and a ManualClock so
// token expiry and rate limits need no sleeping.
//
// Every route, status and error code of docs/http-api.md is exercised here;
// tests/integration/test_http_api.py repeats the key paths against the real
// daemon.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "chatcore/clock.hpp"
#include "chatcore/engine.hpp"
#include "chatcore/memory_store.hpp"
#include "chatcore/protocol.hpp"
#include "chatcore/session.hpp"
#include "http_api.hpp"
#include "json_util.hpp"
#include "token_auth.hpp"

namespace {

using chatcore::ConversationId;
using chatcore::ErrorCode;
using chatcore::Status;
using chatcore::UserId;
using chatcored::HttpApi;
using chatcored::HttpApiOptions;
using chatcored::HttpRequest;
using chatcored::HttpResponse;
using chatcored::TokenAuth;
using Json = nlohmann::json;

constexpr std::int64_t kTtlMs = 3'600'000;
constexpr const char* kWsUrl = "ws://chat.example:8080/ws";

// A Store that forwards to a MemoryStore, except that it can be told to fail
// every call with a given code (an unavailable or broken backend).
class FaultyStore final : public chatcore::Store {
 public:
  std::optional<ErrorCode> fault;
  chatcore::MemoryStore inner;

  Status check() const {
    if (!fault) return Status::ok();
    return Status(*fault, "injected storage fault");
  }

  template <typename T>
  chatcore::Result<T> guard(chatcore::Result<T> r) const {
    if (Status st = check(); !st) return st;
    return r;
  }
  Status guard(Status st) const {
    if (Status f = check(); !f) return f;
    return st;
  }

  chatcore::Result<UserId> create_user(const chatcore::NewUser& u) override {
    return guard(inner.create_user(u));
  }
  chatcore::Result<chatcore::User> get_user(UserId id) override {
    return guard(inner.get_user(id));
  }
  chatcore::Result<chatcore::User> find_user_by_name(std::string_view n) override {
    return guard(inner.find_user_by_name(n));
  }
  Status update_profile(UserId id, const chatcore::ProfileUpdate& u) override {
    return guard(inner.update_profile(id, u));
  }
  Status set_password_hash(UserId id, std::string_view h) override {
    return guard(inner.set_password_hash(id, h));
  }
  chatcore::Result<std::string> get_password_hash(UserId id) override {
    return guard(inner.get_password_hash(id));
  }
  Status put_token(std::string_view h, const chatcore::TokenRecord& r) override {
    return guard(inner.put_token(h, r));
  }
  chatcore::Result<chatcore::TokenRecord> get_token(std::string_view h) override {
    return guard(inner.get_token(h));
  }
  Status delete_token(std::string_view h) override { return guard(inner.delete_token(h)); }
  chatcore::Result<chatcore::GroupId> create_group(std::string_view name, UserId owner,
                                                   std::span<const UserId> members,
                                                   std::int64_t now_ms,
                                                   std::uint32_t max_members) override {
    return guard(inner.create_group(name, owner, members, now_ms, max_members));
  }
  chatcore::Result<chatcore::Group> get_group(chatcore::GroupId id) override {
    return guard(inner.get_group(id));
  }
  chatcore::Result<std::vector<chatcore::Member>> group_members(chatcore::GroupId id) override {
    return guard(inner.group_members(id));
  }
  chatcore::Result<chatcore::MemberRole> member_role(chatcore::GroupId g, UserId u) override {
    return guard(inner.member_role(g, u));
  }
  Status add_member(chatcore::GroupId g, UserId u, chatcore::MemberRole r,
                    std::uint32_t max) override {
    return guard(inner.add_member(g, u, r, max));
  }
  Status remove_member(chatcore::GroupId g, UserId u) override {
    return guard(inner.remove_member(g, u));
  }
  chatcore::Result<std::vector<chatcore::GroupId>> groups_of(UserId u) override {
    return guard(inner.groups_of(u));
  }
  Status add_contact(UserId o, UserId c, std::int64_t now) override {
    return guard(inner.add_contact(o, c, now));
  }
  Status remove_contact(UserId o, UserId c) override { return guard(inner.remove_contact(o, c)); }
  chatcore::Result<std::vector<UserId>> contacts_of(UserId o) override {
    return guard(inner.contacts_of(o));
  }
  chatcore::Result<std::vector<UserId>> watchers_of(UserId c) override {
    return guard(inner.watchers_of(c));
  }
  Status touch_direct_conversation(ConversationId c, std::int64_t now) override {
    return guard(inner.touch_direct_conversation(c, now));
  }
  chatcore::Result<std::vector<ConversationId>> conversations_of(UserId u) override {
    return guard(inner.conversations_of(u));
  }
  chatcore::Result<chatcore::ConversationState> conversation_state(ConversationId c) override {
    return guard(inner.conversation_state(c));
  }
  std::vector<chatcore::CommitOutcome> commit(std::span<const chatcore::NewMessage> b) override {
    if (Status st = check(); !st) {
      std::vector<chatcore::CommitOutcome> out(b.size());
      for (auto& o : out) o.status = st;
      return out;
    }
    return inner.commit(b);
  }
  chatcore::Result<std::shared_ptr<const chatcore::Message>> find_by_client_id(
      UserId s, const chatcore::ClientMsgId& id) override {
    return guard(inner.find_by_client_id(s, id));
  }
  chatcore::Result<std::vector<std::shared_ptr<const chatcore::Message>>> history(
      ConversationId c, const chatcore::HistoryQuery& q) override {
    return guard(inner.history(c, q));
  }
  chatcore::Result<std::vector<chatcore::InboxItem>> read_inbox(UserId u, std::uint64_t after,
                                                                std::uint32_t limit) override {
    return guard(inner.read_inbox(u, after, limit));
  }
  chatcore::Result<std::uint64_t> inbox_head(UserId u) override {
    return guard(inner.inbox_head(u));
  }
  Status set_device_cursor(UserId u, std::string_view d, std::uint64_t s) override {
    return guard(inner.set_device_cursor(u, d, s));
  }
  chatcore::Result<std::uint64_t> device_cursor(UserId u, std::string_view d) override {
    return guard(inner.device_cursor(u, d));
  }
  Status set_read_cursor(UserId u, ConversationId c, std::uint64_t s) override {
    return guard(inner.set_read_cursor(u, c, s));
  }
  chatcore::Result<std::uint64_t> read_cursor(UserId u, ConversationId c) override {
    return guard(inner.read_cursor(u, c));
  }
  Status set_last_seen(UserId u, std::int64_t at) override {
    return guard(inner.set_last_seen(u, at));
  }
  chatcore::Result<std::int64_t> last_seen(UserId u) override { return guard(inner.last_seen(u)); }
};

// A WebSocket stand-in: records frames and the close.
class FakeSession final : public chatcore::Session {
 public:
  void send(std::span<const std::uint8_t> frame) override {
    frames.emplace_back(frame.begin(), frame.end());
  }
  std::size_t queued_bytes() const override { return 0; }
  void close(chatcore::CloseCode code, std::string_view) override {
    closed = true;
    close_code = code;
  }
  std::vector<std::vector<std::uint8_t>> frames;
  bool closed = false;
  chatcore::CloseCode close_code = chatcore::CloseCode::kNormal;
};

struct Reply {
  int status = 0;
  std::string body;
  Json json;  // null when the body is empty
  std::vector<std::pair<std::string, std::string>> headers;

  std::string header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return {};
  }
  std::string code() const {
    if (!json.is_object() || !json.contains("error")) return "<no error body>";
    return json["error"]["code"].get<std::string>();
  }
};

std::string uuid(unsigned n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012x", n);
  return buf;
}

chatcore::EngineOptions engine_options(double per_second = 50.0, double burst = 100.0) {
  chatcore::EngineOptions o;
  o.storage_thread = false;  // sends commit inside engine.poll(): deterministic
  o.limits.sends_per_second = per_second;
  o.limits.send_burst = burst;
  return o;
}

HttpApiOptions api_options() {
  HttpApiOptions o;  // the default body cap, which the tests rely on
  // Hash and write inline: most tests here are single-threaded and expect
  // an answer from handle() or poll(). threaded_api_options() below, and the
  // daemon's integration tests, run the threaded path.
  o.kdf_threads = 0;
  o.write_thread = false;
  o.public_ws_url = kWsUrl;
  return o;
}

HttpApiOptions threaded_api_options() {
  HttpApiOptions o = api_options();
  o.kdf_threads = 1;
  o.write_thread = true;
  return o;
}

struct Account {
  std::string id;  // decimal string, as the API gives it
  std::string token;
  UserId uid;
};

class Fixture {
 public:
  explicit Fixture(chatcore::EngineOptions options = engine_options(),
                   HttpApiOptions http = api_options())
      : auth(store, clock, kTtlMs),
        engine(options, store, auth, clock),
        api(engine, store, auth, clock, std::move(http)) {}
  ~Fixture() { engine.shutdown(); }

  // One request; polls the engine once if the answer is not immediate (a
  // send completes only when its commit has run). Checks it is answered
  // exactly once.
  Reply request(HttpRequest req) {
    auto replies = std::make_shared<std::vector<HttpResponse>>();
    api.handle(std::move(req), [replies](HttpResponse r) { replies->push_back(std::move(r)); });
    // A threaded answer (hashing, a store write) comes back through
    // Engine::post(): poll until it has. The bound is generous; this waits
    // for a thread on a shared machine, it times nothing.
    for (int i = 0; replies->empty() && i < 20000; ++i) {
      engine.poll();
      if (replies->empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    engine.poll();
    REQUIRE(replies->size() == 1);
    Reply out;
    out.status = replies->front().status;
    out.body = replies->front().body;
    out.headers = replies->front().headers;
    CHECK(replies->front().content_type == "application/json");
    if (!out.body.empty()) out.json = Json::parse(out.body);
    return out;
  }

  Reply call(std::string method, std::string path, std::string body = "",
             const std::string& token = "", std::string query = "") {
    HttpRequest req;
    req.method = std::move(method);
    req.path = std::move(path);
    req.query = std::move(query);
    req.body = std::move(body);
    if (!token.empty()) req.authorization = "Bearer " + token;
    return request(std::move(req));
  }
  // A JSON body; a template so that "" never converts to a Json here.
  template <typename J>
  requires std::same_as<std::remove_cvref_t<J>, Json> Reply call(std::string method,
                                                                 std::string path, J&& body,
                                                                 const std::string& token) {
    return call(std::move(method), std::move(path), body.dump(), token);
  }

  Account account(const std::string& name, const std::string& display = "") {
    Json body = {{"name", name}, {"password", "correct horse"}};
    if (!display.empty()) body["display_name"] = display;
    Reply r = call("POST", "/api/v1/users", body.dump());
    REQUIRE(r.status == 201);
    Reply s = call("POST", "/api/v1/sessions",
                   Json{{"name", name}, {"password", "correct horse"}}.dump());
    REQUIRE(s.status == 200);
    std::string id = r.json["user_id"];
    return {id, s.json["token"], UserId(std::stoull(id))};
  }

  // Creates a user with no password directly in the store (a group member
  // that never logs in; saves an Argon2 hash per user).
  UserId bare_user(const std::string& name) {
    chatcore::NewUser u;
    u.name = name;
    u.display_name = name;
    auto id = store.create_user(u);
    REQUIRE(id.is_ok());
    return *id;
  }

  std::string direct(const Account& a, const Account& b) {
    Reply r = call("POST", "/api/v1/conversations/direct", Json{{"user_id", b.id}}, a.token);
    REQUIRE(r.status == 200);
    return r.json["conversation_id"];
  }

  Reply send(const Account& a, const std::string& conv, const std::string& text, unsigned n) {
    return call("POST", "/api/v1/conversations/" + conv + "/messages",
                Json{{"client_msg_id", uuid(n)}, {"body", text}}, a.token);
  }

  Reply history(const Account& a, const std::string& conv, const std::string& query = "") {
    return call("GET", "/api/v1/conversations/" + conv + "/messages", "", a.token, query);
  }

  std::shared_ptr<FakeSession> connect_ws(const std::string& token, chatcore::SessionId* id) {
    auto s = std::make_shared<FakeSession>();
    *id = engine.connect(s);
    auto hello = chatcore::encode_hello(1, token, "device-1", 0);
    engine.on_frame(*id, hello);
    return s;
  }

  chatcore::ManualClock clock;
  FaultyStore store;
  TokenAuth auth;
  chatcore::Engine engine;
  HttpApi api;
};

}  // namespace

// ---- TokenAuth --------------------------------------------------------------------------

TEST_CASE("TokenAuth: Argon2id password hashes verify only the right password") {
  chatcore::ManualClock clock;
  chatcore::MemoryStore store;
  TokenAuth auth(store, clock, kTtlMs);
  auto hash = auth.hash_password("correct horse");
  REQUIRE(hash.is_ok());
  CHECK(hash->starts_with("$argon2id$"));
  CHECK(auth.verify_password(*hash, "correct horse"));
  CHECK_FALSE(auth.verify_password(*hash, "correct horsE"));
  CHECK_FALSE(auth.verify_password("not a hash", "correct horse"));
  // Salted: the same password never hashes to the same string twice.
  CHECK(*auth.hash_password("correct horse") != *hash);
}

TEST_CASE("TokenAuth: tokens are random, stored only hashed, expire and are revocable") {
  chatcore::ManualClock clock;
  chatcore::MemoryStore store;
  TokenAuth auth(store, clock, kTtlMs);
  auto a = auth.issue(UserId(7));
  auto b = auth.issue(UserId(7));
  REQUIRE(a.is_ok());
  REQUIRE(b.is_ok());
  CHECK(a->token.size() == 64);
  CHECK(a->token != b->token);
  CHECK(a->expires_at_ms == clock.now_ms() + kTtlMs);
  // The store knows the hash, never the token itself.
  CHECK(store.get_token(a->credential_key).is_ok());
  CHECK(store.get_token(a->token).status().code() == ErrorCode::kNotFound);
  CHECK(a->credential_key != a->token);

  auto id = auth.authenticate(a->token);
  REQUIRE(id.is_ok());
  CHECK(id->user == UserId(7));
  CHECK(id->credential_key == a->credential_key);
  // Hex is case-insensitive: the key is the hash of the decoded bytes.
  std::string upper = a->token;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  CHECK(auth.authenticate(upper).is_ok());

  for (std::string bad : {std::string(), std::string(63, 'a'), std::string(64, 'g'), a->token + "0",
                          std::string(64, '0')}) {
    CHECK(auth.authenticate(bad).status().code() == ErrorCode::kUnauthenticated);
  }

  // Revocation: the key is returned (for Engine::revoke_credential), the
  // token stops working, the other token of the same user keeps working.
  auto key = auth.revoke(a->token);
  REQUIRE(key.is_ok());
  CHECK(*key == a->credential_key);
  CHECK(auth.authenticate(a->token).status().code() == ErrorCode::kUnauthenticated);
  CHECK(auth.revoke(a->token).status().code() == ErrorCode::kUnauthenticated);
  CHECK(auth.authenticate(b->token).is_ok());

  // Expiry: valid until the last millisecond, then refused and deleted.
  clock.advance(kTtlMs - 1);
  CHECK(auth.authenticate(b->token).is_ok());
  clock.advance(1);
  CHECK(auth.authenticate(b->token).status().code() == ErrorCode::kUnauthenticated);
  CHECK(store.get_token(b->credential_key).status().code() == ErrorCode::kNotFound);
}

TEST_CASE("TokenAuth: an expired token is deleted through the cleanup runner") {
  chatcore::ManualClock clock;
  chatcore::MemoryStore store;
  TokenAuth auth(store, clock, kTtlMs);
  std::vector<std::function<void()>> queued;
  auth.set_cleanup_runner([&](std::function<void()> f) { queued.push_back(std::move(f)); });
  auto t = auth.issue(UserId(5));
  REQUIRE(t.is_ok());
  clock.advance(kTtlMs);
  // Refused at once; the deletion waits for the runner (chatcored: the
  // HTTP write thread), so the calling thread wrote nothing.
  CHECK(auth.authenticate(t->token).status().code() == ErrorCode::kUnauthenticated);
  REQUIRE(queued.size() == 1);
  CHECK(store.get_token(t->credential_key).is_ok());
  queued.front()();
  CHECK(store.get_token(t->credential_key).status().code() == ErrorCode::kNotFound);
  // Asked again before the queued deletion ran, it is refused all the
  // same, and no second deletion is queued.
  auto u = auth.issue(UserId(6));
  REQUIRE(u.is_ok());
  clock.advance(kTtlMs);
  queued.clear();
  CHECK(auth.authenticate(u->token).status().code() == ErrorCode::kUnauthenticated);
  CHECK(auth.authenticate(u->token).status().code() == ErrorCode::kUnauthenticated);
  REQUIRE(queued.size() == 1);
  queued.front()();
  CHECK(store.get_token(u->credential_key).status().code() == ErrorCode::kNotFound);
  // Once deleted, it is simply unknown: nothing more to queue.
  CHECK(auth.authenticate(u->token).status().code() == ErrorCode::kUnauthenticated);
  CHECK(queued.size() == 1);
}

TEST_CASE("TokenAuth: the Authorization header") {
  CHECK(TokenAuth::bearer_token("Bearer abc") == std::optional<std::string_view>("abc"));
  CHECK(TokenAuth::bearer_token("bearer abc") == std::optional<std::string_view>("abc"));
  CHECK(TokenAuth::bearer_token("  BEARER \t abc  ") == std::optional<std::string_view>("abc"));
  CHECK_FALSE(TokenAuth::bearer_token("Basic abc").has_value());
  CHECK_FALSE(TokenAuth::bearer_token("Bearer").has_value());
  CHECK_FALSE(TokenAuth::bearer_token("").has_value());
  CHECK_FALSE(TokenAuth::bearer_token("Bearerabc").has_value());

  chatcore::ManualClock clock;
  chatcore::MemoryStore store;
  TokenAuth auth(store, clock, kTtlMs);
  auto t = auth.issue(UserId(3));
  REQUIRE(t.is_ok());
  CHECK(auth.authenticate_header("Bearer " + t->token)->user == UserId(3));
  CHECK(auth.authenticate_header(t->token).status().code() == ErrorCode::kUnauthenticated);
  CHECK(auth.authenticate_header("").status().code() == ErrorCode::kUnauthenticated);
}

TEST_CASE("TokenAuth: a storage failure is not reported as a bad token") {
  chatcore::ManualClock clock;
  FaultyStore store;
  TokenAuth auth(store, clock, kTtlMs);
  auto t = auth.issue(UserId(3));
  REQUIRE(t.is_ok());
  store.fault = ErrorCode::kUnavailable;
  CHECK(auth.authenticate(t->token).status().code() == ErrorCode::kUnavailable);
  CHECK(auth.issue(UserId(3)).status().code() == ErrorCode::kUnavailable);
}

// ---- json_util --------------------------------------------------------------------------

TEST_CASE("json_util: UTF-8 validation, query strings, typed fields") {
  using namespace chatcored::json_util;
  CHECK(valid_utf8(""));
  CHECK(valid_utf8("h\xc3\xa9llo \xf0\x9f\x98\x80"));
  CHECK_FALSE(valid_utf8("\xff"));
  CHECK_FALSE(valid_utf8("\xc0\xaf"));          // overlong '/'
  CHECK_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate U+D800
  CHECK_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(valid_utf8("\xe2\x82"));          // truncated

  auto q = parse_query("name=al%69ce&x=a+b&name=second&flag&=v");
  REQUIRE(q.is_ok());
  CHECK(q->at("name") == "alice");
  CHECK(q->at("x") == "a b");
  CHECK(q->at("flag").empty());
  CHECK(parse_query("a=%zz").status().code() == ErrorCode::kInvalidArgument);
  CHECK(parse_query("a=%4").status().code() == ErrorCode::kInvalidArgument);
  CHECK(parse_query("a=%ff").status().code() == ErrorCode::kInvalidUtf8);

  auto doc = parse_object(R"({"s":"x","id":"42","zero":"0","n":5,"neg":-1,"f":1.5,"nul":null})");
  REQUIRE(doc.is_ok());
  CHECK(*required_string(*doc, "s") == "x");
  CHECK(required_string(*doc, "n").status().code() == ErrorCode::kInvalidArgument);
  CHECK(required_string(*doc, "missing").status().code() == ErrorCode::kInvalidArgument);
  CHECK(!optional_string(*doc, "nul")->has_value());
  CHECK(*required_id(*doc, "id") == 42);
  CHECK(required_id(*doc, "zero").status().code() == ErrorCode::kInvalidArgument);
  CHECK(required_id(*doc, "n").status().code() == ErrorCode::kInvalidArgument);
  CHECK(*required_uint(*doc, "n") == 5);
  CHECK(required_uint(*doc, "neg").status().code() == ErrorCode::kInvalidArgument);
  CHECK(required_uint(*doc, "f").status().code() == ErrorCode::kInvalidArgument);
  CHECK(parse_object("[1]").status().code() == ErrorCode::kInvalidArgument);
  CHECK(parse_object("{").status().code() == ErrorCode::kInvalidArgument);
  CHECK(parse_object("{\"a\":1e400}").status().code() == ErrorCode::kInvalidArgument);
  CHECK(parse_object("{\"a\":\"\xff\"}").status().code() == ErrorCode::kInvalidUtf8);

  Json err = error_body(Status::rate_limited("slow down"), 1500);
  CHECK(err["error"]["code"] == "rate_limited");
  CHECK(err["error"]["message"] == "slow down");
  CHECK(err["error"]["retry_after_ms"] == 1500);
  CHECK_FALSE(error_body(Status::not_found("x"))["error"].contains("retry_after_ms"));
}

// ---- routing ----------------------------------------------------------------------------

TEST_CASE("routing: unknown routes are 404, wrong methods 405 with Allow") {
  Fixture f;
  for (const char* path :
       {"/api/v1/nope", "/api/v1", "/api/v1/", "/api/v1/users/", "/api/v1//users", "/api/v2/users",
        "/api/v1/users/1/extra", "/api/v1/groups/1/members/2/x"}) {
    CAPTURE(path);
    Reply r = f.call("GET", path);
    CHECK(r.status == 404);
    CHECK(r.code() == "not_found");
  }
  Reply put = f.call("PUT", "/api/v1/users");
  CHECK(put.status == 405);
  CHECK(put.code() == "invalid_argument");
  CHECK(put.header("Allow") == "POST, GET");
  // 405 comes before authentication: the method is wrong whoever asks.
  Reply del = f.call("DELETE", "/api/v1/discover");
  CHECK(del.status == 405);
  CHECK(del.header("Allow") == "GET");
  Reply get = f.call("GET", "/api/v1/conversations/direct");
  CHECK(get.status == 405);
  CHECK(get.header("Allow") == "POST");
}

TEST_CASE("auth: every route except signup and login needs a valid bearer token") {
  Fixture f;
  struct Route {
    const char* method;
    const char* path;
  };
  for (Route r :
       {Route{"GET", "/api/v1/users/me"}, Route{"PATCH", "/api/v1/users/me"},
        Route{"GET", "/api/v1/users"}, Route{"GET", "/api/v1/users/1"},
        Route{"DELETE", "/api/v1/sessions"}, Route{"POST", "/api/v1/contacts"},
        Route{"GET", "/api/v1/contacts"}, Route{"DELETE", "/api/v1/contacts/1"},
        Route{"POST", "/api/v1/groups"}, Route{"GET", "/api/v1/groups"},
        Route{"GET", "/api/v1/groups/1"}, Route{"POST", "/api/v1/groups/1/members"},
        Route{"DELETE", "/api/v1/groups/1/members/2"},
        Route{"POST", "/api/v1/conversations/direct"}, Route{"GET", "/api/v1/conversations"},
        Route{"GET", "/api/v1/conversations/3/messages"},
        Route{"POST", "/api/v1/conversations/3/messages"},
        Route{"POST", "/api/v1/conversations/3/read"}, Route{"GET", "/api/v1/discover"}}) {
    CAPTURE(r.path);
    CAPTURE(r.method);
    Reply reply = f.call(r.method, r.path, "{}");
    CHECK(reply.status == 401);
    CHECK(reply.code() == "unauthenticated");
    CHECK(reply.header("WWW-Authenticate") == "Bearer");
    Reply bad = f.call(r.method, r.path, "{}", std::string(64, 'a'));
    CHECK(bad.status == 401);
  }
  HttpRequest basic;
  basic.method = "GET";
  basic.path = "/api/v1/users/me";
  basic.authorization = "Basic YWxpY2U6cHc=";
  CHECK(f.request(basic).status == 401);
}

// ---- accounts and sessions --------------------------------------------------------------

TEST_CASE("signup: 201 with a string id; name, password and field rules; 409 on a taken name") {
  Fixture f;
  Reply r = f.call("POST", "/api/v1/users",
                   R"({"name":"alice","password":"12345678","email":"a@example.org",
                       "phone":"+1 555-0100"})");
  REQUIRE(r.status == 201);
  REQUIRE(r.json["user_id"].is_string());
  CHECK(r.json["user_id"] == "1");
  CHECK(r.json["name"] == "alice");
  auto stored = f.store.get_user(UserId(1));
  REQUIRE(stored.is_ok());
  CHECK(stored->display_name == "alice");  // defaults to the name
  CHECK(stored->email == "a@example.org");
  CHECK(stored->phone == "+1 555-0100");

  Reply dup = f.call("POST", "/api/v1/users", R"({"name":"alice","password":"12345678"})");
  CHECK(dup.status == 409);
  CHECK(dup.code() == "already_exists");

  const std::string long_pw(1025, 'p');
  for (std::string body : {
           std::string(R"({"name":"","password":"12345678"})"),
           R"({"name":")" + std::string(65, 'a') + R"(","password":"12345678"})",
           std::string(R"({"name":"a b","password":"12345678"})"),
           std::string(R"({"name":"caf\u00e9","password":"12345678"})"),
           std::string(R"({"name":"x/y","password":"12345678"})"),
           std::string(R"({"name":"bob","password":"1234567"})"),
           R"({"name":"bob","password":")" + long_pw + R"("})",
           std::string(R"({"name":"bob"})"),
           std::string(R"({"password":"12345678"})"),
           std::string(R"({"name":5,"password":"12345678"})"),
           std::string(R"({"name":"bob","password":12345678})"),
           std::string(R"({"name":"bob","password":"12345678","email":"nope"})"),
           std::string(R"({"name":"bob","password":"12345678","email":7})"),
           std::string(R"({"name":"bob","password":"12345678","phone":"call me"})"),
           std::string(R"({"name":"bob","password":"12345678","display_name":""})"),
           std::string(R"({"name":"bob","password":"12345678","display_name":"a\u0007"})"),
           std::string("{\"name\":"),
           std::string("[]"),
           std::string(""),
       }) {
    CAPTURE(body);
    Reply bad = f.call("POST", "/api/v1/users", body);
    CHECK(bad.status == 400);
    CHECK(bad.code() == "invalid_argument");
  }
  Reply utf = f.call("POST", "/api/v1/users", "{\"name\":\"bob\",\"password\":\"\xff\xfe\"}");
  CHECK(utf.status == 400);
  CHECK(utf.code() == "invalid_utf8");

  // The edges of the rules are accepted.
  CHECK(f.call("POST", "/api/v1/users",
               R"({"name":")" + std::string(64, 'b') + R"(","password":"12345678"})")
            .status == 201);
  CHECK(f.call("POST", "/api/v1/users",
               R"({"name":"A.b-c_9","password":")" + std::string(1024, 'p') + R"("})")
            .status == 201);
  // Names compare byte-wise: case makes a different name.
  CHECK(f.call("POST", "/api/v1/users", R"({"name":"Alice","password":"12345678"})").status == 201);
}

TEST_CASE("login: 200 with a token; 401 for a wrong password or an unknown name") {
  Fixture f;
  REQUIRE(f.call("POST", "/api/v1/users", R"({"name":"alice","password":"12345678"})").status ==
          201);
  Reply ok = f.call("POST", "/api/v1/sessions", R"({"name":"alice","password":"12345678"})");
  REQUIRE(ok.status == 200);
  CHECK(ok.json["user_id"] == "1");
  CHECK(ok.json["token"].get<std::string>().size() == 64);
  CHECK(ok.json["expires_at"] == f.clock.now_ms() + kTtlMs);

  Reply wrong = f.call("POST", "/api/v1/sessions", R"({"name":"alice","password":"123456789"})");
  CHECK(wrong.status == 401);
  CHECK(wrong.code() == "unauthenticated");
  Reply unknown = f.call("POST", "/api/v1/sessions", R"({"name":"zed","password":"12345678"})");
  CHECK(unknown.status == 401);
  // The same answer for both, so a caller cannot probe which names exist.
  CHECK(unknown.json["error"]["message"] == wrong.json["error"]["message"]);
  CHECK(f.call("POST", "/api/v1/sessions", R"({"name":"alice"})").status == 400);
  CHECK(f.call("POST", "/api/v1/sessions", "not json").status == 400);

  // The token opens the API; another login gives an independent token.
  std::string token = ok.json["token"];
  CHECK(f.call("GET", "/api/v1/users/me", "", token).status == 200);
  Reply again = f.call("POST", "/api/v1/sessions", R"({"name":"alice","password":"12345678"})");
  CHECK(again.json["token"] != ok.json["token"]);
}

TEST_CASE("sessions: tokens expire; logout revokes exactly the token used") {
  Fixture f;
  Account a = f.account("alice");
  Reply second =
      f.call("POST", "/api/v1/sessions", R"({"name":"alice","password":"correct horse"})");
  REQUIRE(second.status == 200);
  std::string other = second.json["token"];

  // Any case of the scheme and hex works.
  HttpRequest lower;
  lower.method = "GET";
  lower.path = "/api/v1/users/me";
  lower.authorization = "bearer " + a.token;
  CHECK(f.request(lower).status == 200);

  Reply out = f.call("DELETE", "/api/v1/sessions", "", a.token);
  CHECK(out.status == 204);
  CHECK(out.body.empty());
  Reply after = f.call("GET", "/api/v1/users/me", "", a.token);
  CHECK(after.status == 401);
  CHECK(after.code() == "unauthenticated");
  CHECK(f.call("DELETE", "/api/v1/sessions", "", a.token).status == 401);
  CHECK(f.call("GET", "/api/v1/users/me", "", other).status == 200);

  // Expiry, with the injected clock.
  f.clock.advance(kTtlMs - 1);
  CHECK(f.call("GET", "/api/v1/users/me", "", other).status == 200);
  f.clock.advance(1);
  Reply expired = f.call("GET", "/api/v1/users/me", "", other);
  CHECK(expired.status == 401);
  CHECK(expired.code() == "unauthenticated");
}

TEST_CASE("logout closes the WebSocket sessions opened with that token") {
  Fixture f;
  Account a = f.account("alice");
  Reply second =
      f.call("POST", "/api/v1/sessions", R"({"name":"alice","password":"correct horse"})");
  std::string other = second.json["token"];
  chatcore::SessionId id1 = 0;
  chatcore::SessionId id2 = 0;
  auto ws1 = f.connect_ws(a.token, &id1);
  auto ws2 = f.connect_ws(other, &id2);
  REQUIRE_FALSE(ws1->closed);
  REQUIRE_FALSE(ws1->frames.empty());
  auto* welcome = chatcore::verify_frame(ws1->frames.front());
  REQUIRE(welcome != nullptr);
  CHECK(welcome->body_type() == chatcore::wire::Body::Welcome);

  REQUIRE(f.call("DELETE", "/api/v1/sessions", "", a.token).status == 204);
  CHECK(ws1->closed);
  CHECK(ws1->close_code == chatcore::CloseCode::kUnauthenticated);
  CHECK_FALSE(ws2->closed);
  f.engine.disconnect(id1, true);
  f.engine.disconnect(id2, true);
}

// ---- profiles ---------------------------------------------------------------------------

TEST_CASE("profile: me with private fields, others without; PATCH; lookup by name and id") {
  Fixture f;
  REQUIRE(f.call("POST", "/api/v1/users",
                 R"({"name":"alice","password":"12345678","email":"a@x.org","phone":"123"})")
              .status == 201);
  Account a{
      "1",
      f.call("POST", "/api/v1/sessions", R"({"name":"alice","password":"12345678"})").json["token"],
      UserId(1)};
  Account b = f.account("bob", "Bobby");

  Reply me = f.call("GET", "/api/v1/users/me", "", a.token);
  REQUIRE(me.status == 200);
  CHECK(me.json["user_id"] == "1");
  CHECK(me.json["name"] == "alice");
  CHECK(me.json["display_name"] == "alice");
  CHECK(me.json["email"] == "a@x.org");
  CHECK(me.json["phone"] == "123");
  CHECK(me.json["about"] == "");
  CHECK(me.json["image_url"] == "");
  CHECK(me.json["created_at"].is_number_integer());

  // Others see the public profile only; nobody ever sees a password hash.
  for (const Reply& r : {f.call("GET", "/api/v1/users/1", "", b.token),
                         f.call("GET", "/api/v1/users", "", b.token, "name=alice"),
                         f.call("GET", "/api/v1/users", "", b.token, "name=al%69ce")}) {
    REQUIRE(r.status == 200);
    CHECK(r.json["user_id"] == "1");
    CHECK(r.json["name"] == "alice");
    CHECK_FALSE(r.json.contains("email"));
    CHECK_FALSE(r.json.contains("phone"));
    CHECK(r.body.find("argon2") == std::string::npos);
    CHECK(r.body.find("password") == std::string::npos);
  }
  CHECK(me.body.find("argon2") == std::string::npos);
  // Your own id shows your private fields, like /users/me.
  CHECK(f.call("GET", "/api/v1/users/1", "", a.token).json["email"] == "a@x.org");
  CHECK(f.call("GET", "/api/v1/users/" + b.id, "", a.token).json["display_name"] == "Bobby");

  Reply missing = f.call("GET", "/api/v1/users", "", a.token, "nom=alice");
  CHECK(missing.status == 400);
  CHECK(missing.code() == "invalid_argument");
  CHECK(f.call("GET", "/api/v1/users", "", a.token, "name=%zz").status == 400);
  Reply unknown = f.call("GET", "/api/v1/users", "", a.token, "name=zed");
  CHECK(unknown.status == 404);
  CHECK(unknown.code() == "not_found");
  CHECK(f.call("GET", "/api/v1/users/999", "", a.token).status == 404);
  CHECK(f.call("GET", "/api/v1/users/abc", "", a.token).status == 400);
  CHECK(f.call("GET", "/api/v1/users/0", "", a.token).status == 400);
  CHECK(f.call("GET", "/api/v1/users/99999999999", "", a.token).status == 400);

  Reply patch = f.call("PATCH", "/api/v1/users/me",
                       R"({"display_name":"Alice A.","about":"hi there",
                           "image_url":"https://img.example/a.png"})",
                       a.token);
  REQUIRE(patch.status == 200);
  CHECK(patch.json["display_name"] == "Alice A.");
  CHECK(patch.json["about"] == "hi there");
  CHECK(patch.json["image_url"] == "https://img.example/a.png");
  CHECK(patch.json["email"] == "a@x.org");
  // Only the given fields change.
  Reply partial = f.call("PATCH", "/api/v1/users/me", R"({"about":""})", a.token);
  CHECK(partial.json["about"] == "");
  CHECK(partial.json["display_name"] == "Alice A.");
  CHECK(f.call("GET", "/api/v1/users/1", "", b.token).json["display_name"] == "Alice A.");

  for (std::string body : {
           std::string("{}"),
           std::string(R"({"displayname":"typo"})"),
           std::string(R"({"display_name":""})"),
           R"({"display_name":")" + std::string(129, 'x') + R"("})",
           std::string(R"({"display_name":"tab\there"})"),
           std::string(R"({"display_name":5})"),
           R"({"about":")" + std::string(1025, 'x') + R"("})",
           std::string(R"j({"image_url":"javascript:alert(1)"})j"),
           std::string(R"({"image_url":"data:image/png;base64,AAAA"})"),
           std::string(R"({"image_url":["https://x"]})"),
           std::string("nope"),
       }) {
    CAPTURE(body);
    Reply bad = f.call("PATCH", "/api/v1/users/me", body, a.token);
    CHECK(bad.status == 400);
    CHECK(bad.code() == "invalid_argument");
  }
  CHECK(f.call("GET", "/api/v1/users/me", "", a.token).json["display_name"] == "Alice A.");
}

// ---- contacts ---------------------------------------------------------------------------

TEST_CASE("contacts: add, list with presence, remove") {
  Fixture f;
  Account a = f.account("alice");
  Account b = f.account("bob", "Bobby");
  UserId carol = f.bare_user("carol");

  Reply added = f.call("POST", "/api/v1/contacts", Json{{"user_id", b.id}}, a.token);
  REQUIRE(added.status == 201);
  CHECK(added.json["user_id"] == b.id);
  CHECK(added.json["display_name"] == "Bobby");
  CHECK(added.json["online"] == false);
  CHECK(added.json["last_seen"].is_null());  // never seen

  Reply dup = f.call("POST", "/api/v1/contacts", Json{{"user_id", b.id}}, a.token);
  CHECK(dup.status == 409);
  CHECK(dup.code() == "already_exists");
  Reply self = f.call("POST", "/api/v1/contacts", Json{{"user_id", a.id}}, a.token);
  CHECK(self.status == 400);
  Reply nobody = f.call("POST", "/api/v1/contacts", Json{{"user_id", "999"}}, a.token);
  CHECK(nobody.status == 404);
  CHECK(nobody.code() == "not_found");
  CHECK(f.call("POST", "/api/v1/contacts", Json{{"user_id", 2}}, a.token).status == 400);
  CHECK(f.call("POST", "/api/v1/contacts", Json::object(), a.token).status == 400);
  REQUIRE(
      f.call("POST", "/api/v1/contacts", Json{{"user_id", std::to_string(carol.value)}}, a.token)
          .status == 201);

  // Presence comes from the engine: bob online while his WebSocket is up,
  // then offline with a last-seen time after a clean close.
  chatcore::SessionId sid = 0;
  auto ws = f.connect_ws(b.token, &sid);
  REQUIRE_FALSE(ws->closed);
  Reply list = f.call("GET", "/api/v1/contacts", "", a.token);
  REQUIRE(list.status == 200);
  REQUIRE(list.json["contacts"].size() == 2);
  Json bob = list.json["contacts"][0];
  CHECK(bob["user_id"] == b.id);
  CHECK(bob["name"] == "bob");
  CHECK(bob["display_name"] == "Bobby");
  CHECK(bob["online"] == true);
  CHECK(list.json["contacts"][1]["name"] == "carol");
  CHECK(list.json["contacts"][1]["online"] == false);

  f.clock.advance(5000);
  f.engine.disconnect(sid, true);
  Json bob_after = f.call("GET", "/api/v1/contacts", "", a.token).json["contacts"][0];
  CHECK(bob_after["online"] == false);
  REQUIRE(bob_after["last_seen"].is_number_integer());
  CHECK(bob_after["last_seen"].get<std::int64_t>() > 0);

  // Contacts are directed: bob has not added alice.
  CHECK(f.call("GET", "/api/v1/contacts", "", b.token).json["contacts"].empty());

  CHECK(f.call("DELETE", "/api/v1/contacts/" + b.id, "", a.token).status == 204);
  Reply gone = f.call("DELETE", "/api/v1/contacts/" + b.id, "", a.token);
  CHECK(gone.status == 404);
  CHECK(gone.code() == "not_found");
  CHECK(f.call("DELETE", "/api/v1/contacts/x", "", a.token).status == 400);
  CHECK(f.call("GET", "/api/v1/contacts", "", a.token).json["contacts"].size() == 1);
}

// ---- groups -----------------------------------------------------------------------------

TEST_CASE("groups: create, read (members only), add and remove members") {
  Fixture f;
  Account a = f.account("alice");
  Account b = f.account("bob");
  Account c = f.account("carol");
  UserId dave = f.bare_user("dave");
  const std::string dave_id = std::to_string(dave.value);

  Reply created =
      f.call("POST", "/api/v1/groups", Json{{"name", "Team"}, {"members", {b.id}}}, a.token);
  REQUIRE(created.status == 201);
  std::string gid = created.json["group_id"];
  std::string conv = created.json["conversation_id"];
  CHECK(conv == std::to_string(ConversationId::group(chatcore::GroupId(std::stoull(gid))).value));

  Reply got = f.call("GET", "/api/v1/groups/" + gid, "", b.token);
  REQUIRE(got.status == 200);
  CHECK(got.json["name"] == "Team");
  CHECK(got.json["owner_id"] == a.id);
  CHECK(got.json["conversation_id"] == conv);
  REQUIRE(got.json["members"].size() == 2);
  CHECK(got.json["members"][0]["user_id"] == a.id);
  CHECK(got.json["members"][0]["role"] == "owner");
  CHECK(got.json["members"][0]["online"] == false);
  CHECK(got.json["members"][0].contains("last_seen"));
  CHECK(got.json["members"][1]["user_id"] == b.id);
  CHECK(got.json["members"][1]["role"] == "member");

  // Only members read a group.
  Reply outsider = f.call("GET", "/api/v1/groups/" + gid, "", c.token);
  CHECK(outsider.status == 403);
  CHECK(outsider.code() == "permission_denied");
  CHECK(outsider.body.find("Team") == std::string::npos);
  CHECK(f.call("GET", "/api/v1/groups/999", "", a.token).status == 404);
  CHECK(f.call("GET", "/api/v1/groups/x", "", a.token).status == 400);

  // Creation errors.
  CHECK(
      f.call("POST", "/api/v1/groups", Json{{"name", "X"}, {"members", {"999"}}}, a.token).status ==
      404);
  CHECK(f.call("POST", "/api/v1/groups", Json{{"name", "X"}, {"members", {2}}}, a.token).status ==
        400);
  CHECK(f.call("POST", "/api/v1/groups", Json{{"name", "X"}, {"members", "2"}}, a.token).status ==
        400);
  CHECK(f.call("POST", "/api/v1/groups", Json{{"name", ""}}, a.token).status == 400);
  CHECK(f.call("POST", "/api/v1/groups", Json{{"name", std::string(129, 'g')}}, a.token).status ==
        400);
  CHECK(f.call("POST", "/api/v1/groups", Json{{"members", Json::array()}}, a.token).status == 400);
  // members may be omitted: the creator alone.
  Reply solo = f.call("POST", "/api/v1/groups", Json{{"name", "Solo"}}, c.token);
  REQUIRE(solo.status == 201);

  // Adding: owner yes, plain member no; twice is a conflict.
  Reply add =
      f.call("POST", "/api/v1/groups/" + gid + "/members", Json{{"user_id", c.id}}, a.token);
  CHECK(add.status == 201);
  CHECK(add.json["role"] == "member");
  Reply again =
      f.call("POST", "/api/v1/groups/" + gid + "/members", Json{{"user_id", c.id}}, a.token);
  CHECK(again.status == 409);
  CHECK(again.code() == "already_exists");
  Reply by_member =
      f.call("POST", "/api/v1/groups/" + gid + "/members", Json{{"user_id", dave_id}}, b.token);
  CHECK(by_member.status == 403);
  CHECK(by_member.code() == "permission_denied");
  CHECK(f.call("POST", "/api/v1/groups/" + gid + "/members", Json{{"user_id", "999"}}, a.token)
            .status == 404);
  CHECK(
      f.call("POST", "/api/v1/groups/" + gid + "/members", Json{{"user", c.id}}, a.token).status ==
      400);

  // GET /groups lists the caller's groups with its role.
  Reply mine = f.call("GET", "/api/v1/groups", "", c.token);
  REQUIRE(mine.status == 200);
  REQUIRE(mine.json["groups"].size() == 2);
  std::vector<std::string> roles;
  for (const auto& g : mine.json["groups"]) roles.push_back(g["role"]);
  std::sort(roles.begin(), roles.end());
  CHECK(roles == std::vector<std::string>{"member", "owner"});

  // Removing: a member may not remove another, may leave; the owner may not
  // leave but may remove anyone else.
  Reply kick = f.call("DELETE", "/api/v1/groups/" + gid + "/members/" + c.id, "", b.token);
  CHECK(kick.status == 403);
  CHECK(f.call("DELETE", "/api/v1/groups/" + gid + "/members/" + b.id, "", b.token).status == 204);
  Reply owner_leaves = f.call("DELETE", "/api/v1/groups/" + gid + "/members/" + a.id, "", a.token);
  CHECK(owner_leaves.status == 409);
  CHECK(owner_leaves.code() == "failed_precondition");
  CHECK(f.call("DELETE", "/api/v1/groups/" + gid + "/members/" + c.id, "", a.token).status == 204);
  Reply not_member = f.call("DELETE", "/api/v1/groups/" + gid + "/members/" + c.id, "", a.token);
  CHECK(not_member.status == 404);
  // bob left: he may no longer read the group.
  CHECK(f.call("GET", "/api/v1/groups/" + gid, "", b.token).status == 403);
  CHECK(f.call("GET", "/api/v1/groups", "", b.token).json["groups"].empty());
}

TEST_CASE("groups: the 101st member is refused with group_full") {
  Fixture f;
  Account owner = f.account("owner");
  Json members = Json::array();
  for (int i = 0; i < 99; ++i) {
    members.push_back(std::to_string(f.bare_user("member" + std::to_string(i)).value));
  }
  std::string extra = std::to_string(f.bare_user("extra").value);

  // Owner + 100 others: over the cap at creation.
  Json too_many = members;
  too_many.push_back(extra);
  Reply over =
      f.call("POST", "/api/v1/groups", Json{{"name", "Big"}, {"members", too_many}}, owner.token);
  CHECK(over.status == 409);
  CHECK(over.code() == "group_full");

  // Owner + 99 = 100: exactly at the cap.
  Reply created =
      f.call("POST", "/api/v1/groups", Json{{"name", "Big"}, {"members", members}}, owner.token);
  REQUIRE(created.status == 201);
  std::string gid = created.json["group_id"];
  CHECK(f.call("GET", "/api/v1/groups/" + gid, "", owner.token).json["members"].size() == 100);

  Reply full =
      f.call("POST", "/api/v1/groups/" + gid + "/members", Json{{"user_id", extra}}, owner.token);
  CHECK(full.status == 409);
  CHECK(full.code() == "group_full");
  CHECK(f.call("GET", "/api/v1/groups/" + gid, "", owner.token).json["members"].size() == 100);

  // One leaves, and the same request then succeeds.
  REQUIRE(f.call("DELETE", "/api/v1/groups/" + gid + "/members/" + members[0].get<std::string>(),
                 "", owner.token)
              .status == 204);
  CHECK(f.call("POST", "/api/v1/groups/" + gid + "/members", Json{{"user_id", extra}}, owner.token)
            .status == 201);
}

// ---- conversations and messages ---------------------------------------------------------

TEST_CASE("direct conversations: one id for both users") {
  Fixture f;
  Account a = f.account("alice", "Alice");
  Account b = f.account("bob", "Bob");
  std::string ab = f.direct(a, b);
  std::string ba = f.direct(b, a);
  CHECK(ab == ba);
  CHECK(ab == std::to_string(ConversationId::direct(a.uid, b.uid).value));
  Reply r = f.call("POST", "/api/v1/conversations/direct", Json{{"user_id", b.id}}, a.token);
  CHECK(r.json["peer_user_id"] == b.id);

  CHECK(f.call("POST", "/api/v1/conversations/direct", Json{{"user_id", a.id}}, a.token).status ==
        400);
  Reply unknown = f.call("POST", "/api/v1/conversations/direct", Json{{"user_id", "999"}}, a.token);
  CHECK(unknown.status == 404);
  CHECK(f.call("POST", "/api/v1/conversations/direct", Json{{"user_id", 2}}, a.token).status ==
        400);

  // Listed for both before any message.
  for (const Account* who : {&a, &b}) {
    Reply list = f.call("GET", "/api/v1/conversations", "", who->token);
    REQUIRE(list.status == 200);
    REQUIRE(list.json["conversations"].size() == 1);
    Json c = list.json["conversations"][0];
    CHECK(c["conversation_id"] == ab);
    CHECK(c["kind"] == "direct");
    CHECK(c["last_seq"] == 0);
    CHECK(c["last_message"].is_null());
    CHECK(c["unread"] == 0);
    CHECK(c["peer_user_id"] == (who == &a ? b.id : a.id));
    CHECK(c["title"] == (who == &a ? "Bob" : "Alice"));
  }
}

TEST_CASE("messages: send answers once durable, history pages in order, resend is idempotent") {
  Fixture f;
  Account a = f.account("alice");
  Account b = f.account("bob");
  std::string conv = f.direct(a, b);

  // The 201 comes from the engine's completion, i.e. only after the commit
  // (which with storage_thread=false runs inside poll()).
  HttpRequest req;
  req.method = "POST";
  req.path = "/api/v1/conversations/" + conv + "/messages";
  req.authorization = "Bearer " + a.token;
  req.body = Json{{"client_msg_id", uuid(1)}, {"body", "hello"}}.dump();
  std::vector<HttpResponse> replies;
  f.api.handle(req, [&](HttpResponse r) { replies.push_back(std::move(r)); });
  CHECK(replies.empty());
  CHECK(f.engine.poll() >= 1);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 201);
  Json first = Json::parse(replies[0].body);
  CHECK(first["seq"] == 1);
  CHECK(first["message_id"].is_string());
  CHECK(first["sent_at"] == f.clock.now_ms());
  CHECK(first["conversation_id"] == conv);
  CHECK(first["duplicate"] == false);

  // The same client_msg_id again: 200, the original ids, nothing new stored,
  // even with a different body.
  Reply resend = f.send(a, conv, "hello (retry)", 1);
  CHECK(resend.status == 200);
  CHECK(resend.json["message_id"] == first["message_id"]);
  CHECK(resend.json["seq"] == 1);
  CHECK(resend.json["duplicate"] == true);
  // Dedup is per sender: bob may use the same UUID.
  Reply bobs = f.send(b, conv, "hi alice", 1);
  CHECK(bobs.status == 201);
  CHECK(bobs.json["seq"] == 2);

  Reply page = f.history(b, conv);
  REQUIRE(page.status == 200);
  REQUIRE(page.json["messages"].size() == 2);
  Json m = page.json["messages"][0];
  CHECK(m["message_id"] == first["message_id"]);
  CHECK(m["seq"] == 1);
  CHECK(m["sender_id"] == a.id);
  CHECK(m["client_msg_id"] == uuid(1));
  CHECK(m["body"] == "hello");
  CHECK(m["sent_at"] == first["sent_at"]);
  CHECK(page.json["messages"][1]["sender_id"] == b.id);
}

TEST_CASE("messages: history paging, limits and bounds") {
  Fixture f(engine_options(1000.0, 1000.0));
  Account a = f.account("alice");
  Account b = f.account("bob");
  std::string conv = f.direct(a, b);
  for (unsigned i = 1; i <= 205; ++i) {
    REQUIRE(f.send(a, conv, "m" + std::to_string(i), i).status == 201);
  }
  auto seqs = [](const Reply& r) {
    std::vector<std::uint64_t> out;
    for (const auto& m : r.json["messages"]) out.push_back(m["seq"]);
    return out;
  };
  auto range = [](std::uint64_t lo, std::uint64_t hi) {
    std::vector<std::uint64_t> out;
    for (auto s = lo; s <= hi; ++s) out.push_back(s);
    return out;
  };
  CHECK(seqs(f.history(b, conv)) == range(156, 205));              // default 50 newest
  CHECK(seqs(f.history(b, conv, "limit=500")) == range(6, 205));   // clamped to 200
  CHECK(seqs(f.history(b, conv, "before_seq=6")) == range(1, 5));  // exclusive bound
  CHECK(seqs(f.history(b, conv, "before_seq=100&limit=3")) == range(97, 99));
  CHECK(seqs(f.history(b, conv, "after_seq=200")) == range(201, 205));
  CHECK(seqs(f.history(b, conv, "after_seq=0&limit=2")) == range(1, 2));
  CHECK(seqs(f.history(b, conv, "after_seq=205")).empty());
  CHECK(f.history(b, conv, "before_seq=1").json["messages"].empty());

  for (const char* q : {"before_seq=5&after_seq=1", "limit=0", "limit=-1", "limit=abc",
                        "before_seq=x", "after_seq=1.5", "limit=%zz"}) {
    CAPTURE(q);
    Reply bad = f.history(b, conv, q);
    CHECK(bad.status == 400);
    CHECK(bad.code() == "invalid_argument");
  }
}

TEST_CASE("messages: only members read or write a conversation") {
  Fixture f;
  Account a = f.account("alice");
  Account b = f.account("bob");
  Account c = f.account("carol");
  std::string conv = f.direct(a, b);
  REQUIRE(f.send(a, conv, "secret words", 1).status == 201);
  Reply group = f.call("POST", "/api/v1/groups", Json{{"name", "G"}, {"members", {b.id}}}, a.token);
  std::string gconv = group.json["conversation_id"];
  REQUIRE(f.send(b, gconv, "group secret", 2).status == 201);

  for (const std::string& cv : {conv, gconv}) {
    Reply read = f.history(c, cv);
    CHECK(read.status == 403);
    CHECK(read.code() == "permission_denied");
    CHECK_FALSE(read.json.contains("messages"));
    CHECK(read.body.find("secret") == std::string::npos);
    Reply write = f.send(c, cv, "intrusion", 3);
    CHECK(write.status == 403);
    CHECK(write.code() == "permission_denied");
    Reply mark = f.call("POST", "/api/v1/conversations/" + cv + "/read", Json{{"seq", 1}}, c.token);
    CHECK(mark.status == 403);
  }
  CHECK(f.history(a, conv).json["messages"].size() == 1);

  // An unknown group conversation is 404; a malformed id 400.
  std::string ghost = std::to_string(ConversationId::group(chatcore::GroupId(999)).value);
  Reply unknown = f.history(a, ghost);
  CHECK(unknown.status == 404);
  CHECK(unknown.code() == "not_found");
  CHECK(f.send(a, ghost, "x", 4).status == 404);
  for (const char* bad : {"abc", "0", "18446744073709551615", "-1"}) {
    CAPTURE(bad);
    CHECK(f.history(a, bad).status == 400);
  }
}

TEST_CASE("messages: body size, UTF-8, client_msg_id and field validation") {
  Fixture f;
  Account a = f.account("alice");
  Account b = f.account("bob");
  std::string conv = f.direct(a, b);
  const std::string path = "/api/v1/conversations/" + conv + "/messages";

  // Exactly 100,000 characters (200,000 bytes of 2-byte UTF-8) is accepted
  // and comes back intact.
  std::string big;
  for (int i = 0; i < 100'000; ++i) big += "\xc3\xa9";
  REQUIRE(f.send(a, conv, big, 1).status == 201);
  Reply page = f.history(b, conv, "limit=1");
  CHECK(page.json["messages"][0]["body"] == big);
  // Escaped as \uXXXX this is 600 KB of JSON (4-byte characters: 1.2 MB).
  CHECK(f.call("POST", path, Json{{"client_msg_id", uuid(2)}, {"body", big}}.dump(-1, ' ', true),
               a.token)
            .status == 201);

  // The worst case of escaping: 100,000 emoji, each a 12-byte surrogate
  // pair escape, is 1.2 MB of JSON; the default cap admits it.
  std::string emoji;
  for (int i = 0; i < 100'000; ++i) emoji += "\xf0\x9f\x98\x80";
  std::string escaped = Json{{"client_msg_id", uuid(9)}, {"body", emoji}}.dump(-1, ' ', true);
  CHECK(escaped.size() > 1'200'000);
  Reply astral = f.call("POST", path, escaped, a.token);
  CHECK(astral.status == 201);
  CHECK(f.history(b, conv, "limit=1").json["messages"][0]["body"] == emoji);

  Reply over = f.send(a, conv, std::string(100'001, 'a'), 3);
  CHECK(over.status == 413);
  CHECK(over.code() == "too_large");

  // The request body cap applies before anything else.
  Reply huge = f.call("POST", path, std::string(HttpApiOptions().max_body_bytes + 1, ' '), a.token);
  CHECK(huge.status == 413);
  CHECK(huge.code() == "too_large");

  std::string invalid = R"({"client_msg_id":")" + uuid(4) + "\",\"body\":\"bad \xc3\x28\"}";
  Reply utf = f.call("POST", path, invalid, a.token);
  CHECK(utf.status == 400);
  CHECK(utf.code() == "invalid_utf8");
  // A lone surrogate escape is not a character either; the JSON parser refuses it.
  Reply surrogate =
      f.call("POST", path, R"({"client_msg_id":")" + uuid(5) + R"(","body":"\ud800"})", a.token);
  CHECK(surrogate.status == 400);

  for (const Json& body : {
           Json{{"client_msg_id", "not-a-uuid"}, {"body", "x"}},
           Json{{"client_msg_id", "00000000-0000-0000-0000-000000000000"}, {"body", "x"}},
           Json{{"client_msg_id", uuid(6)}},
           Json{{"body", "x"}},
           Json{{"client_msg_id", uuid(7)}, {"body", ""}},
           Json{{"client_msg_id", uuid(8)}, {"body", 42}},
           Json{{"client_msg_id", 5}, {"body", "x"}},
       }) {
    CAPTURE(body.dump());
    Reply bad = f.call("POST", path, body, a.token);
    CHECK(bad.status == 400);
    CHECK(bad.code() == "invalid_argument");
  }
  CHECK(f.call("POST", path, "{", a.token).status == 400);
  // A deeply nested document is parsed without recursion and refused.
  Reply deep = f.call("POST", path, std::string(500'000, '[') + std::string(500'000, ']'), a.token);
  CHECK(deep.status == 400);
  CHECK(deep.code() == "invalid_argument");

  // Uppercase UUID text names the same id: the resend is a duplicate.
  std::string upper = uuid(1);
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  CHECK(f.call("POST", path, Json{{"client_msg_id", upper}, {"body", "again"}}, a.token).status ==
        200);
  CHECK(f.history(b, conv).json["messages"].size() == 3);
}

TEST_CASE("messages: rate limit is 429 with Retry-After") {
  Fixture f(engine_options(1.0, 2.0));
  Account a = f.account("alice");
  Account b = f.account("bob");
  std::string conv = f.direct(a, b);
  CHECK(f.send(a, conv, "1", 1).status == 201);
  CHECK(f.send(a, conv, "2", 2).status == 201);
  Reply limited = f.send(a, conv, "3", 3);
  CHECK(limited.status == 429);
  CHECK(limited.code() == "rate_limited");
  CHECK(limited.header("Retry-After") == "1");
  auto retry = limited.json["error"]["retry_after_ms"].get<std::uint32_t>();
  CHECK(retry > 0);
  CHECK(retry <= 1000);
  f.clock.advance(retry);
  CHECK(f.send(a, conv, "3", 3).status == 201);
  CHECK(f.history(a, conv).json["messages"].size() == 3);
}

TEST_CASE("conversations: list newest activity first, unread = last_seq - read cursor") {
  Fixture f;
  Account a = f.account("alice", "Alice");
  Account b = f.account("bob", "Bob");
  Account c = f.account("carol", "Carol");
  std::string ab = f.direct(a, b);
  f.clock.advance(1000);
  Reply g =
      f.call("POST", "/api/v1/groups", Json{{"name", "Team"}, {"members", {b.id, c.id}}}, a.token);
  REQUIRE(g.status == 201);
  std::string gconv = g.json["conversation_id"];
  std::string gid = g.json["group_id"];

  f.clock.advance(1000);
  for (unsigned i = 1; i <= 3; ++i)
    REQUIRE(f.send(a, ab, "ab" + std::to_string(i), i).status == 201);

  auto list = [&](const Account& who) {
    Reply r = f.call("GET", "/api/v1/conversations", "", who.token);
    REQUIRE(r.status == 200);
    return r.json["conversations"];
  };
  Json bl = list(b);
  REQUIRE(bl.size() == 2);
  CHECK(bl[0]["conversation_id"] == ab);  // the direct chat has the newest message
  CHECK(bl[0]["kind"] == "direct");
  CHECK(bl[0]["title"] == "Alice");
  CHECK(bl[0]["last_seq"] == 3);
  CHECK(bl[0]["unread"] == 3);
  CHECK(bl[0]["last_message"]["body"] == "ab3");
  CHECK(bl[0]["last_message"]["seq"] == 3);
  CHECK(bl[0]["last_message"]["sender_id"] == a.id);
  CHECK(bl[1]["conversation_id"] == gconv);
  CHECK(bl[1]["kind"] == "group");
  CHECK(bl[1]["title"] == "Team");
  CHECK(bl[1]["group_id"] == gid);
  CHECK(bl[1]["last_message"].is_null());
  CHECK(bl[1]["unread"] == 0);
  CHECK(list(c).size() == 1);  // carol is not in the direct chat

  // A group message moves the group to the top.
  f.clock.advance(1000);
  REQUIRE(f.send(c, gconv, "hello team", 10).status == 201);
  bl = list(b);
  CHECK(bl[0]["conversation_id"] == gconv);
  CHECK(bl[0]["unread"] == 1);
  CHECK(bl[0]["last_message"]["body"] == "hello team");

  // Read cursors: set, never backwards, clamped to the last seq.
  const std::string read_path = "/api/v1/conversations/" + ab + "/read";
  Reply r2 = f.call("POST", read_path, Json{{"seq", 2}}, b.token);
  REQUIRE(r2.status == 200);
  CHECK(r2.json["read_seq"] == 2);
  CHECK(r2.json["unread"] == 1);
  CHECK(list(b)[1]["unread"] == 1);
  CHECK(f.call("POST", read_path, Json{{"seq", 1}}, b.token).json["read_seq"] == 2);
  Reply r99 = f.call("POST", read_path, Json{{"seq", 99}}, b.token);
  CHECK(r99.json["read_seq"] == 3);
  CHECK(r99.json["unread"] == 0);
  CHECK(list(b)[1]["unread"] == 0);
  // A new message makes it unread again: derived, not a counter.
  f.clock.advance(1000);
  REQUIRE(f.send(a, ab, "ab4", 4).status == 201);
  Json after = list(b);
  CHECK(after[0]["conversation_id"] == ab);
  CHECK(after[0]["unread"] == 1);
  // Cursors are per user.
  CHECK(list(c)[0]["unread"] == 1);

  for (const Json& bad :
       {Json{{"seq", -1}}, Json{{"seq", "2"}}, Json{{"seq", 1.5}}, Json::object()}) {
    CHECK(f.call("POST", read_path, bad, b.token).status == 400);
  }
}

TEST_CASE("discover returns the configured WebSocket URL") {
  Fixture f;
  Account a = f.account("alice");
  Reply r = f.call("GET", "/api/v1/discover", "", a.token);
  CHECK(r.status == 200);
  CHECK(r.json["ws_url"] == kWsUrl);
}

TEST_CASE("storage faults map to 503 unavailable and 500 internal") {
  Fixture f;
  Account a = f.account("alice");
  Account b = f.account("bob");
  std::string conv = f.direct(a, b);

  f.store.fault = ErrorCode::kUnavailable;
  Reply down = f.call("GET", "/api/v1/users/me", "", a.token);
  CHECK(down.status == 503);
  CHECK(down.code() == "unavailable");
  CHECK(f.call("POST", "/api/v1/users", R"({"name":"x","password":"12345678"})").status == 503);

  f.store.fault = ErrorCode::kInternal;
  Reply broken = f.call("GET", "/api/v1/users/me", "", a.token);
  CHECK(broken.status == 500);
  CHECK(broken.code() == "internal");

  // A commit failure reaches the HTTP client as the send's answer.
  f.store.fault.reset();
  HttpRequest req;
  req.method = "POST";
  req.path = "/api/v1/conversations/" + conv + "/messages";
  req.authorization = "Bearer " + a.token;
  req.body = Json{{"client_msg_id", uuid(1)}, {"body", "x"}}.dump();
  std::vector<HttpResponse> replies;
  f.api.handle(req, [&](HttpResponse r) { replies.push_back(std::move(r)); });
  REQUIRE(replies.empty());
  f.store.fault = ErrorCode::kUnavailable;
  f.engine.poll();
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].status == 503);
  f.store.fault.reset();
  CHECK(f.history(a, conv).json["messages"].empty());
}

TEST_CASE("sends after engine shutdown are 503 unavailable") {
  Fixture f;
  Account a = f.account("alice");
  Account b = f.account("bob");
  std::string conv = f.direct(a, b);
  f.engine.shutdown();
  Reply r = f.send(a, conv, "too late", 1);
  CHECK(r.status == 503);
  CHECK(r.code() == "unavailable");
}

TEST_CASE("threaded: every write endpoint answers from the write thread through the owner thread") {
  // The daemon's configuration: hashing and store writes off the owner
  // thread, each answer posted back to it (Engine::post) and sent there.
  Fixture f(engine_options(), threaded_api_options());
  Account a = f.account("alice", "Alice");  // signup and login: hash, then write
  Account b = f.account("bob");

  // A client's writes land in the order it sent them.
  for (const char* about : {"first", "second", "third"}) {
    Reply r = f.call("PATCH", "/api/v1/users/me", Json{{"about", about}}, a.token);
    REQUIRE(r.status == 200);
    CHECK(r.json["about"] == about);
  }
  CHECK(f.call("GET", "/api/v1/users/me", "", a.token).json["about"] == "third");
  CHECK(f.call("PATCH", "/api/v1/users/me", Json{{"about", std::string(1025, 'x')}}, a.token)
            .status == 400);  // refused before any thread is involved

  Reply added = f.call("POST", "/api/v1/contacts", Json{{"user_id", b.id}}, a.token);
  REQUIRE(added.status == 201);
  CHECK(added.json["user_id"] == b.id);
  Reply dup = f.call("POST", "/api/v1/contacts", Json{{"user_id", b.id}}, a.token);
  CHECK(dup.status == 409);  // an error found on the write thread
  CHECK(f.call("DELETE", "/api/v1/contacts/" + b.id, "", a.token).status == 204);

  Reply direct = f.call("POST", "/api/v1/conversations/direct", Json{{"user_id", b.id}}, a.token);
  REQUIRE(direct.status == 200);
  std::string ab = direct.json["conversation_id"];
  for (unsigned i = 1; i <= 3; ++i)
    REQUIRE(f.send(a, ab, "m" + std::to_string(i), i).status == 201);
  Reply read = f.call("POST", "/api/v1/conversations/" + ab + "/read", Json{{"seq", 2}}, b.token);
  REQUIRE(read.status == 200);
  CHECK(read.json["read_seq"] == 2);
  CHECK(read.json["unread"] == 1);

  Reply group = f.call("POST", "/api/v1/groups", Json{{"name", "Team"}}, a.token);
  REQUIRE(group.status == 201);
  std::string gid = group.json["group_id"];
  CHECK(f.call("POST", "/api/v1/groups/" + gid + "/members", Json{{"user_id", b.id}}, a.token)
            .status == 201);
  CHECK(f.call("POST", "/api/v1/groups/" + gid + "/members", Json{{"user_id", a.id}}, b.token)
            .status == 403);  // bob is a plain member
  CHECK(f.call("DELETE", "/api/v1/groups/" + gid + "/members/" + b.id, "", a.token).status == 204);
  CHECK(f.call("GET", "/api/v1/groups/" + gid, "", b.token).status == 403);

  Reply taken = f.call("POST", "/api/v1/users",
                       Json{{"name", "alice"}, {"password", "correct horse"}}.dump());
  CHECK(taken.status == 409);
  CHECK(taken.code() == "already_exists");

  CHECK(f.call("DELETE", "/api/v1/sessions", "", a.token).status == 204);
  CHECK(f.call("GET", "/api/v1/users/me", "", a.token).status == 401);
}
