// HttpApi: the /api/v1 JSON routes over the Engine and the Store.
//
// Design:
//  * The rules live in the engine (membership, validation of message bodies,
//    rate limits, the commit pipeline); this file only translates HTTP+JSON
//    to engine/store calls and Status codes back to HTTP statuses. Account
//    and profile rules (name charset, password length, field sizes), which
//    the engine does not own, are checked here.
//  * Dispatch is a table of resources (path patterns) each with its methods,
//    so "no such path" (404) and "no such method on this path" (405 with an
//    Allow header) fall out of one lookup. Order of checks for every
//    request: route, method, body size, authentication, then the handler's
//    own validation. docs/http-api.md documents the result of each.
//  * A handler answers exactly once, through Call::reply/fail. Sends are the
//    only asynchronous route: their `respond` moves into the engine's
//    completion callback, which runs inside Engine::poll() once the message
//    is durable (or at once on a refusal).
//  * No exception escapes handle(): a bug becomes a 500 `internal` reply,
//    never a crashed daemon.
#include "http_api.hpp"

#include <pthread.h>

#include <asio/post.hpp>
#include <asio/thread_pool.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include "chatcore/ids.hpp"
#include "chatcore/model.hpp"
#include "json_util.hpp"
#include "token_auth.hpp"

namespace chatcored {

using chatcore::ConversationId;
using chatcore::ErrorCode;
using chatcore::GroupId;
using chatcore::Result;
using chatcore::Status;
using chatcore::UserId;
using json_util::Json;

namespace {

// ---- account field rules (docs/http-api.md, "Field rules") -------------------------
constexpr std::size_t kMaxNameBytes = 64;
constexpr std::size_t kMinPasswordBytes = 8;
constexpr std::size_t kMaxPasswordBytes = 1024;
constexpr std::size_t kMaxDisplayNameBytes = 128;
constexpr std::size_t kMaxAboutBytes = 1024;
constexpr std::size_t kMaxImageUrlBytes = 2048;
constexpr std::size_t kMaxEmailBytes = 254;  // RFC 5321 path limit
constexpr std::size_t kMaxPhoneBytes = 32;
constexpr std::uint32_t kDefaultPageLimit = 50;

constexpr std::string_view kApiPrefix = "/api/v1";

int http_status_of(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk:
      return 200;
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kInvalidUtf8:
    case ErrorCode::kMalformedFrame:
    case ErrorCode::kProtocolViolation:
      return 400;
    case ErrorCode::kUnauthenticated:
      return 401;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kFailedPrecondition:
    // 409, not 422: the request is well-formed; the group's current state
    // (full) conflicts with it, and the same request succeeds once a member
    // leaves.
    case ErrorCode::kGroupFull:
      return 409;
    case ErrorCode::kTooLarge:
      return 413;
    case ErrorCode::kRateLimited:
      return 429;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

// One request in flight: what was asked, who asked, and how to answer.
struct Call {
  Call(HttpRequest request, Respond responder)
      : req(std::move(request)), respond(std::move(responder)) {}

  HttpRequest req;
  Respond respond;
  bool responded = false;
  std::vector<std::string_view> params;  // the path's wildcard segments, in order
  UserId me;                             // set once authenticated
  std::string credential_key;

  void send(HttpResponse response) {
    responded = true;
    respond(std::move(response));
  }
  void reply(int status, const Json& body) {
    HttpResponse r;
    r.status = status;
    r.body = json_util::dump(body);
    send(std::move(r));
  }
  void reply_no_content() {
    HttpResponse r;
    r.status = 204;
    send(std::move(r));
  }
  void fail(const Status& st, std::uint32_t retry_after_ms = 0) {
    send(error_response(st, retry_after_ms));
  }
  // Hands the responder to an asynchronous completion.
  Respond take() {
    responded = true;
    return std::move(respond);
  }

  static HttpResponse error_response(const Status& st, std::uint32_t retry_after_ms) {
    HttpResponse r;
    r.status = http_status_of(st.code());
    r.body = json_util::dump(json_util::error_body(st, retry_after_ms));
    if (st.code() == ErrorCode::kRateLimited) {
      // Retry-After is in whole seconds (RFC 9110); round up so a client that
      // honours it is never early.
      std::uint32_t seconds = std::max<std::uint32_t>(1, (retry_after_ms + 999) / 1000);
      r.headers.emplace_back("Retry-After", std::to_string(seconds));
    }
    if (st.code() == ErrorCode::kUnauthenticated) {
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
    }
    return r;
  }
};

// The handlers' view of the HttpApi's collaborators.
struct Api {
  chatcore::Engine& engine;
  chatcore::Store& store;
  TokenAuth& auth;
  const chatcore::Clock& clock;
  const HttpApiOptions& options;
  HttpApi::Worker* kdf;     // null: hash inline
  HttpApi::Worker* writes;  // null: write the store inline
};

// ---- small validators ------------------------------------------------------------------

bool has_control_chars(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

Status check_user_name(std::string_view name) {
  bool charset_ok = std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
  if (name.empty() || name.size() > kMaxNameBytes || !charset_ok) {
    return Status::invalid_argument("name must be 1..64 characters of A-Z a-z 0-9 _ . -");
  }
  return Status::ok();
}

Status check_display_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxDisplayNameBytes || has_control_chars(s)) {
    return Status::invalid_argument(
        "display_name must be 1..128 bytes of UTF-8 without control characters");
  }
  return Status::ok();
}

Status check_email(std::string_view s) {
  if (s.empty()) return Status::ok();
  auto at = s.find('@');
  bool blank = std::any_of(s.begin(), s.end(), [](char c) { return c == ' '; });
  if (s.size() > kMaxEmailBytes || at == 0 || at == std::string_view::npos || at + 1 == s.size() ||
      blank || has_control_chars(s)) {
    return Status::invalid_argument("email must look like name@domain (at most 254 bytes)");
  }
  return Status::ok();
}

Status check_phone(std::string_view s) {
  bool charset_ok = std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || c == '+' || c == ' ' || c == '-' || c == '(' || c == ')';
  });
  if (s.size() > kMaxPhoneBytes || !charset_ok) {
    return Status::invalid_argument("phone must be at most 32 characters of 0-9 + - ( ) and space");
  }
  return Status::ok();
}

Status check_about(std::string_view s) {
  if (s.size() > kMaxAboutBytes)
    return Status::invalid_argument("about must be at most 1024 bytes");
  return Status::ok();
}

Status check_image_url(std::string_view s) {
  if (s.empty()) return Status::ok();
  // Only web URLs: the web client renders this as an <img src>, and a
  // javascript: or data: URL there is an injection vector.
  bool web = s.starts_with("https://") || s.starts_with("http://");
  if (s.size() > kMaxImageUrlBytes || !web || has_control_chars(s)) {
    return Status::invalid_argument(
        "image_url must be empty or an http:// or https:// URL of at most 2048 bytes");
  }
  return Status::ok();
}

// ---- JSON shapes -----------------------------------------------------------------------

std::string display_name_of(const chatcore::User& u) {
  return u.display_name.empty() ? u.name : u.display_name;
}

// The profile of `u` as `viewer` may see it: email and phone only for oneself.
Json profile_json(const chatcore::User& u, UserId viewer) {
  Json j = {{"user_id", json_util::id_string(u.id.value)},
            {"name", u.name},
            {"display_name", display_name_of(u)},
            {"about", u.about},
            {"image_url", u.image_url},
            {"created_at", u.created_at_ms}};
  if (u.id == viewer) {
    j["email"] = u.email;
    j["phone"] = u.phone;
  }
  return j;
}

Json last_seen_json(std::int64_t ms) { return ms == 0 ? Json(nullptr) : Json(ms); }

Json presence_entry(const chatcore::User& u, const chatcore::PresenceInfo& p) {
  return {{"user_id", json_util::id_string(u.id.value)},
          {"name", u.name},
          {"display_name", display_name_of(u)},
          {"online", p.online},
          {"last_seen", last_seen_json(p.last_seen_ms)}};
}

const char* role_name(chatcore::MemberRole role) {
  switch (role) {
    case chatcore::MemberRole::kOwner:
      return "owner";
    case chatcore::MemberRole::kAdmin:
      return "admin";
    case chatcore::MemberRole::kMember:
      return "member";
  }
  return "member";
}

Json message_json(const chatcore::Message& m) {
  return {{"message_id", json_util::id_string(m.id.value)},
          {"conversation_id", json_util::id_string(m.conversation.value)},
          {"seq", m.seq},
          {"sender_id", json_util::id_string(m.sender.value)},
          {"client_msg_id", m.client_msg_id.to_uuid()},
          {"body", m.body},
          {"sent_at", m.sent_at_ms}};
}

// ---- request helpers -------------------------------------------------------------------

// The conversation named by path parameter `index`.
Result<ConversationId> conversation_param(const Call& call, std::size_t index) {
  auto raw = json_util::parse_id(call.params.at(index));
  std::optional<ConversationId> conv;
  if (raw) conv = ConversationId::from_raw(*raw);
  if (!conv) return Status::invalid_argument("malformed conversation id");
  return *conv;
}

Result<UserId> user_param(const Call& call, std::size_t index) {
  auto raw = json_util::parse_id(call.params.at(index));
  if (!raw || *raw > chatcore::kMaxUserId) return Status::invalid_argument("malformed user id");
  return UserId(*raw);
}

Result<GroupId> group_param(const Call& call, std::size_t index) {
  auto raw = json_util::parse_id(call.params.at(index));
  if (!raw || *raw > chatcore::kMaxGroupId) return Status::invalid_argument("malformed group id");
  return GroupId(*raw);
}

// A user id from a JSON body field.
Result<UserId> user_field(const Json& doc, std::string_view key) {
  auto raw = json_util::required_id(doc, key);
  if (!raw) return raw.status();
  if (*raw > chatcore::kMaxUserId) {
    return Status::invalid_argument("field '" + std::string(key) + "' is not a valid user id");
  }
  return UserId(*raw);
}

// ---- accounts and sessions -------------------------------------------------------------

}  // namespace

// Threads for work that must not run on the network thread, where it would
// stall every session: password hashing, and the store writes behind
// signup, login, profiles, contacts, groups and read marks (a write may
// wait for LMDB's writer lock while a checkpoint holds it).
class HttpApi::Worker {
 public:
  // `name` (Linux thread name, at most 15 characters) is given to a
  // one-thread worker, for `top -H` and perf.
  Worker(unsigned threads, const char* name) : pool_(threads) {
#ifdef __linux__
    if (threads == 1) asio::post(pool_, [name] { pthread_setname_np(pthread_self(), name); });
#else
    (void)name;
#endif
  }
  ~Worker() { pool_.join(); }
  template <typename F>
  void post(F&& f) {
    asio::post(pool_, std::forward<F>(f));
  }

 private:
  asio::thread_pool pool_;
};

namespace {

// Runs `work` on `worker`, then `finish(api, call, result)` back on the
// owner thread through Engine::post. Without a worker both run here and
// now. `finish` gets a Call that can only respond: capture what it needs
// (the caller's user id, say) by value.
template <typename Work, typename Finish>
void off_thread(HttpApi::Worker* worker, Api& api, Call& call, Work work, Finish finish) {
  if (worker == nullptr) {
    auto result = work();
    return finish(api, call, std::move(result));
  }
  worker->post(
      [api, respond = call.take(), work = std::move(work), finish = std::move(finish)]() mutable {
        // An exception must not escape into the pool (std::terminate): it
        // becomes a 500, as in HttpApi::handle.
        std::optional<decltype(work())> result;
        std::string failure;
        try {
          result.emplace(work());
        } catch (const std::exception& e) {
          failure = e.what();
        }
        api.engine.post([api, respond = std::move(respond), result = std::move(result),
                         failure = std::move(failure), finish = std::move(finish)]() mutable {
          Call later(HttpRequest{}, std::move(respond));
          try {
            if (!result) throw std::runtime_error(failure);
            finish(api, later, std::move(*result));
          } catch (const std::exception& e) {
            if (!later.responded)
              later.fail(Status::internal(std::string("unexpected error: ") + e.what()));
          }
        });
      });
}

// An Argon2 call on the KDF worker.
template <typename Work, typename Finish>
void after_kdf(Api& api, Call& call, Work work, Finish finish) {
  off_thread(api.kdf, api, call, std::move(work), std::move(finish));
}

// Store writes on the write worker: one thread, so that one client's
// writes happen in the order it sent them.
template <typename Work, typename Finish>
void after_write(Api& api, Call& call, Work work, Finish finish) {
  off_thread(api.writes, api, call, std::move(work), std::move(finish));
}

void signup(Api& api, Call& call) {
  auto doc = json_util::parse_object(call.req.body);
  if (!doc) return call.fail(doc.status());
  auto name = json_util::required_string(*doc, "name");
  if (!name) return call.fail(name.status());
  auto password = json_util::required_string(*doc, "password");
  if (!password) return call.fail(password.status());
  auto email = json_util::optional_string(*doc, "email");
  if (!email) return call.fail(email.status());
  auto phone = json_util::optional_string(*doc, "phone");
  if (!phone) return call.fail(phone.status());
  auto display = json_util::optional_string(*doc, "display_name");
  if (!display) return call.fail(display.status());

  if (Status st = check_user_name(*name); !st) return call.fail(st);
  if (password->size() < kMinPasswordBytes || password->size() > kMaxPasswordBytes) {
    return call.fail(Status::invalid_argument("password must be 8..1024 bytes"));
  }
  chatcore::NewUser user;
  user.name = *name;
  user.display_name = display->value_or(*name);
  user.email = email->value_or("");
  user.phone = phone->value_or("");
  user.created_at_ms = api.clock.now_ms();
  if (Status st = check_display_name(user.display_name); !st) return call.fail(st);
  if (Status st = check_email(user.email); !st) return call.fail(st);
  if (Status st = check_phone(user.phone); !st) return call.fail(st);

  // Checked before hashing only to save ~0.1 s of Argon2 on a taken name;
  // create_user below is what actually guarantees uniqueness.
  if (api.store.find_user_by_name(user.name).is_ok()) {
    return call.fail(Status::already_exists("that name is taken"));
  }
  after_kdf(
      api, call, [&auth = api.auth, pw = *password] { return auth.hash_password(pw); },
      [user](Api& a, Call& c, Result<std::string> hash) {
        if (!hash) return c.fail(hash.status());
        after_write(
            a, c,
            [&store = a.store, user, hash = std::move(*hash)]() -> Result<UserId> {
              auto id = store.create_user(user);
              if (!id) return id;
              if (Status st = store.set_password_hash(*id, hash); !st) return st;
              return id;
            },
            [name = user.name](Api&, Call& done, Result<UserId> id) {
              if (!id) {
                if (id.status().code() == ErrorCode::kAlreadyExists) {
                  return done.fail(Status::already_exists("that name is taken"));
                }
                return done.fail(id.status());
              }
              done.reply(201, {{"user_id", json_util::id_string(id->value)}, {"name", name}});
            });
      });
}

// A hash of a password nobody knows, verified when the name is unknown so
// that "no such user" costs the same Argon2 time as "wrong password" and
// response timing does not reveal which names exist.
const std::string& dummy_password_hash(TokenAuth& auth) {
  static const std::string hash = [&] {
    auto h = auth.hash_password("chatcore-timing-equaliser");
    return h.is_ok() ? *h : std::string();
  }();
  return hash;
}

void login(Api& api, Call& call) {
  auto doc = json_util::parse_object(call.req.body);
  if (!doc) return call.fail(doc.status());
  auto name = json_util::required_string(*doc, "name");
  if (!name) return call.fail(name.status());
  auto password = json_util::required_string(*doc, "password");
  if (!password) return call.fail(password.status());

  auto user = api.store.find_user_by_name(*name);
  if (!user && user.status().code() != ErrorCode::kNotFound) return call.fail(user.status());
  std::optional<std::string> stored;
  if (user) {
    auto hash = api.store.get_password_hash(user->id);
    if (!hash && hash.status().code() != ErrorCode::kNotFound) return call.fail(hash.status());
    if (hash) stored = std::move(*hash);
  }
  // Unknown name or no password: verify against a dummy hash anyway (see
  // dummy_password_hash), then refuse.
  UserId id = user ? user->id : UserId();
  after_kdf(
      api, call,
      [&auth = api.auth, stored, pw = *password] {
        bool ok = auth.verify_password(stored ? *stored : dummy_password_hash(auth), pw);
        return ok && stored.has_value();
      },
      [id](Api& a, Call& c, bool ok) {
        if (!ok) return c.fail(Status::unauthenticated("invalid name or password"));
        after_write(
            a, c, [&auth = a.auth, id] { return auth.issue(id); },
            [id](Api&, Call& done, auto issued) {
              if (!issued) return done.fail(issued.status());
              done.reply(200, {{"token", issued->token},
                               {"user_id", json_util::id_string(id.value)},
                               {"expires_at", issued->expires_at_ms}});
            });
      });
}

void logout(Api& api, Call& call) {
  // Authentication already succeeded, so the header holds a bearer token.
  auto token = TokenAuth::bearer_token(call.req.authorization);
  if (!token) return call.fail(Status::unauthenticated("missing bearer token"));
  after_write(
      api, call, [&auth = api.auth, token = std::string(*token)] { return auth.revoke(token); },
      [](Api& a, Call& done, auto key) {
        if (!key) return done.fail(key.status());
        // Close the WebSocket sessions opened with this token too.
        a.engine.revoke_credential(*key);
        done.reply_no_content();
      });
}

// ---- profiles --------------------------------------------------------------------------

void me_get(Api& api, Call& call) {
  auto user = api.store.get_user(call.me);
  if (!user) return call.fail(user.status());
  call.reply(200, profile_json(*user, call.me));
}

void me_patch(Api& api, Call& call) {
  auto doc = json_util::parse_object(call.req.body);
  if (!doc) return call.fail(doc.status());
  chatcore::ProfileUpdate update;
  auto display = json_util::optional_string(*doc, "display_name");
  if (!display) return call.fail(display.status());
  auto about = json_util::optional_string(*doc, "about");
  if (!about) return call.fail(about.status());
  auto image = json_util::optional_string(*doc, "image_url");
  if (!image) return call.fail(image.status());
  if (!*display && !*about && !*image) {
    // Most likely a misspelt field; silently changing nothing would hide it.
    return call.fail(
        Status::invalid_argument("give at least one of display_name, about, image_url"));
  }
  if (*display) {
    if (Status st = check_display_name(**display); !st) return call.fail(st);
    update.display_name = std::move(**display);
  }
  if (*about) {
    if (Status st = check_about(**about); !st) return call.fail(st);
    update.about = std::move(**about);
  }
  if (*image) {
    if (Status st = check_image_url(**image); !st) return call.fail(st);
    update.image_url = std::move(**image);
  }
  after_write(
      api, call,
      [&store = api.store, me = call.me, update = std::move(update)] {
        return store.update_profile(me, update);
      },
      [me = call.me](Api& a, Call& done, Status st) {
        if (!st) return done.fail(st);
        done.me = me;
        me_get(a, done);
      });
}

void users_lookup(Api& api, Call& call) {
  auto query = json_util::parse_query(call.req.query);
  if (!query) return call.fail(query.status());
  auto it = query->find("name");
  if (it == query->end() || it->second.empty()) {
    return call.fail(Status::invalid_argument("query parameter 'name' is required"));
  }
  auto user = api.store.find_user_by_name(it->second);
  if (!user) return call.fail(user.status());
  call.reply(200, profile_json(*user, call.me));
}

void users_get(Api& api, Call& call) {
  auto id = user_param(call, 0);
  if (!id) return call.fail(id.status());
  auto user = api.store.get_user(*id);
  if (!user) return call.fail(user.status());
  call.reply(200, profile_json(*user, call.me));
}

// ---- contacts --------------------------------------------------------------------------

void contacts_add(Api& api, Call& call) {
  auto doc = json_util::parse_object(call.req.body);
  if (!doc) return call.fail(doc.status());
  auto id = user_field(*doc, "user_id");
  if (!id) return call.fail(id.status());
  if (*id == call.me) return call.fail(Status::invalid_argument("you cannot add yourself"));
  auto user = api.store.get_user(*id);
  if (!user) return call.fail(user.status());
  after_write(
      api, call,
      [&store = api.store, me = call.me, id = *id, now = api.clock.now_ms()] {
        return store.add_contact(me, id, now);
      },
      [user = std::move(*user)](Api& a, Call& done, Status st) {
        if (!st) return done.fail(st);
        done.reply(201, presence_entry(user, a.engine.presence_of(user.id)));
      });
}

void contacts_list(Api& api, Call& call) {
  auto ids = api.store.contacts_of(call.me);
  if (!ids) return call.fail(ids.status());
  Json list = Json::array();
  for (UserId id : *ids) {
    auto user = api.store.get_user(id);
    if (!user) return call.fail(user.status());
    list.push_back(presence_entry(*user, api.engine.presence_of(id)));
  }
  call.reply(200, {{"contacts", std::move(list)}});
}

void contacts_delete(Api& api, Call& call) {
  auto id = user_param(call, 0);
  if (!id) return call.fail(id.status());
  after_write(
      api, call,
      [&store = api.store, me = call.me, id = *id] { return store.remove_contact(me, id); },
      [](Api&, Call& done, Status st) {
        if (!st) return done.fail(st);
        done.reply_no_content();
      });
}

// ---- groups ----------------------------------------------------------------------------

Json group_summary(const chatcore::Group& g) {
  return {{"group_id", json_util::id_string(g.id.value)},
          {"conversation_id", json_util::id_string(ConversationId::group(g.id).value)},
          {"name", g.name},
          {"owner_id", json_util::id_string(g.owner.value)},
          {"created_at", g.created_at_ms}};
}

void groups_create(Api& api, Call& call) {
  auto doc = json_util::parse_object(call.req.body);
  if (!doc) return call.fail(doc.status());
  auto name = json_util::required_string(*doc, "name");
  if (!name) return call.fail(name.status());
  std::vector<UserId> members;
  if (auto it = doc->find("members"); it != doc->end() && !it->is_null()) {
    if (!it->is_array()) {
      return call.fail(Status::invalid_argument("field 'members' must be an array of user ids"));
    }
    members.reserve(it->size());
    for (const Json& m : *it) {
      std::optional<std::uint64_t> raw;
      if (m.is_string()) raw = json_util::parse_id(m.get_ref<const std::string&>());
      if (!raw || *raw > chatcore::kMaxUserId) {
        return call.fail(
            Status::invalid_argument("field 'members' must be an array of user ids (strings)"));
      }
      members.emplace_back(*raw);
    }
  }
  if (has_control_chars(*name)) {
    return call.fail(Status::invalid_argument("group name must not contain control characters"));
  }
  after_write(
      api, call,
      [&engine = api.engine, me = call.me, name = *name, members = std::move(members)] {
        return engine.create_group(me, name, members);
      },
      [name = *name](Api&, Call& done, Result<GroupId> group) {
        if (!group) return done.fail(group.status());
        done.reply(201,
                   {{"group_id", json_util::id_string(group->value)},
                    {"conversation_id", json_util::id_string(ConversationId::group(*group).value)},
                    {"name", name}});
      });
}

void groups_list(Api& api, Call& call) {
  auto ids = api.store.groups_of(call.me);
  if (!ids) return call.fail(ids.status());
  Json list = Json::array();
  for (GroupId id : *ids) {
    auto group = api.store.get_group(id);
    if (!group) return call.fail(group.status());
    auto role = api.store.member_role(id, call.me);
    if (!role) return call.fail(role.status());
    Json j = group_summary(*group);
    j["role"] = role_name(*role);
    list.push_back(std::move(j));
  }
  call.reply(200, {{"groups", std::move(list)}});
}

void groups_get(Api& api, Call& call) {
  auto id = group_param(call, 0);
  if (!id) return call.fail(id.status());
  // The engine checks membership first: a non-member learns nothing.
  auto members = api.engine.group_members(call.me, *id);
  if (!members) return call.fail(members.status());
  auto group = api.store.get_group(*id);
  if (!group) return call.fail(group.status());
  Json list = Json::array();
  for (const auto& [member, presence] : *members) {
    auto user = api.store.get_user(member.user);
    if (!user) return call.fail(user.status());
    Json j = presence_entry(*user, presence);
    j["role"] = role_name(member.role);
    list.push_back(std::move(j));
  }
  Json j = group_summary(*group);
  j["members"] = std::move(list);
  call.reply(200, j);
}

void group_members_add(Api& api, Call& call) {
  auto id = group_param(call, 0);
  if (!id) return call.fail(id.status());
  auto doc = json_util::parse_object(call.req.body);
  if (!doc) return call.fail(doc.status());
  auto user = user_field(*doc, "user_id");
  if (!user) return call.fail(user.status());
  after_write(
      api, call,
      [&engine = api.engine, me = call.me, group = *id, user = *user] {
        return engine.add_member(me, group, user);
      },
      [group = *id, user = *user](Api&, Call& done, Status st) {
        if (!st) return done.fail(st);
        done.reply(201, {{"group_id", json_util::id_string(group.value)},
                         {"user_id", json_util::id_string(user.value)},
                         {"role", role_name(chatcore::MemberRole::kMember)}});
      });
}

void group_members_remove(Api& api, Call& call) {
  auto id = group_param(call, 0);
  if (!id) return call.fail(id.status());
  auto user = user_param(call, 1);
  if (!user) return call.fail(user.status());
  after_write(
      api, call,
      [&engine = api.engine, me = call.me, group = *id, user = *user] {
        return engine.remove_member(me, group, user);
      },
      [](Api&, Call& done, Status st) {
        if (!st) return done.fail(st);
        done.reply_no_content();
      });
}

// ---- conversations ---------------------------------------------------------------------

void conversations_direct(Api& api, Call& call) {
  auto doc = json_util::parse_object(call.req.body);
  if (!doc) return call.fail(doc.status());
  auto peer = user_field(*doc, "user_id");
  if (!peer) return call.fail(peer.status());
  auto conv = ConversationId::direct_checked(call.me, *peer);
  if (!conv) return call.fail(Status::invalid_argument("a direct conversation needs another user"));
  if (auto user = api.store.get_user(*peer); !user) return call.fail(user.status());
  after_write(
      api, call,
      [&store = api.store, conv = *conv, now = api.clock.now_ms()] {
        return store.touch_direct_conversation(conv, now);
      },
      [conv = *conv, peer = *peer](Api&, Call& done, Status st) {
        if (!st) return done.fail(st);
        done.reply(200, {{"conversation_id", json_util::id_string(conv.value)},
                         {"peer_user_id", json_util::id_string(peer.value)}});
      });
}

void conversations_list(Api& api, Call& call) {
  auto convs = api.store.conversations_of(call.me);
  if (!convs) return call.fail(convs.status());
  struct Row {
    std::int64_t activity;
    std::uint64_t id;
    Json json;
  };
  std::vector<Row> rows;
  rows.reserve(convs->size());
  for (ConversationId conv : *convs) {
    auto state = api.store.conversation_state(conv);
    if (!state) return call.fail(state.status());
    Json j = {{"conversation_id", json_util::id_string(conv.value)},
              {"last_seq", state->last_seq},
              {"last_activity", state->last_activity_ms}};
    if (conv.is_direct()) {
      UserId peer = conv.peer_of(call.me);
      auto user = api.store.get_user(peer);
      if (!user) return call.fail(user.status());
      j["kind"] = "direct";
      j["title"] = display_name_of(*user);
      j["peer_user_id"] = json_util::id_string(peer.value);
    } else {
      auto group = api.store.get_group(conv.group_id());
      if (!group) return call.fail(group.status());
      j["kind"] = "group";
      j["title"] = group->name;
      j["group_id"] = json_util::id_string(group->id.value);
    }
    j["last_message"] = nullptr;
    if (state->last_seq != 0) {
      chatcore::HistoryQuery newest;
      newest.limit = 1;
      auto page = api.store.history(conv, newest);
      if (!page) return call.fail(page.status());
      if (!page->empty()) j["last_message"] = message_json(*page->back());
    }
    // Derived, never stored: the dense seq minus the read cursor.
    auto cursor = api.store.read_cursor(call.me, conv);
    if (!cursor) return call.fail(cursor.status());
    j["read_seq"] = *cursor;
    j["unread"] = state->last_seq > *cursor ? state->last_seq - *cursor : 0;
    rows.push_back({state->last_activity_ms, conv.value, std::move(j)});
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return a.activity != b.activity ? a.activity > b.activity : a.id > b.id;
  });
  Json list = Json::array();
  for (auto& row : rows) list.push_back(std::move(row.json));
  call.reply(200, {{"conversations", std::move(list)}});
}

Result<std::optional<std::uint64_t>> query_uint(
    const std::map<std::string, std::string, std::less<>>& query, std::string_view name) {
  auto it = query.find(name);
  if (it == query.end()) return std::optional<std::uint64_t>();
  auto v = chatcore::parse_decimal(it->second);
  if (!v) {
    return Status::invalid_argument("query parameter '" + std::string(name) +
                                    "' must be a non-negative integer");
  }
  return std::optional<std::uint64_t>(*v);
}

void messages_list(Api& api, Call& call) {
  auto conv = conversation_param(call, 0);
  if (!conv) return call.fail(conv.status());
  auto query = json_util::parse_query(call.req.query);
  if (!query) return call.fail(query.status());
  auto before = query_uint(*query, "before_seq");
  if (!before) return call.fail(before.status());
  auto after = query_uint(*query, "after_seq");
  if (!after) return call.fail(after.status());
  auto limit = query_uint(*query, "limit");
  if (!limit) return call.fail(limit.status());
  if (*before && *after) {
    return call.fail(Status::invalid_argument("give at most one of before_seq and after_seq"));
  }
  if (*limit && **limit == 0) {
    return call.fail(Status::invalid_argument("limit must be at least 1"));
  }
  chatcore::HistoryQuery q;
  q.before_seq = *before;
  q.after_seq = *after;
  // Larger pages are clamped, as for the WebSocket History request.
  const std::uint64_t max_page = api.engine.options().limits.max_page;
  q.limit = static_cast<std::uint32_t>(std::min(limit->value_or(kDefaultPageLimit), max_page));
  auto page = api.engine.history(call.me, *conv, q);
  if (!page) return call.fail(page.status());
  Json list = Json::array();
  for (const auto& m : *page) list.push_back(message_json(*m));
  call.reply(200, {{"messages", std::move(list)}});
}

void messages_send(Api& api, Call& call) {
  auto conv = conversation_param(call, 0);
  if (!conv) return call.fail(conv.status());
  auto doc = json_util::parse_object(call.req.body);
  if (!doc) return call.fail(doc.status());
  auto cmid_text = json_util::required_string(*doc, "client_msg_id");
  if (!cmid_text) return call.fail(cmid_text.status());
  auto cmid = chatcore::ClientMsgId::from_uuid(*cmid_text);
  if (!cmid) {
    return call.fail(Status::invalid_argument(
        "client_msg_id must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"));
  }
  auto body = json_util::required_string(*doc, "body");
  if (!body) return call.fail(body.status());

  chatcore::SendRequest request;
  request.conversation = *conv;
  request.client_msg_id = *cmid;
  request.body = std::move(*body);
  chatcore::Engine* engine = &api.engine;
  UserId me = call.me;
  // From here the engine answers: at once for a refusal, from poll() once
  // the message is durable.
  api.engine.send_message(me, std::move(request),
                          [respond = call.take(), engine, me](Result<chatcore::SendResult> result) {
                            HttpResponse response;
                            try {
                              if (!result) {
                                std::uint32_t retry =
                                    result.status().code() == ErrorCode::kRateLimited
                                        ? engine->send_retry_after_ms(me)
                                        : 0;
                                response = Call::error_response(result.status(), retry);
                              } else {
                                const chatcore::Message& m = *result->message;
                                Json j = message_json(m);
                                j.erase("body");  // the client has it; echoing 400 KB back is waste
                                j["duplicate"] = result->duplicate;
                                response.status = result->duplicate ? 200 : 201;
                                response.body = json_util::dump(j);
                              }
                            } catch (const std::exception& e) {
                              response = Call::error_response(Status::internal(e.what()), 0);
                            }
                            respond(std::move(response));
                          });
}

void mark_read(Api& api, Call& call) {
  auto conv = conversation_param(call, 0);
  if (!conv) return call.fail(conv.status());
  auto doc = json_util::parse_object(call.req.body);
  if (!doc) return call.fail(doc.status());
  auto seq = json_util::required_uint(*doc, "seq");
  if (!seq) return call.fail(seq.status());
  after_write(
      api, call,
      [&engine = api.engine, me = call.me, conv = *conv, seq = *seq] {
        return engine.mark_read(me, conv, seq);
      },
      [me = call.me, conv = *conv](Api& a, Call& done, Status st) {
        if (!st) return done.fail(st);
        auto cursor = a.store.read_cursor(me, conv);
        if (!cursor) return done.fail(cursor.status());
        auto state = a.store.conversation_state(conv);
        if (!state) return done.fail(state.status());
        done.reply(200, {{"conversation_id", json_util::id_string(conv.value)},
                         {"read_seq", *cursor},
                         {"unread", state->last_seq > *cursor ? state->last_seq - *cursor : 0}});
      });
}

void discover(Api& api, Call& call) { call.reply(200, {{"ws_url", api.options.public_ws_url}}); }

// ---- the route table -------------------------------------------------------------------

using Handler = void (*)(Api&, Call&);

struct Method {
  std::string_view name;
  bool needs_auth;
  Handler handler;
};

struct Resource {
  // Path segments after /api/v1; "*" matches one segment (a path parameter).
  std::vector<std::string_view> pattern;
  std::vector<Method> methods;
};

// Literal segments are listed before the wildcard that would also match
// them (users/me before users/*, conversations/direct before
// conversations/*), because the first matching resource wins.
const std::vector<Resource>& routes() {
  static const std::vector<Resource> table = {
      {{"users"}, {{"POST", false, signup}, {"GET", true, users_lookup}}},
      {{"users", "me"}, {{"GET", true, me_get}, {"PATCH", true, me_patch}}},
      {{"users", "*"}, {{"GET", true, users_get}}},
      {{"sessions"}, {{"POST", false, login}, {"DELETE", true, logout}}},
      {{"contacts"}, {{"POST", true, contacts_add}, {"GET", true, contacts_list}}},
      {{"contacts", "*"}, {{"DELETE", true, contacts_delete}}},
      {{"groups"}, {{"POST", true, groups_create}, {"GET", true, groups_list}}},
      {{"groups", "*"}, {{"GET", true, groups_get}}},
      {{"groups", "*", "members"}, {{"POST", true, group_members_add}}},
      {{"groups", "*", "members", "*"}, {{"DELETE", true, group_members_remove}}},
      {{"conversations"}, {{"GET", true, conversations_list}}},
      {{"conversations", "direct"}, {{"POST", true, conversations_direct}}},
      {{"conversations", "*", "messages"},
       {{"GET", true, messages_list}, {"POST", true, messages_send}}},
      {{"conversations", "*", "read"}, {{"POST", true, mark_read}}},
      {{"discover"}, {{"GET", true, discover}}},
  };
  return table;
}

// Splits "/api/v1/a/b" into {"a", "b"}; nullopt if the prefix is missing or
// a segment is empty ("//", a trailing "/").
std::optional<std::vector<std::string_view>> split_path(std::string_view path) {
  if (!path.starts_with(kApiPrefix)) return std::nullopt;
  path.remove_prefix(kApiPrefix.size());
  std::vector<std::string_view> segments;
  while (!path.empty()) {
    if (path.front() != '/') return std::nullopt;
    path.remove_prefix(1);
    auto next = path.find('/');
    std::string_view seg = path.substr(0, next);
    if (seg.empty()) return std::nullopt;
    segments.push_back(seg);
    path = next == std::string_view::npos ? std::string_view() : path.substr(next);
  }
  return segments;
}

const Resource* match(const std::vector<std::string_view>& segments,
                      std::vector<std::string_view>& params) {
  for (const Resource& r : routes()) {
    if (r.pattern.size() != segments.size()) continue;
    std::vector<std::string_view> found;
    bool ok = true;
    for (std::size_t i = 0; i < segments.size() && ok; ++i) {
      if (r.pattern[i] == "*") {
        found.push_back(segments[i]);
      } else {
        ok = r.pattern[i] == segments[i];
      }
    }
    if (ok) {
      params = std::move(found);
      return &r;
    }
  }
  return nullptr;
}

void dispatch(Api& api, Call& call) {
  auto segments = split_path(call.req.path);
  const Resource* resource = nullptr;
  if (segments) resource = match(*segments, call.params);
  if (resource == nullptr) {
    return call.fail(Status::not_found("no such API route: " + call.req.path));
  }
  const Method* method = nullptr;
  std::string allow;
  for (const Method& m : resource->methods) {
    if (m.name == call.req.method) method = &m;
    allow += allow.empty() ? "" : ", ";
    allow += m.name;
  }
  if (method == nullptr) {
    HttpResponse r =
        Call::error_response(Status::invalid_argument("method " + call.req.method +
                                                      " is not allowed here; allowed: " + allow),
                             0);
    r.status = 405;
    r.headers.emplace_back("Allow", allow);
    return call.send(std::move(r));
  }
  if (call.req.body.size() > api.options.max_body_bytes) {
    return call.fail(Status::too_large("request body over " +
                                       std::to_string(api.options.max_body_bytes) + " bytes"));
  }
  if (method->needs_auth) {
    auto identity = api.auth.authenticate_header(call.req.authorization);
    if (!identity) return call.fail(identity.status());
    call.me = identity->user;
    call.credential_key = std::move(identity->credential_key);
  }
  method->handler(api, call);
}

}  // namespace

HttpApi::HttpApi(chatcore::Engine& engine, chatcore::Store& store, TokenAuth& auth,
                 const chatcore::Clock& clock, HttpApiOptions options)
    : engine_(engine), store_(store), auth_(auth), clock_(clock), options_(std::move(options)) {
  if (options_.kdf_threads > 0)
    kdf_ = std::make_unique<Worker>(options_.kdf_threads, "cc-http-kdf");
  if (options_.write_thread) {
    writes_ = std::make_unique<Worker>(1, "cc-http-writes");
    // authenticate() runs on the owner thread: its deletions of expired
    // tokens go where the other writes go.
    auth_.set_cleanup_runner(
        [w = writes_.get()](std::function<void()> f) { w->post(std::move(f)); });
  }
}

HttpApi::~HttpApi() {
  // Join first: a logout still queued there authenticates too, and may
  // read the runner. Then nothing else does (the transport has stopped).
  kdf_.reset();
  writes_.reset();
  auth_.set_cleanup_runner(nullptr);
}

void HttpApi::handle(HttpRequest request, Respond respond) {
  Api api{engine_, store_, auth_, clock_, options_, kdf_.get(), writes_.get()};
  Call call(std::move(request), std::move(respond));
  try {
    dispatch(api, call);
  } catch (const std::exception& e) {
    if (!call.responded) call.fail(Status::internal(std::string("unexpected error: ") + e.what()));
  }
}

}  // namespace chatcored
