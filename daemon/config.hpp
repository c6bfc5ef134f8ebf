// Config: everything chatcored can be told, from a TOML file and flags.
//
// Sources, lowest precedence first:
//   1. the built-in defaults below (each one documented in
//      daemon/chatcored.conf.example, which lists every key);
//   2. the TOML file given with --config;
//   3. the command-line flags (--listen, --data-dir, --web-root, --log-level).
//
// The file is validated strictly, because a typo that silently falls back
// to a default is worse than a refusal: an unknown table or key, a value
// of the wrong type or out of range, is an error that names the key
// ("limits.max_body_chars: must be an integer in 1..10000000"). chatcored
// prints it and exits with status 2 (kConfigErrorExit).
//
// Thread-safety: plain values; load_config() has no shared state.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "chatcore/engine.hpp"
#include "chatcore/limits.hpp"
#include "chatcore/presence.hpp"
#include "chatcore/status.hpp"

namespace chatcored {

// Exit status for an invalid configuration or command line.
inline constexpr int kConfigErrorExit = 2;

// host:port to listen on. `host` is an IPv4/IPv6 literal or a name; an
// IPv6 literal is written in brackets on the command line ("[::1]:8080").
struct ListenAddress {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;

  // "127.0.0.1:8080" / "[::1]:8080".
  std::string to_string() const;
  // Parses "host:port" or "[v6]:port"; kInvalidArgument with a reason.
  static chatcore::Result<ListenAddress> parse(std::string_view text);
};

// See Durability in the LMDB store: kSync fsyncs every commit batch before
// its acks are sent (an acked message survives kill -9 and power loss);
// kNoSync leaves flushing to the OS (survives kill -9 of the daemon, not a
// machine crash). Only for benchmarks.
enum class StorageDurability { kSync, kNoSync };

// Which readiness mechanism the transport's loop uses. kEpoll (libuv, via
// lws' event-lib plugin) costs per pass what is ready; kPoll (lws' own
// loop) scans every connection on every pass.
enum class EventLoop { kEpoll, kPoll };

struct Config {
  // ---- [server] -------------------------------------------------------------
  ListenAddress listen;
  std::string data_dir = "./chatcore-data";
  // Static files served at "/". Empty: the installed share/chatcore/web, or
  // the source tree's daemon/web (default_web_root()).
  std::string web_root;
  // What /api/v1/discover hands clients. Empty: derived from `listen`
  // (ws[s]://host:port/ws).
  std::string public_ws_url;
  std::uint32_t worker_id = 0;  // Snowflake worker id, 0..1023
  // How long a graceful stop (SIGTERM) waits for connections to flush and
  // close before it closes what is left.
  std::chrono::milliseconds drain_timeout{10'000};
  EventLoop event_loop = EventLoop::kEpoll;

  // ---- [storage] ------------------------------------------------------------
  StorageDurability durability = StorageDurability::kSync;
  // LMDB's initial map size (bytes). The store doubles the map whenever a
  // write needs more room, so this is a starting guess, not a cap.
  // (chatcore::LmdbOptions::initial_map_bytes explains the default.)
  std::uint64_t map_size = sizeof(void*) >= 8 ? std::uint64_t{4} << 30 : std::uint64_t{256} << 20;
  // The journal's checkpoints (chatcore::LmdbOptions has the manual).
  std::uint64_t checkpoint_bytes = std::uint64_t{16} << 20;
  std::uint32_t checkpoint_interval_ms = 1000;
  std::uint64_t max_unapplied_bytes = std::uint64_t{256} << 20;
  // chatcore::EngineOptions::commit_delay: how long a commit may wait for
  // more sends on a busy server (0: never).
  std::uint32_t commit_delay_us = 200;

  // ---- [limits], [presence] ----------------------------------------------------
  chatcore::Limits limits;
  chatcore::PresenceOptions presence;
  // Fits a body of max_body_chars characters however it is JSON-escaped
  // (worst case 12 bytes per character: "\ud83d\ude00"), plus the rest of
  // the request.
  std::size_t http_max_body_bytes = 1280 * 1024;

  // ---- [auth] ---------------------------------------------------------------
  std::int64_t token_ttl_seconds = 30 * 24 * 3600;

  // ---- [tls] ----------------------------------------------------------------
  // Both set: serve https/wss only. Both empty: plain http/ws.
  std::string tls_cert;
  std::string tls_key;

  // ---- [log] ------------------------------------------------------------------
  std::string log_level = "info";  // trace, debug, info, warn, error, critical, off

  bool tls_enabled() const { return !tls_cert.empty(); }
  // `public_ws_url`, or ws[s]://<listen>/ws when it is empty.
  std::string effective_public_ws_url() const;
  chatcore::EngineOptions engine_options() const;
};

// Flags given on the command line; each one set overrides the file.
struct ConfigOverrides {
  std::optional<std::string> listen;
  std::optional<std::string> data_dir;
  std::optional<std::string> web_root;
  std::optional<std::string> log_level;
};

// Defaults, then `config_file` (if non-empty), then `overrides`; then the
// cross-field checks. kInvalidArgument with a message naming the key (and
// the file) on any problem; kNotFound if the file cannot be read.
chatcore::Result<Config> load_config(const std::string& config_file,
                                     const ConfigOverrides& overrides);

// Parses a TOML document (for tests and --check-config); `source_name` is
// used in messages.
chatcore::Result<Config> parse_config(std::string_view toml_text, std::string_view source_name,
                                      const ConfigOverrides& overrides);

// The web root used when none is configured: <exe dir>/../share/chatcore/web
// if it exists (an installed binary), else the source tree's daemon/web.
std::string default_web_root();

// Whether `level` is one of the spdlog level names accepted by [log] level.
bool valid_log_level(std::string_view level);

}  // namespace chatcored
