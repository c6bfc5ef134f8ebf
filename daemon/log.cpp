#include "log.hpp"

#include <libwebsockets.h>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <fmt/format.h>

namespace chatcored {

namespace {

// libwebsockets hands us complete lines (with a trailing newline) tagged
// with one LLL_ level bit.
void lws_emit(int level, const char* line) {
  std::string_view text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  auto spd_level = spdlog::level::debug;
  if (level & LLL_ERR) {
    spd_level = spdlog::level::err;
  } else if (level & LLL_WARN) {
    spd_level = spdlog::level::warn;
  } else if (level & (LLL_NOTICE | LLL_USER)) {
    spd_level = spdlog::level::info;
  }
  spdlog::log(spd_level, "lws msg={}", log_quote(text));
}

}  // namespace

std::string log_quote(std::string_view value) {
  bool plain = !value.empty();
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || c == '"' || c == '\\' || c == '=' || u == 0x7f) {
      plain = false;
      break;
    }
  }
  if (plain) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

void init_logging(std::string_view level) {
  // stderr, unbuffered per line: a supervisor (systemd, docker) collects it
  // and a crash loses nothing that was logged.
  auto logger = spdlog::stderr_logger_mt("chatcored");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
  auto lvl = spdlog::level::from_str(std::string(level));
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);

  // lws is chatty at NOTICE (every listen, every TLS setup); keep its
  // warnings and errors normally and open it up only at debug/trace.
  int lws_levels = LLL_ERR | LLL_WARN;
  if (lvl <= spdlog::level::debug) lws_levels |= LLL_NOTICE | LLL_USER;
  if (lvl <= spdlog::level::trace) lws_levels |= LLL_INFO;
  if (lvl == spdlog::level::off) lws_levels = 0;
  lws_set_log_level(lws_levels, lws_emit);
}

}  // namespace chatcored
