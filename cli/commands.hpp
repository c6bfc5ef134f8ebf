// The subcommands. Each returns the process exit code on success and
// throws CliError on failure (errors.hpp); main() prints and exits.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api.hpp"
#include "config_store.hpp"

namespace chatcore::cli {

inline constexpr const char* kDefaultServer = "http://127.0.0.1:8080";

struct GlobalOptions {
  std::string server;      // --server; empty: $CHATCORE_SERVER, the login's, the default
  std::string config_dir;  // --config-dir; empty: XDG rules
  bool json = false;
  double timeout_seconds = 30;
  bool verbose = false;
};

// What every command needs: options, the config directory, the login and
// an API client, each resolved on first use (signup needs no login;
// `--help` needs nothing).
class Context {
 public:
  explicit Context(GlobalOptions options);

  bool json() const { return options_.json; }
  bool verbose() const { return options_.verbose; }
  const std::filesystem::path& dir();

  // The server for signup and login: --server, else $CHATCORE_SERVER, else
  // the server of the saved login, else kDefaultServer. Normalised
  // ("host:port" gains "http://", a trailing '/' goes).
  std::string server_for_login();
  // The saved login. Throws unauthenticated (exit 4) if there is none, or
  // if --server/$CHATCORE_SERVER names another server than the login's
  // (sending the token there would hand it to a stranger).
  const Credentials& credentials();
  // An API client with the login's token, at the login's server.
  Api& api();
  // An API client without a token.
  std::unique_ptr<Api> anonymous_api(const std::string& server);

 private:
  HttpOptions http_options(const std::string& server) const;
  std::string explicit_server() const;

  GlobalOptions options_;
  std::optional<std::filesystem::path> dir_;
  std::optional<Credentials> credentials_;
  std::unique_ptr<Api> api_;
};

struct SignupArgs {
  std::string name;
  std::string display_name;
  std::string email;
  std::string phone;
  bool password_stdin = false;
  bool login = false;  // also log in (same password)
};

struct LoginArgs {
  std::string name;
  bool password_stdin = false;
};

struct SendArgs {
  std::string target;
  std::vector<std::string> words;  // joined by spaces; empty or "-": stdin
  std::string client_id;           // a UUID to make a retry idempotent
};

struct HistoryArgs {
  std::string target;
  unsigned limit = 50;
  std::uint64_t before = 0;
  std::uint64_t after = 0;
};

struct TailArgs {
  std::string target;  // optional filter
  bool all = false;    // from inbox seq 0
  std::optional<std::uint64_t> since;
  bool new_only = false;  // ignore the saved cursor
  bool presence = false;
  bool quiet = false;
  std::string ws_url;  // override discovery
};

int cmd_signup(Context& ctx, const SignupArgs& args);
int cmd_login(Context& ctx, const LoginArgs& args);
int cmd_logout(Context& ctx);
int cmd_whoami(Context& ctx);
int cmd_send(Context& ctx, const SendArgs& args);
int cmd_history(Context& ctx, const HistoryArgs& args);
int cmd_tail(Context& ctx, const TailArgs& args);
int cmd_contacts(Context& ctx);
int cmd_add_contact(Context& ctx, const std::string& name);
int cmd_groups(Context& ctx);
int cmd_create_group(Context& ctx, const std::string& name,
                     const std::vector<std::string>& members);
int cmd_conversations(Context& ctx);

}  // namespace chatcore::cli
