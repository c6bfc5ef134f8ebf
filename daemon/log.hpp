// Logging for chatcored: spdlog, one line per event.
//
// Every line reads "<time> <level> <event> key=value key=value ...", e.g.
//   2025-06-01T12:00:00.123Z info ws_open session=42 peer=127.0.0.1
// so it greps and parses without a JSON tool. Values that may contain
// spaces or quotes are written with log_quote(). What is never logged:
// tokens, passwords, Authorization headers, message bodies (an operator's
// log must not become a copy of the users' conversations or a key ring).
//
// libwebsockets' own log lines are routed into the same logger (event
// "lws"), at a verbosity that follows the configured level.
//
// Thread-safety: spdlog's default logger is thread-safe; init_logging()
// must be called once, before other threads start.
#pragma once

#include <string>
#include <string_view>

namespace chatcored {

// Installs the stderr logger with the line format above at `level` (one of
// valid_log_level()'s names) and routes libwebsockets' logs into it.
void init_logging(std::string_view level);

// `value` as a log field value: unchanged if it has no space, quote,
// backslash, '=' or control character; otherwise double-quoted with those
// escaped, so every line stays one line and splits unambiguously.
std::string log_quote(std::string_view value);

}  // namespace chatcored
