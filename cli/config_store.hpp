// The CLI's files under its config directory (docs/cli.md, "Files"):
//
//   credentials.json  the login: server URL, user name and id, bearer token,
//                     expiry. Mode 0600, written atomically (temp + rename),
//                     because it holds a secret.
//   device.json       this installation's WebSocket device id (stable, so
//                     the server keeps one cursor per device) and the inbox
//                     cursor per (server, user), so `tail` resumes where it
//                     stopped instead of replaying or skipping messages.
//
// The directory is --config-dir, else $XDG_CONFIG_HOME/chatcore, else
// ~/.config/chatcore (the XDG base directory rules), created with mode 0700.
//
// Thread-safety: plain values and free functions; concurrent writers of
// the same file (two `tail`s on one config dir) lose updates but never
// leave a torn file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace chatcore::cli {

struct Credentials {
  std::string server;   // base URL the token belongs to
  std::string name;     // login name
  std::string user_id;  // decimal string, as in the API
  std::string token;
  std::int64_t expires_at_ms = 0;
};

// Resolves the config directory (does not create it). `override_dir` is
// --config-dir (empty: use the environment).
std::filesystem::path config_dir(const std::string& override_dir);

// Throws CliError(usage) on an unreadable or corrupt file; nullopt when
// there is none.
std::optional<Credentials> load_credentials(const std::filesystem::path& dir);
void save_credentials(const std::filesystem::path& dir, const Credentials& creds);
// True if a file was removed.
bool remove_credentials(const std::filesystem::path& dir);

// This installation's device id; created (random) and saved on first use.
std::string device_id(const std::filesystem::path& dir);

// The inbox cursor stored for (server, user), or nullopt if this device has
// never tailed that account.
std::optional<std::uint64_t> load_cursor(const std::filesystem::path& dir,
                                         const std::string& server, const std::string& user_id);
void save_cursor(const std::filesystem::path& dir, const std::string& server,
                 const std::string& user_id, std::uint64_t cursor);

}  // namespace chatcore::cli
