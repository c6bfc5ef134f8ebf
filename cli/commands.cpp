#include "commands.hpp"

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

#include "chatcore/ids.hpp"
#include "errors.hpp"
#include "output.hpp"
#include "terminal.hpp"
#include "ws_client.hpp"

namespace chatcore::cli {
namespace {

using nlohmann::json;

// ---- server URLs -----------------------------------------------------------

std::string normalize_server(std::string url) {
  if (url.find("://") == std::string::npos) url = "http://" + url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    throw_usage(fmt::format("server URL must be http:// or https://: {}", url));
  }
  return url;
}

// ws(s)://host:port/ws for an http(s)://host:port server: the daemon serves
// the WebSocket on the API's port (used when discovery has no answer).
std::string derive_ws_url(const std::string& server) {
  if (server.rfind("https://", 0) == 0) return "wss://" + server.substr(8) + "/ws";
  return "ws://" + server.substr(7) + "/ws";
}

// ---- small JSON helpers ----------------------------------------------------

std::string str_field(const json& object, const char* key) {
  if (!object.is_object()) return {};
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::int64_t int_field(const json& object, const char* key) {
  if (!object.is_object()) return 0;
  auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
}

// "alice: first line\n         second line": continuation lines are indented
// under the body so a multi-line message stays readable as one entry.
std::string message_line(const std::string& prefix, const std::string& body) {
  std::string out = prefix;
  std::string indent(prefix.size(), ' ');
  std::size_t start = 0;
  while (true) {
    std::size_t nl = body.find('\n', start);
    out.append(body, start, nl == std::string::npos ? std::string::npos : nl - start);
    if (nl == std::string::npos) break;
    out += "\n" + indent;
    start = nl + 1;
  }
  return out;
}

// At most `max_bytes` bytes of `text`, never splitting a UTF-8 sequence.
std::string truncate_utf8(const std::string& text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  std::size_t n = max_bytes;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return text.substr(0, n);
}

void print_or_fail(const std::string& line) {
  if (!print_line(line)) throw CliError(kExitUnavailable, "output_error", "cannot write stdout");
}

void print_json(const json& value) { print_or_fail(to_json_text(value)); }

// ---- targets ---------------------------------------------------------------
//
// Syntax (docs/cli.md, "Targets"):
//   bob, @bob, user:bob    the 1-on-1 conversation with user "bob"
//   #Team                  the group named "Team" among your groups
//   group:7                group id 7
//   4611686018427387911,   a conversation id, as `conversations` lists
//   conv:4611686018427387911
// A bare all-digit word is a conversation id; a user whose login name is all
// digits is written @1234.

struct Target {
  enum class Kind { kUser, kGroupId, kGroupName, kConversation } kind;
  std::string text;      // user or group name
  std::uint64_t id = 0;  // group id or conversation id
};

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::uint64_t parse_conversation_id(const std::string& text) {
  auto raw = parse_decimal(text);
  if (!raw || !ConversationId::from_raw(*raw)) {
    throw_usage(fmt::format("not a conversation id: {}", text));
  }
  return *raw;
}

Target parse_target(const std::string& text) {
  if (text.empty()) throw_usage("empty target");
  if (text.rfind("group:", 0) == 0) {
    auto id = parse_decimal(text.substr(6));
    if (!id || *id == 0 || *id > kMaxGroupId) throw_usage(fmt::format("not a group id: {}", text));
    return {Target::Kind::kGroupId, {}, *id};
  }
  if (text[0] == '#') {
    if (text.size() == 1) throw_usage("empty group name after '#'");
    return {Target::Kind::kGroupName, text.substr(1), 0};
  }
  if (text.rfind("conv:", 0) == 0) {
    return {Target::Kind::kConversation, {}, parse_conversation_id(text.substr(5))};
  }
  if (text.rfind("user:", 0) == 0) return {Target::Kind::kUser, text.substr(5), 0};
  if (text[0] == '@') return {Target::Kind::kUser, text.substr(1), 0};
  if (all_digits(text)) return {Target::Kind::kConversation, {}, parse_conversation_id(text)};
  return {Target::Kind::kUser, text, 0};
}

// The caller's group with this exact name (names are not unique: two
// matches is the user's call to make, with group:<id>).
json find_group_by_name(Api& api, const std::string& name) {
  json listing = api.get("/groups");
  std::vector<json> matches;
  for (const json& g : listing.value("groups", json::array())) {
    if (str_field(g, "name") == name) matches.push_back(g);
  }
  if (matches.empty()) {
    throw CliError(kExitRefused, "not_found",
                   fmt::format("you are in no group named \"{}\"", name));
  }
  if (matches.size() > 1) {
    std::string ids;
    for (const json& g : matches) ids += " group:" + id_field(g, "group_id");
    throw_usage(fmt::format("several of your groups are named \"{}\"; pick one of:{}", name, ids));
  }
  api.remember_group(id_field(matches[0], "group_id"), name);
  return matches[0];
}

// The conversation id a target names. `open_direct`: for a user target,
// open the conversation with POST /conversations/direct (what `send` does,
// so it appears in both users' lists); otherwise derive its id locally,
// which has no side effect (history, tail filters).
std::string resolve_conversation(Context& ctx, const std::string& text, bool open_direct) {
  Api& api = ctx.api();
  Target t = parse_target(text);
  switch (t.kind) {
    case Target::Kind::kConversation:
      return std::to_string(t.id);
    case Target::Kind::kGroupId:
      return std::to_string(ConversationId::group(GroupId(t.id)).value);
    case Target::Kind::kGroupName:
      return id_field(find_group_by_name(api, t.text), "conversation_id");
    case Target::Kind::kUser: {
      std::string peer = id_field(api.user_by_name(t.text), "user_id");
      if (open_direct) {
        json conv = api.post("/conversations/direct", json{{"user_id", peer}});
        return id_field(conv, "conversation_id");
      }
      auto me = parse_decimal(ctx.credentials().user_id);
      auto other = parse_decimal(peer);
      auto conv =
          me && other ? ConversationId::direct_checked(UserId(*me), UserId(*other)) : std::nullopt;
      if (!conv) {
        throw CliError(kExitRefused, "invalid_argument",
                       fmt::format("there is no conversation with {}", t.text));
      }
      return std::to_string(conv->value);
    }
  }
  return {};
}

// "@bob" or "#Team", for human output.
std::string conversation_label(Context& ctx, const std::string& conversation_id) {
  auto raw = parse_decimal(conversation_id);
  auto conv = raw ? ConversationId::from_raw(*raw) : std::nullopt;
  if (!conv) return conversation_id;
  Api& api = ctx.api();
  if (conv->is_group()) return "#" + api.group_name(std::to_string(conv->group_id().value));
  auto me = parse_decimal(ctx.credentials().user_id).value_or(0);
  return "@" + api.user_name(std::to_string(conv->peer_of(UserId(me)).value));
}

// ---- login -----------------------------------------------------------------

Credentials log_in(Context& ctx, const std::string& server, const std::string& name,
                   const std::string& password) {
  auto api = ctx.anonymous_api(server);
  json session = api->post("/sessions", json{{"name", name}, {"password", password}});
  Credentials c;
  c.server = server;
  c.name = name;
  c.user_id = id_field(session, "user_id");
  c.token = str_field(session, "token");
  c.expires_at_ms = int_field(session, "expires_at");
  if (c.token.empty()) {
    throw CliError(kExitRefused, "bad_response", "the login answer carries no token");
  }
  save_credentials(ctx.dir(), c);
  return c;
}

json login_summary(Context& ctx, const Credentials& c) {
  return {{"name", c.name},
          {"user_id", c.user_id},
          {"server", c.server},
          {"expires_at", c.expires_at_ms},
          {"credentials_file", (ctx.dir() / "credentials.json").string()}};
}

// ---- tail ------------------------------------------------------------------

class TailPrinter final : public TailHandler {
 public:
  TailPrinter(Context& ctx, const TailArgs& args, std::string filter)
      : ctx_(ctx), args_(args), filter_(std::move(filter)) {}

  void on_welcome(const wire::Welcome& w, std::uint64_t cursor) override {
    on_status(fmt::format("connected as {} (user {}), inbox head {}, showing from seq {}",
                          ctx_.credentials().name, w.user_id(), w.inbox_head(), cursor + 1));
  }

  bool on_deliver(std::uint64_t inbox_seq, const wire::Message& m) override {
    std::string conv = std::to_string(m.conversation_id());
    if (!filter_.empty() && conv != filter_) return true;
    std::string sender_id = std::to_string(m.sender_id());
    std::string sender =
        display([&] { return ctx_.api().user_name(sender_id); }, "user:" + sender_id);
    std::string body = m.body() != nullptr ? m.body()->str() : std::string();
    if (ctx_.json()) {
      ClientMsgId cid;
      if (m.client_msg_id() != nullptr && m.client_msg_id()->size() == cid.bytes.size()) {
        std::copy(m.client_msg_id()->begin(), m.client_msg_id()->end(), cid.bytes.begin());
      }
      json line = {{"type", "message"},
                   {"inbox_seq", inbox_seq},
                   {"message_id", std::to_string(m.message_id())},
                   {"conversation_id", conv},
                   {"seq", m.seq()},
                   {"sender_id", sender_id},
                   {"sender_name", sender},
                   {"client_msg_id", cid.to_uuid()},
                   {"body", body},
                   {"sent_at", m.sent_at_ms()}};
      return print_line(to_json_text(line));
    }
    std::string label = display([&] { return conversation_label(ctx_, conv); }, conv);
    std::string prefix = fmt::format("{}  {}  {}: ", format_time(m.sent_at_ms()), label, sender);
    return print_line(message_line(prefix, body));
  }

  void on_presence(const wire::Presence& p) override {
    if (!args_.presence) return;
    std::string user_id = std::to_string(p.user_id());
    std::string name = display([&] { return ctx_.api().user_name(user_id); }, "user:" + user_id);
    bool ok = true;
    if (ctx_.json()) {
      json line = {{"type", "presence"},
                   {"user_id", user_id},
                   {"name", name},
                   {"online", p.online()},
                   {"last_seen", nullptr}};
      if (p.last_seen_ms() > 0) line["last_seen"] = p.last_seen_ms();
      ok = print_line(to_json_text(line));
    } else {
      ok = print_line(fmt::format("{}  {} is {}", format_time(p.last_seen_ms()), name,
                                  p.online() ? "online" : "offline"));
    }
    static_cast<void>(ok);  // a closed stdout is noticed at the next message
  }

  void on_cursor(std::uint64_t cursor) override {
    const Credentials& c = ctx_.credentials();
    save_cursor(ctx_.dir(), c.server, c.user_id, cursor);
  }

  void on_status(const std::string& text) override {
    if (!args_.quiet) print_note("tail: " + text);
  }

 private:
  // A name for display, or `fallback` if the look-up fails: a name is
  // cosmetic, and a blip of the HTTP side must not end a running tail.
  template <typename F>
  std::string display(F lookup, const std::string& fallback) {
    try {
      return lookup();
    } catch (const CliError&) {
      return fallback;
    }
  }

  Context& ctx_;
  const TailArgs& args_;
  std::string filter_;
};

}  // namespace

// ---- Context ---------------------------------------------------------------

Context::Context(GlobalOptions options) : options_(std::move(options)) {}

const std::filesystem::path& Context::dir() {
  if (!dir_) dir_ = config_dir(options_.config_dir);
  return *dir_;
}

std::string Context::explicit_server() const {
  if (!options_.server.empty()) return normalize_server(options_.server);
  const char* env = std::getenv("CHATCORE_SERVER");
  if (env != nullptr && env[0] != '\0') return normalize_server(env);
  return {};
}

std::string Context::server_for_login() {
  std::string server = explicit_server();
  if (!server.empty()) return server;
  if (auto saved = load_credentials(dir())) return normalize_server(saved->server);
  return kDefaultServer;
}

const Credentials& Context::credentials() {
  if (credentials_) return *credentials_;
  auto saved = load_credentials(dir());
  if (!saved) {
    throw CliError(kExitUnauthenticated, "unauthenticated",
                   "not logged in: run `chatcore-cli login <name>` first");
  }
  saved->server = normalize_server(saved->server);
  std::string server = explicit_server();
  if (!server.empty() && server != saved->server) {
    throw CliError(kExitUnauthenticated, "unauthenticated",
                   fmt::format("logged in at {}, not {}: run `chatcore-cli login` for that server",
                               saved->server, server));
  }
  credentials_ = std::move(*saved);
  return *credentials_;
}

Api& Context::api() {
  if (!api_) {
    const Credentials& c = credentials();
    api_ = std::make_unique<Api>(http_options(c.server), c.token);
    api_->remember_user(c.user_id, c.name);
  }
  return *api_;
}

std::unique_ptr<Api> Context::anonymous_api(const std::string& server) {
  return std::make_unique<Api>(http_options(server), std::string());
}

HttpOptions Context::http_options(const std::string& server) const {
  HttpOptions o;
  o.base_url = server;
  o.timeout = std::chrono::milliseconds(static_cast<long>(options_.timeout_seconds * 1000));
  o.connect_timeout = std::min(o.timeout, std::chrono::milliseconds(5000));
  o.verbose = options_.verbose;
  return o;
}

// ---- commands --------------------------------------------------------------

int cmd_signup(Context& ctx, const SignupArgs& args) {
  std::string server = ctx.server_for_login();
  std::string password = read_password(args.password_stdin, /*confirm=*/true);
  json request = {{"name", args.name}, {"password", password}};
  if (!args.display_name.empty()) request["display_name"] = args.display_name;
  if (!args.email.empty()) request["email"] = args.email;
  if (!args.phone.empty()) request["phone"] = args.phone;
  json user = ctx.anonymous_api(server)->post("/users", request);
  json out = user;
  out["server"] = server;
  if (args.login) {
    log_in(ctx, server, args.name, password);
    out["logged_in"] = true;
    out["credentials_file"] = (ctx.dir() / "credentials.json").string();
  }
  if (ctx.json()) {
    print_json(out);
  } else {
    print_or_fail(fmt::format("signed up {} (user {}) at {}{}", str_field(user, "name"),
                              id_field(user, "user_id"), server, args.login ? "; logged in" : ""));
  }
  return kExitOk;
}

int cmd_login(Context& ctx, const LoginArgs& args) {
  std::string server = ctx.server_for_login();
  std::string password = read_password(args.password_stdin, /*confirm=*/false);
  Credentials c = log_in(ctx, server, args.name, password);
  if (ctx.json()) {
    print_json(login_summary(ctx, c));
  } else {
    print_or_fail(fmt::format("logged in as {} (user {}) at {}", c.name, c.user_id, c.server));
  }
  return kExitOk;
}

int cmd_logout(Context& ctx) {
  bool revoked = true;
  try {
    ctx.api().call("DELETE", "/sessions");
  } catch (const CliError& e) {
    // Already invalid on the server: the goal (no usable token here) is
    // reached by deleting the file. Unreachable server: keep the file, so
    // a retry can still revoke the token.
    if (e.exit_code() != kExitUnauthenticated || e.http_status() == 0) throw;
    revoked = false;
  }
  remove_credentials(ctx.dir());
  if (ctx.json()) {
    print_json({{"logged_out", true}, {"token_revoked", revoked}});
  } else {
    print_or_fail(revoked ? "logged out" : "logged out (the token had already expired)");
  }
  return kExitOk;
}

int cmd_whoami(Context& ctx) {
  json me = ctx.api().get("/users/me");
  me["server"] = ctx.credentials().server;
  if (ctx.json()) {
    print_json(me);
  } else {
    print_or_fail(fmt::format("{} (user {}, \"{}\") at {}", str_field(me, "name"),
                              id_field(me, "user_id"), str_field(me, "display_name"),
                              ctx.credentials().server));
  }
  return kExitOk;
}

int cmd_send(Context& ctx, const SendArgs& args) {
  ClientMsgId client_id;
  if (!args.client_id.empty()) {
    auto parsed = ClientMsgId::from_uuid(args.client_id);
    if (!parsed || parsed->is_zero()) {
      throw_usage(fmt::format("--client-id must be a non-nil UUID: {}", args.client_id));
    }
    client_id = *parsed;
  } else {
    client_id = random_uuid();
  }
  std::string body;
  if (args.words.empty() || (args.words.size() == 1 && args.words[0] == "-")) {
    body = read_all_stdin();
  } else {
    for (const std::string& w : args.words) {
      if (!body.empty()) body += ' ';
      body += w;
    }
  }

  Api& api = ctx.api();
  std::string conv = resolve_conversation(ctx, args.target, /*open_direct=*/true);
  long status = 0;
  json ack = api.post("/conversations/" + api.escape(conv) + "/messages",
                      json{{"client_msg_id", client_id.to_uuid()}, {"body", body}}, &status);
  if (ctx.json()) {
    print_json(ack);
  } else {
    bool duplicate = ack.value("duplicate", false);
    print_or_fail(
        fmt::format("sent to {}: seq {}, message {}{}", conversation_label(ctx, conv),
                    ack.value("seq", 0), id_field(ack, "message_id"),
                    duplicate ? " (already stored: this client id was sent before)" : ""));
  }
  return kExitOk;
}

int cmd_history(Context& ctx, const HistoryArgs& args) {
  Api& api = ctx.api();
  std::string conv = resolve_conversation(ctx, args.target, /*open_direct=*/false);
  std::string path =
      fmt::format("/conversations/{}/messages?limit={}", api.escape(conv), args.limit);
  if (args.before != 0) path += fmt::format("&before_seq={}", args.before);
  if (args.after != 0) path += fmt::format("&after_seq={}", args.after);
  json page = api.get(path);
  json messages = page.value("messages", json::array());
  // Names for the senders: one group request names every member of a
  // group; direct conversations have two participants.
  auto raw = parse_decimal(conv);
  if (raw && ConversationId::from_raw(*raw) && ConversationId(*raw).is_group()) {
    api.group_name(std::to_string(ConversationId(*raw).group_id().value));
  }
  for (json& m : messages) m["sender_name"] = api.user_name(id_field(m, "sender_id"));

  if (ctx.json()) {
    print_json({{"conversation_id", conv}, {"messages", messages}});
    return kExitOk;
  }
  for (const json& m : messages) {
    std::string prefix =
        fmt::format("{:>5}  {}  {}: ", m.value("seq", 0), format_time(int_field(m, "sent_at")),
                    str_field(m, "sender_name"));
    print_or_fail(message_line(prefix, str_field(m, "body")));
  }
  return kExitOk;
}

int cmd_tail(Context& ctx, const TailArgs& args) {
  const Credentials& c = ctx.credentials();
  Api& api = ctx.api();
  std::string filter =
      args.target.empty() ? std::string() : resolve_conversation(ctx, args.target, false);

  // Discovery names the chat server to use (DESIGN.md §5); it also proves
  // the token and the server before any WebSocket is opened, so "server
  // down" and "logged out" fail fast with exit 3 and 4.
  std::string ws_url = args.ws_url;
  if (ws_url.empty()) {
    ws_url = str_field(api.get("/discover"), "ws_url");
    if (ws_url.empty()) ws_url = derive_ws_url(c.server);
  }

  TailConfig config;
  config.ws_url = ws_url;
  config.token = c.token;
  config.device_id = device_id(ctx.dir());
  config.verbose = ctx.verbose();
  if (args.all) {
    config.cursor = 0;
  } else if (args.since) {
    config.cursor = *args.since;
  } else if (!args.new_only) {
    config.cursor = load_cursor(ctx.dir(), c.server, c.user_id);  // nullopt: from now on
  }
  TailPrinter printer(ctx, args, filter);
  return run_tail(config, printer);
}

int cmd_contacts(Context& ctx) {
  json listing = ctx.api().get("/contacts");
  if (ctx.json()) {
    print_json(listing);
    return kExitOk;
  }
  for (const json& c : listing.value("contacts", json::array())) {
    std::string state;
    if (c.value("online", false)) {
      state = "online";
    } else if (int_field(c, "last_seen") > 0) {
      state = "last seen " + format_time(int_field(c, "last_seen"));
    } else {
      state = "never seen";
    }
    print_or_fail(fmt::format("{:<20} {:<24} {}", str_field(c, "name"),
                              "\"" + str_field(c, "display_name") + "\"", state));
  }
  return kExitOk;
}

int cmd_add_contact(Context& ctx, const std::string& name) {
  Api& api = ctx.api();
  std::string user_id = id_field(api.user_by_name(name), "user_id");
  json contact = api.post("/contacts", json{{"user_id", user_id}});
  if (ctx.json()) {
    print_json(contact);
  } else {
    print_or_fail(fmt::format("added {} (user {}) to your contacts", name, user_id));
  }
  return kExitOk;
}

int cmd_groups(Context& ctx) {
  json listing = ctx.api().get("/groups");
  if (ctx.json()) {
    print_json(listing);
    return kExitOk;
  }
  for (const json& g : listing.value("groups", json::array())) {
    print_or_fail(fmt::format("{:<12} {:<24} {:<7} conversation {}",
                              "group:" + id_field(g, "group_id"), str_field(g, "name"),
                              str_field(g, "role"), id_field(g, "conversation_id")));
  }
  return kExitOk;
}

int cmd_create_group(Context& ctx, const std::string& name,
                     const std::vector<std::string>& members) {
  Api& api = ctx.api();
  json ids = json::array();
  for (const std::string& m : members) {
    ids.push_back(id_field(api.user_by_name(m.rfind('@', 0) == 0 ? m.substr(1) : m), "user_id"));
  }
  json group = api.post("/groups", json{{"name", name}, {"members", ids}});
  if (ctx.json()) {
    print_json(group);
  } else {
    print_or_fail(fmt::format("created group \"{}\": group:{}, conversation {}", name,
                              id_field(group, "group_id"), id_field(group, "conversation_id")));
  }
  return kExitOk;
}

int cmd_conversations(Context& ctx) {
  json listing = ctx.api().get("/conversations");
  if (ctx.json()) {
    print_json(listing);
    return kExitOk;
  }
  for (const json& c : listing.value("conversations", json::array())) {
    // The same spelling `send` and `history` accept as a target.
    std::string title = str_field(c, "kind") == "group"
                            ? "#" + str_field(c, "title")
                            : "@" + ctx.api().user_name(id_field(c, "peer_user_id"));
    std::string last;
    if (c.contains("last_message") && c["last_message"].is_object()) {
      const json& m = c["last_message"];
      last = str_field(m, "body");
      bool cut = false;
      if (auto nl = last.find('\n'); nl != std::string::npos) {
        last.resize(nl);
        cut = true;
      }
      if (last.size() > 60) {
        last = truncate_utf8(last, 57);
        cut = true;
      }
      last = fmt::format("{}: {}{}", ctx.api().user_name(id_field(m, "sender_id")), last,
                         cut ? "..." : "");
    }
    print_or_fail(fmt::format("{:<20} {:<24} {:>4} unread  {}", id_field(c, "conversation_id"),
                              title, c.value("unread", 0), last));
  }
  return kExitOk;
}

}  // namespace chatcore::cli
