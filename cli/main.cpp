// chatcore-cli: the chatcore terminal client (docs/cli.md).
//
// This file is the command line only: CLI11 definitions, then one call into
// commands.cpp. Every failure arrives here as a CliError and leaves as a
// message on stderr and an exit code (errors.hpp):
//   0 ok, 1 usage, 2 refused by the server, 3 network/unavailable,
//   4 unauthenticated.
#include <curl/curl.h>

#include <cstdio>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "errors.hpp"
#include "output.hpp"

namespace {

using namespace chatcore::cli;

// libcurl's global state, for the life of main().
class CurlGlobal {
 public:
  CurlGlobal() : ok_(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK) {}
  ~CurlGlobal() {
    if (ok_) curl_global_cleanup();
  }
  CurlGlobal(const CurlGlobal&) = delete;
  CurlGlobal& operator=(const CurlGlobal&) = delete;
  bool ok() const { return ok_; }

 private:
  bool ok_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "chatcore-cli: a terminal client for a chatcore server (chatcored).\n"
      "Exit codes: 0 ok, 1 usage, 2 refused by the server (its error code is printed),\n"
      "3 network error or server unavailable, 4 not logged in / bad password / token refused.",
      "chatcore-cli"};
  app.set_version_flag("--version", "chatcore-cli " CHATCORE_CLI_VERSION);
  app.require_subcommand(1);
  // Global options may follow the subcommand too (`send bob hi --json`).
  app.fallthrough();

  GlobalOptions global;
  app.add_option("--server", global.server,
                 "server URL (default: $CHATCORE_SERVER, else the login's server, else "
                 "http://127.0.0.1:8080)");
  app.add_flag("--json", global.json,
               "machine-readable output: one JSON document per command, one JSON object per "
               "line for tail; errors as JSON on stderr");
  app.add_option("--config-dir", global.config_dir,
                 "where the login and device state live (default: "
                 "$XDG_CONFIG_HOME/chatcore, else ~/.config/chatcore)");
  app.add_option("--timeout", global.timeout_seconds, "HTTP request timeout in seconds")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_flag("-v,--verbose", global.verbose, "trace HTTP and WebSocket traffic on stderr");

  std::function<int(Context&)> run;

  SignupArgs signup;
  auto* c_signup = app.add_subcommand("signup", "create an account");
  c_signup->add_option("name", signup.name, "login name (1-64 of A-Z a-z 0-9 _ . -)")->required();
  c_signup->add_option("--display-name", signup.display_name, "shown to others (default: name)");
  c_signup->add_option("--email", signup.email, "optional e-mail address");
  c_signup->add_option("--phone", signup.phone, "optional phone number");
  c_signup->add_flag("--password-stdin", signup.password_stdin,
                     "read the password from the first line of stdin");
  c_signup->add_flag("--login", signup.login, "log in right after signing up");
  c_signup->callback([&] { run = [&](Context& ctx) { return cmd_signup(ctx, signup); }; });

  LoginArgs login;
  auto* c_login = app.add_subcommand("login", "log in and save the token (mode 0600)");
  c_login->add_option("name", login.name, "login name")->required();
  c_login->add_flag("--password-stdin", login.password_stdin,
                    "read the password from the first line of stdin");
  c_login->callback([&] { run = [&](Context& ctx) { return cmd_login(ctx, login); }; });

  auto* c_logout = app.add_subcommand("logout", "revoke the token and delete it");
  c_logout->callback([&] { run = cmd_logout; });

  auto* c_whoami = app.add_subcommand("whoami", "show the logged-in user");
  c_whoami->callback([&] { run = cmd_whoami; });

  const char* target_help =
      "a user name (bob, @bob), a group (#Team or group:<id>), or a conversation id";

  SendArgs send;
  auto* c_send =
      app.add_subcommand("send", "send a message; it is durable when this command succeeds");
  c_send->add_option("target", send.target, target_help)->required();
  c_send->add_option("text", send.words,
                     "message text (words are joined by spaces); "
                     "omitted or '-': read stdin");
  c_send->add_option("--client-id", send.client_id,
                     "client message id (a UUID); reuse it to retry a send without "
                     "duplicating it (default: a random one)");
  c_send->callback([&] { run = [&](Context& ctx) { return cmd_send(ctx, send); }; });

  HistoryArgs history;
  auto* c_history = app.add_subcommand("history", "print a conversation, oldest first");
  c_history->add_option("conversation", history.target, target_help)->required();
  c_history->add_option("-n,--limit", history.limit, "number of messages (at most 200)")
      ->check(CLI::Range(1u, 200u))
      ->capture_default_str();
  auto* before =
      c_history->add_option("--before", history.before, "messages before this seq (paging back)")
          ->check(CLI::PositiveNumber);
  auto* after =
      c_history->add_option("--after", history.after, "messages after this seq (catching up)")
          ->check(CLI::PositiveNumber);
  before->excludes(after);
  c_history->callback([&] { run = [&](Context& ctx) { return cmd_history(ctx, history); }; });

  TailArgs tail;
  std::uint64_t since = 0;
  auto* c_tail = app.add_subcommand(
      "tail", "print live messages until Ctrl-C; resumes from this device's cursor");
  c_tail->add_option("conversation", tail.target,
                     "only this conversation (" + std::string(target_help) + ")");
  auto* all = c_tail->add_flag("--all", tail.all, "start from the first message of your inbox");
  auto* since_opt = c_tail->add_option("--since", since, "start after this inbox seq");
  auto* fresh = c_tail->add_flag("--new", tail.new_only,
                                 "ignore the saved cursor: only messages from now on");
  all->excludes(since_opt)->excludes(fresh);
  since_opt->excludes(fresh);
  c_tail->add_flag("--presence", tail.presence, "also print contacts going online/offline");
  c_tail->add_flag("-q,--quiet", tail.quiet, "no connection notes on stderr");
  c_tail->add_option("--ws-url", tail.ws_url, "WebSocket URL (default: from /api/v1/discover)");
  c_tail->callback([&] {
    if (since_opt->count() > 0) tail.since = since;
    run = [&](Context& ctx) { return cmd_tail(ctx, tail); };
  });

  auto* c_contacts = app.add_subcommand("contacts", "list your contacts with presence");
  c_contacts->callback([&] { run = cmd_contacts; });

  std::string contact_name;
  auto* c_add_contact = app.add_subcommand("add-contact", "add a user to your contacts");
  c_add_contact->add_option("name", contact_name, "login name")->required();
  c_add_contact->callback(
      [&] { run = [&](Context& ctx) { return cmd_add_contact(ctx, contact_name); }; });

  auto* c_groups = app.add_subcommand("groups", "list your groups");
  c_groups->callback([&] { run = cmd_groups; });

  std::string group_name;
  std::vector<std::string> group_members;
  auto* c_create_group = app.add_subcommand("create-group", "create a group you own");
  c_create_group->add_option("name", group_name, "group name")->required();
  c_create_group->add_option("members", group_members, "login names of the other members");
  c_create_group->callback([&] {
    run = [&](Context& ctx) { return cmd_create_group(ctx, group_name, group_members); };
  });

  auto* c_conversations =
      app.add_subcommand("conversations", "list your conversations, newest first");
  c_conversations->callback([&] { run = cmd_conversations; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Help and --version exit 0; every other parse error is a usage error.
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }

  CurlGlobal curl;
  try {
    if (!curl.ok()) throw CliError(kExitUnavailable, "internal", "curl_global_init failed");
    Context ctx(global);
    return run(ctx);
  } catch (const CliError& e) {
    print_error(e, global.json);
    return e.exit_code();
  } catch (const std::exception& e) {
    // A bug (or out of memory): say so, and do not look like a refusal.
    print_error(CliError(kExitUnavailable, "internal", e.what()), global.json);
    return kExitUnavailable;
  }
}
