// What the CLI prints, and where.
//
// stdout carries results only: human text, or with --json one JSON
// document per command (one JSON object per line for `tail`), so a script
// can parse stdout without filtering. Errors and connection notes go to
// stderr; with --json an error is a JSON object there too.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "errors.hpp"

namespace chatcore::cli {

// One line on stdout, flushed (tail output must reach a pipe at once).
// Returns false when stdout is gone (EPIPE: `chatcore-cli tail | head -1`).
bool print_line(const std::string& line);

// Compact JSON, invalid UTF-8 replaced rather than thrown on (the server
// sends valid UTF-8; this only guards the output path).
std::string to_json_text(const nlohmann::json& value);

// "2025-06-01 12:00:03" in local time, from Unix milliseconds; "-" for 0.
std::string format_time(std::int64_t unix_ms);

// "chatcore-cli: error: not_found: no such user" on stderr, or with
// `json` {"error": {"code", "message", "exit_code", "http_status"?}}.
void print_error(const CliError& error, bool json);

// A connection note ("tail: connected ...") on stderr.
void print_note(const std::string& text);

}  // namespace chatcore::cli
