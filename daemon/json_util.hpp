// json_util: the small glue between nlohmann::json and the HTTP API.
//
// The HTTP API never lets a JSON exception escape: request bodies are parsed
// here (a parse failure becomes a Status), every field is read through a
// typed accessor that reports a wrong type as kInvalidArgument, and every
// response is serialised with invalid UTF-8 replaced rather than thrown on.
//
// Conventions these helpers encode (docs/http-api.md, "Conventions"):
//  * Every 64-bit id travels as a decimal STRING (JavaScript numbers lose
//    precision above 2^53); counters (seq, limit, unread) and times (Unix
//    milliseconds) are JSON numbers.
//  * A field that is absent and a field that is JSON null are treated alike
//    ("not given"); any other type mismatch is an error.
//
// Thread-safety: free functions without shared state.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "chatcore/status.hpp"

namespace chatcored::json_util {

using Json = nlohmann::json;

// Parses a request body that must be exactly one JSON object. Errors:
// kInvalidUtf8 if the bytes are not valid UTF-8, kInvalidArgument for any
// other parse failure or a non-object document.
chatcore::Result<Json> parse_object(std::string_view body);

// Field readers. `obj` must be an object. Absent (or null) optional fields
// give nullopt; a present field of the wrong type is kInvalidArgument.
chatcore::Result<std::optional<std::string>> optional_string(const Json& obj, std::string_view key);
chatcore::Result<std::string> required_string(const Json& obj, std::string_view key);
// A 64-bit id given as a decimal string ("42"); zero is rejected.
chatcore::Result<std::uint64_t> required_id(const Json& obj, std::string_view key);
// A non-negative JSON integer (not a float, not a string).
chatcore::Result<std::uint64_t> required_uint(const Json& obj, std::string_view key);

// Parses a decimal id from a path segment or query value; zero is rejected.
std::optional<std::uint64_t> parse_id(std::string_view text);

// The decimal string form of an id.
std::string id_string(std::uint64_t value);

// Serialises a response document; invalid UTF-8 (which validated input never
// produces) is replaced by U+FFFD instead of throwing.
std::string dump(const Json& doc);

// {"error":{"code":"<error_code_name>","message":"..."}}, plus
// "retry_after_ms" when it is non-zero.
Json error_body(const chatcore::Status& status, std::uint32_t retry_after_ms = 0);

// Strict UTF-8 validation (RFC 3629: no overlong forms, no surrogates,
// nothing above U+10FFFF).
bool valid_utf8(std::string_view text);

// Parses an application/x-www-form-urlencoded query string ("a=1&b=x%20y")
// into name -> value (percent-decoded, '+' is a space). A repeated name
// keeps its first value. kInvalidArgument for a malformed escape or a
// decoded value that is not valid UTF-8.
chatcore::Result<std::map<std::string, std::string, std::less<>>> parse_query(
    std::string_view query);

}  // namespace chatcored::json_util
