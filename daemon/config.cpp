#include "config.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <vector>

#include <fmt/format.h>
#include <toml++/toml.h>

namespace chatcored {

using chatcore::Result;
using chatcore::Status;

// ---- ListenAddress ----------------------------------------------------------------

std::string ListenAddress::to_string() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

Result<ListenAddress> ListenAddress::parse(std::string_view text) {
  ListenAddress out;
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Status::invalid_argument("expected [ipv6]:port");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return Status::invalid_argument("expected host:port");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return Status::invalid_argument("write an IPv6 address in brackets: [::1]:8080");
    }
  }
  if (host.empty()) return Status::invalid_argument("empty host (use 0.0.0.0 for every address)");
  auto value = chatcore::parse_decimal(port);
  if (!value || *value > 65535) return Status::invalid_argument("port must be 0..65535");
  out.host = std::string(host);
  out.port = static_cast<std::uint16_t>(*value);
  return out;
}

// ---- Config -------------------------------------------------------------------------

std::string Config::effective_public_ws_url() const {
  if (!public_ws_url.empty()) return public_ws_url;
  ListenAddress shown = listen;
  // A wildcard address is where we listen, not where clients connect; an
  // operator behind a proxy or on a public address sets public_ws_url.
  if (shown.host == "0.0.0.0") shown.host = "127.0.0.1";
  if (shown.host == "::") shown.host = "::1";
  return fmt::format("{}://{}/ws", tls_enabled() ? "wss" : "ws", shown.to_string());
}

chatcore::EngineOptions Config::engine_options() const {
  chatcore::EngineOptions options;
  options.limits = limits;
  options.worker_id = worker_id;
  options.presence = presence;
  options.storage_thread = true;  // chatcored: lws thread owns the engine, commits off it
  // The transport calls flush_sends() at the end of every loop pass: the
  // sends read in one pass share one commit batch.
  options.hold_sends_until_flush = true;
  options.commit_delay = std::chrono::microseconds(commit_delay_us);
  return options;
}

bool valid_log_level(std::string_view level) {
  static constexpr std::array<std::string_view, 7> kLevels = {"trace", "debug",    "info", "warn",
                                                              "error", "critical", "off"};
  return std::find(kLevels.begin(), kLevels.end(), level) != kLevels.end();
}

std::string default_web_root() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto installed = exe.parent_path() / CHATCORED_RELATIVE_WEB_ROOT;
    if (std::filesystem::is_directory(installed, ec)) {
      return std::filesystem::weakly_canonical(installed, ec).string();
    }
  }
  return CHATCORED_SOURCE_WEB_ROOT;
}

namespace {

// ---- typed readers: each names the key in its error -------------------------------

std::string type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    default:
      return "a date/time";
  }
}

Status key_error(const std::string& key, const std::string& problem) {
  return Status::invalid_argument(fmt::format("{}: {}", key, problem));
}

Status read_string(const toml::node& node, const std::string& key, std::string& out) {
  auto v = node.value<std::string>();
  if (!node.is_string() || !v) return key_error(key, "must be a string, not " + type_name(node));
  out = *v;
  return Status::ok();
}

Status read_int(const toml::node& node, const std::string& key, std::int64_t min, std::int64_t max,
                std::int64_t& out) {
  if (!node.is_integer()) {
    return key_error(
        key, fmt::format("must be an integer in {}..{}, not {}", min, max, type_name(node)));
  }
  std::int64_t v = *node.value<std::int64_t>();
  if (v < min || v > max) {
    return key_error(key, fmt::format("must be an integer in {}..{} (got {})", min, max, v));
  }
  out = v;
  return Status::ok();
}

Status read_double(const toml::node& node, const std::string& key, double min, double max,
                   double& out) {
  if (!node.is_integer() && !node.is_floating_point()) {
    return key_error(key,
                     fmt::format("must be a number in {}..{}, not {}", min, max, type_name(node)));
  }
  double v = *node.value<double>();
  if (!std::isfinite(v) || v < min || v > max) {
    return key_error(key, fmt::format("must be a number in {}..{} (got {})", min, max, v));
  }
  out = v;
  return Status::ok();
}

// A byte size: an integer, or a string with a binary unit ("64MiB", "1 GiB",
// "512KiB"). Decimal units (MB) are refused rather than guessed at.
Status read_size(const toml::node& node, const std::string& key, std::uint64_t min,
                 std::uint64_t max, std::uint64_t& out) {
  std::uint64_t value = 0;
  if (node.is_integer()) {
    std::int64_t v = *node.value<std::int64_t>();
    if (v < 0) return key_error(key, fmt::format("must not be negative (got {})", v));
    value = static_cast<std::uint64_t>(v);
  } else if (node.is_string()) {
    std::string text = *node.value<std::string>();
    std::size_t i = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    auto number = chatcore::parse_decimal(std::string_view(text).substr(0, i));
    std::string unit = text.substr(i);
    unit.erase(std::remove(unit.begin(), unit.end(), ' '), unit.end());
    std::uint64_t scale = 0;
    if (unit.empty() || unit == "B") scale = 1;
    if (unit == "KiB") scale = std::uint64_t{1} << 10;
    if (unit == "MiB") scale = std::uint64_t{1} << 20;
    if (unit == "GiB") scale = std::uint64_t{1} << 30;
    if (unit == "TiB") scale = std::uint64_t{1} << 40;
    if (!number || scale == 0 || *number > std::numeric_limits<std::uint64_t>::max() / scale) {
      return key_error(key, fmt::format("\"{}\" is not a size (write bytes as an integer, or "
                                        "a number with B, KiB, MiB, GiB or TiB)",
                                        text));
    }
    value = *number * scale;
  } else {
    return key_error(
        key, "must be a size (integer bytes or a string like \"64MiB\"), not " + type_name(node));
  }
  if (value < min || value > max) {
    return key_error(key, fmt::format("must be between {} and {} bytes (got {})", min, max, value));
  }
  out = value;
  return Status::ok();
}

// One known key of a table and what to do with its value.
struct KeySpec {
  std::string_view name;
  std::function<Status(const toml::node&, const std::string& key, Config& c)> apply;
};
struct TableSpec {
  std::string_view name;
  std::vector<KeySpec> keys;
};

template <typename T>
KeySpec int_key(std::string_view name, std::int64_t min, std::int64_t max, T Config::*field) {
  return {name, [=](const toml::node& n, const std::string& key, Config& c) {
            std::int64_t v = 0;
            Status s = read_int(n, key, min, max, v);
            if (s.is_ok()) c.*field = static_cast<T>(v);
            return s;
          }};
}

std::vector<TableSpec> config_schema() {
  constexpr std::uint64_t KiB = 1024;
  constexpr std::uint64_t MiB = 1024 * KiB;
  constexpr std::uint64_t GiB = 1024 * MiB;
  std::vector<TableSpec> tables;

  tables.push_back({"server",
                    {
                        {"listen",
                         [](const toml::node& n, const std::string& key, Config& c) {
                           std::string text;
                           Status s = read_string(n, key, text);
                           if (!s.is_ok()) return s;
                           auto addr = ListenAddress::parse(text);
                           if (!addr.is_ok()) return key_error(key, addr.status().message());
                           c.listen = *addr;
                           return Status::ok();
                         }},
                        {"data_dir",
                         [](const toml::node& n, const std::string& key, Config& c) {
                           Status s = read_string(n, key, c.data_dir);
                           if (s.is_ok() && c.data_dir.empty())
                             return key_error(key, "must not be empty");
                           return s;
                         }},
                        {"web_root", [](const toml::node& n, const std::string& key,
                                        Config& c) { return read_string(n, key, c.web_root); }},
                        {"public_ws_url",
                         [](const toml::node& n, const std::string& key, Config& c) {
                           Status s = read_string(n, key, c.public_ws_url);
                           if (s.is_ok() && !c.public_ws_url.empty() &&
                               !c.public_ws_url.starts_with("ws://") &&
                               !c.public_ws_url.starts_with("wss://")) {
                             return key_error(key, "must start with ws:// or wss:// (or be empty)");
                           }
                           return s;
                         }},
                        int_key("worker_id", 0, 1023, &Config::worker_id),
                        {"drain_timeout_ms",
                         [](const toml::node& n, const std::string& key, Config& c) {
                           std::int64_t v = 0;
                           Status s = read_int(n, key, 0, 600'000, v);
                           if (s.is_ok()) c.drain_timeout = std::chrono::milliseconds(v);
                           return s;
                         }},
                        {"event_loop",
                         [](const toml::node& n, const std::string& key, Config& c) {
                           std::string text;
                           Status s = read_string(n, key, text);
                           if (!s.is_ok()) return s;
                           if (text == "epoll") {
                             c.event_loop = EventLoop::kEpoll;
                           } else if (text == "poll") {
                             c.event_loop = EventLoop::kPoll;
                           } else {
                             return key_error(key, "must be \"epoll\" or \"poll\"");
                           }
                           return Status::ok();
                         }},
                    }});

  tables.push_back(
      {"storage",
       {
           {"durability",
            [](const toml::node& n, const std::string& key, Config& c) {
              std::string text;
              Status s = read_string(n, key, text);
              if (!s.is_ok()) return s;
              if (text == "sync") {
                c.durability = StorageDurability::kSync;
              } else if (text == "nosync") {
                c.durability = StorageDurability::kNoSync;
              } else {
                return key_error(key,
                                 fmt::format("must be \"sync\" or \"nosync\" (got \"{}\")", text));
              }
              return Status::ok();
            }},
           {"map_size",
            [=](const toml::node& n, const std::string& key, Config& c) {
              return read_size(n, key, 1 * MiB, std::uint64_t{1} << 44, c.map_size);
            }},
           {"checkpoint_bytes",
            [=](const toml::node& n, const std::string& key, Config& c) {
              return read_size(n, key, 0, std::uint64_t{1} << 40, c.checkpoint_bytes);
            }},
           int_key("checkpoint_interval_ms", 0, 3'600'000, &Config::checkpoint_interval_ms),
           {"max_unapplied_bytes",
            [=](const toml::node& n, const std::string& key, Config& c) {
              return read_size(n, key, 1 * MiB, std::uint64_t{1} << 40, c.max_unapplied_bytes);
            }},
           int_key("commit_delay_us", 0, 100'000, &Config::commit_delay_us),
       }});

  auto size_key = [](std::string_view name, std::uint64_t min, std::uint64_t max,
                     std::function<std::size_t&(Config&)> field) {
    return KeySpec{name, [=](const toml::node& n, const std::string& key, Config& c) {
                     std::uint64_t v = 0;
                     Status s = read_size(n, key, min, max, v);
                     if (s.is_ok()) field(c) = static_cast<std::size_t>(v);
                     return s;
                   }};
  };
  tables.push_back(
      {"limits",
       {
           {"max_body_chars",
            [](const toml::node& n, const std::string& key, Config& c) {
              std::int64_t v = 0;
              Status s = read_int(n, key, 1, 10'000'000, v);
              if (s.is_ok()) c.limits.max_body_chars = static_cast<std::uint32_t>(v);
              return s;
            }},
           {"max_group_members",
            [](const toml::node& n, const std::string& key, Config& c) {
              std::int64_t v = 0;
              Status s = read_int(n, key, 2, 100'000, v);
              if (s.is_ok()) c.limits.max_group_members = static_cast<std::uint32_t>(v);
              return s;
            }},
           size_key("max_frame_bytes", 1 * KiB, 256 * MiB,
                    [](Config& c) -> std::size_t& { return c.limits.max_frame_bytes; }),
           size_key("outbound_soft_bytes", 4 * KiB, 4 * GiB,
                    [](Config& c) -> std::size_t& { return c.limits.outbound_soft_bytes; }),
           size_key("outbound_hard_bytes", 4 * KiB, 4 * GiB,
                    [](Config& c) -> std::size_t& { return c.limits.outbound_hard_bytes; }),
           {"sends_per_second",
            [](const toml::node& n, const std::string& key, Config& c) {
              return read_double(n, key, 0.001, 1e6, c.limits.sends_per_second);
            }},
           {"send_burst",
            [](const toml::node& n, const std::string& key, Config& c) {
              return read_double(n, key, 1.0, 1e6, c.limits.send_burst);
            }},
           size_key("http_max_body_bytes", 1 * KiB, 256 * MiB,
                    [](Config& c) -> std::size_t& { return c.http_max_body_bytes; }),
       }});

  tables.push_back({"presence",
                    {
                        {"heartbeat_interval_ms",
                         [](const toml::node& n, const std::string& key, Config& c) {
                           return read_int(n, key, 100, 3'600'000,
                                           c.presence.heartbeat_interval_ms);
                         }},
                        {"timeout_ms",
                         [](const toml::node& n, const std::string& key, Config& c) {
                           return read_int(n, key, 200, 86'400'000, c.presence.timeout_ms);
                         }},
                    }});

  tables.push_back({"auth",
                    {
                        {"token_ttl_seconds",
                         [](const toml::node& n, const std::string& key, Config& c) {
                           return read_int(n, key, 60, 10LL * 365 * 24 * 3600, c.token_ttl_seconds);
                         }},
                    }});

  tables.push_back({"tls",
                    {
                        {"cert", [](const toml::node& n, const std::string& key,
                                    Config& c) { return read_string(n, key, c.tls_cert); }},
                        {"key", [](const toml::node& n, const std::string& key,
                                   Config& c) { return read_string(n, key, c.tls_key); }},
                    }});

  tables.push_back({"log",
                    {
                        {"level",
                         [](const toml::node& n, const std::string& key, Config& c) {
                           Status s = read_string(n, key, c.log_level);
                           if (s.is_ok() && !valid_log_level(c.log_level)) {
                             return key_error(key,
                                              "must be one of trace, debug, info, warn, "
                                              "error, critical, off");
                           }
                           return s;
                         }},
                    }});
  return tables;
}

Status apply_document(const toml::table& doc, Config& config) {
  static const std::vector<TableSpec> schema = config_schema();
  for (auto&& [table_key, table_node] : doc) {
    std::string table_name(table_key.str());
    auto spec = std::find_if(schema.begin(), schema.end(),
                             [&](const TableSpec& t) { return t.name == table_name; });
    if (spec == schema.end()) {
      return key_error(table_name, table_node.is_table() ? "unknown table" : "unknown key");
    }
    const toml::table* table = table_node.as_table();
    if (!table) return key_error(table_name, "must be a table ([" + table_name + "])");
    for (auto&& [key, node] : *table) {
      std::string full = table_name + "." + std::string(key.str());
      auto k = std::find_if(spec->keys.begin(), spec->keys.end(),
                            [&](const KeySpec& ks) { return ks.name == key.str(); });
      if (k == spec->keys.end()) return key_error(full, "unknown key");
      Status s = k->apply(node, full, config);
      if (!s.is_ok()) return s;
    }
  }
  return Status::ok();
}

Status apply_overrides(const ConfigOverrides& o, Config& config) {
  if (o.listen) {
    auto addr = ListenAddress::parse(*o.listen);
    if (!addr.is_ok()) return key_error("--listen", addr.status().message());
    config.listen = *addr;
  }
  if (o.data_dir) {
    if (o.data_dir->empty()) return key_error("--data-dir", "must not be empty");
    config.data_dir = *o.data_dir;
  }
  if (o.web_root) config.web_root = *o.web_root;
  if (o.log_level) {
    if (!valid_log_level(*o.log_level)) {
      return key_error("--log-level",
                       "must be one of trace, debug, info, warn, error, critical, off");
    }
    config.log_level = *o.log_level;
  }
  return Status::ok();
}

// Rules that involve more than one key; each names the key to change.
Status check_consistency(Config& c) {
  const auto& l = c.limits;
  std::size_t full_message = std::size_t{4} * l.max_body_chars + 4096;
  if (l.max_frame_bytes < full_message) {
    return key_error("limits.max_frame_bytes",
                     fmt::format("must be at least 4 * limits.max_body_chars + 4096 = {} so "
                                 "that a message of the largest allowed body fits in a frame",
                                 full_message));
  }
  if (l.outbound_soft_bytes >= l.outbound_hard_bytes) {
    return key_error("limits.outbound_soft_bytes", "must be below limits.outbound_hard_bytes");
  }
  if (l.outbound_hard_bytes < l.max_frame_bytes) {
    return key_error("limits.outbound_hard_bytes",
                     "must be at least limits.max_frame_bytes (one full message must fit)");
  }
  // JSON escapes a character into at most 12 bytes ("\ud83d\ude00").
  std::size_t full_json_body = std::size_t{12} * l.max_body_chars + 4096;
  if (c.http_max_body_bytes < full_json_body) {
    return key_error("limits.http_max_body_bytes",
                     fmt::format("must be at least 12 * limits.max_body_chars + 4096 = {} so "
                                 "that a message of the largest allowed body fits, JSON-escaped",
                                 full_json_body));
  }
  if (c.presence.heartbeat_interval_ms >= c.presence.timeout_ms) {
    return key_error("presence.heartbeat_interval_ms", "must be below presence.timeout_ms");
  }
  if (c.tls_cert.empty() != c.tls_key.empty()) {
    return key_error(c.tls_cert.empty() ? "tls.cert" : "tls.key",
                     "tls.cert and tls.key must be set together");
  }
  for (const auto& [key, path] : {std::pair{"tls.cert", &c.tls_cert}, {"tls.key", &c.tls_key}}) {
    if (!path->empty() && ::access(path->c_str(), R_OK) != 0) {
      return key_error(key, fmt::format("cannot read \"{}\"", *path));
    }
  }
  if (c.web_root.empty()) c.web_root = default_web_root();
  std::error_code ec;
  if (!std::filesystem::is_directory(c.web_root, ec)) {
    return key_error("server.web_root", fmt::format("\"{}\" is not a directory", c.web_root));
  }
  return Status::ok();
}

}  // namespace

Result<Config> parse_config(std::string_view toml_text, std::string_view source_name,
                            const ConfigOverrides& overrides) {
  Config config;
  if (!toml_text.empty()) {
    toml::table doc;
    try {
      doc = toml::parse(toml_text, source_name);
    } catch (const toml::parse_error& e) {
      return Status::invalid_argument(fmt::format("{}:{}:{}: {}", source_name,
                                                  e.source().begin.line, e.source().begin.column,
                                                  e.description()));
    }
    Status s = apply_document(doc, config);
    if (!s.is_ok()) {
      return Status::invalid_argument(fmt::format("{}: {}", source_name, s.message()));
    }
  }
  Status s = apply_overrides(overrides, config);
  if (s.is_ok()) s = check_consistency(config);
  if (!s.is_ok()) return s;
  return config;
}

Result<Config> load_config(const std::string& config_file, const ConfigOverrides& overrides) {
  std::string text;
  if (!config_file.empty()) {
    std::ifstream in(config_file, std::ios::binary);
    if (!in) return Status::not_found(fmt::format("cannot read config file \"{}\"", config_file));
    std::ostringstream buffer;
    buffer << in.rdbuf();
    text = buffer.str();
    // An empty file is a valid (all-defaults) config; parse it anyway so a
    // file of only comments goes through the same path.
    if (text.empty()) text = "\n";
  }
  return parse_config(text, config_file.empty() ? "<defaults>" : config_file, overrides);
}

}  // namespace chatcored
