#include "json_util.hpp"

#include <utility>

#include "chatcore/ids.hpp"

namespace chatcored::json_util {

using chatcore::Result;
using chatcore::Status;

Result<Json> parse_object(std::string_view body) {
  // Checked first so that a body the parser would reject for its bytes gets
  // the precise code (invalid_utf8) rather than a generic syntax error.
  if (!valid_utf8(body)) return Status::invalid_utf8("request body is not valid UTF-8");
  Json doc;
  try {
    doc = Json::parse(body);
  } catch (const Json::exception& e) {
    // parse_error, or out_of_range for numbers such as 1e400.
    return Status::invalid_argument(std::string("malformed JSON: ") + e.what());
  }
  if (!doc.is_object()) return Status::invalid_argument("request body must be a JSON object");
  return doc;
}

namespace {
const Json* find_field(const Json& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

Status wrong_type(std::string_view key, std::string_view expected) {
  return Status::invalid_argument(std::string("field '") + std::string(key) + "' must be " +
                                  std::string(expected));
}

Status missing(std::string_view key) {
  return Status::invalid_argument(std::string("field '") + std::string(key) + "' is required");
}
}  // namespace

Result<std::optional<std::string>> optional_string(const Json& obj, std::string_view key) {
  const Json* v = find_field(obj, key);
  if (v == nullptr) return std::optional<std::string>();
  if (!v->is_string()) return wrong_type(key, "a string");
  return std::optional<std::string>(v->get<std::string>());
}

Result<std::string> required_string(const Json& obj, std::string_view key) {
  const Json* v = find_field(obj, key);
  if (v == nullptr) return missing(key);
  if (!v->is_string()) return wrong_type(key, "a string");
  return v->get<std::string>();
}

Result<std::uint64_t> required_id(const Json& obj, std::string_view key) {
  const Json* v = find_field(obj, key);
  if (v == nullptr) return missing(key);
  if (!v->is_string()) return wrong_type(key, "an id as a decimal string");
  auto id = parse_id(v->get_ref<const std::string&>());
  if (!id) return wrong_type(key, "an id as a decimal string");
  return *id;
}

Result<std::uint64_t> required_uint(const Json& obj, std::string_view key) {
  const Json* v = find_field(obj, key);
  if (v == nullptr) return missing(key);
  if (!v->is_number_unsigned()) return wrong_type(key, "a non-negative integer");
  return v->get<std::uint64_t>();
}

std::optional<std::uint64_t> parse_id(std::string_view text) {
  auto v = chatcore::parse_decimal(text);
  if (!v || *v == 0) return std::nullopt;
  return v;
}

std::string id_string(std::uint64_t value) { return chatcore::to_decimal(value); }

std::string dump(const Json& doc) {
  return doc.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json error_body(const Status& status, std::uint32_t retry_after_ms) {
  Json err = {{"code", chatcore::error_code_name(status.code())}, {"message", status.message()}};
  if (retry_after_ms != 0) err["retry_after_ms"] = retry_after_ms;
  return Json{{"error", std::move(err)}};
}

bool valid_utf8(std::string_view text) {
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    std::uint32_t min;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2, min = 0x80, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, min = 0x800, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, min = 0x10000, cp = c & 0x07;
    } else {
      return false;  // a continuation byte or 0xF8..0xFF as a lead byte
    }
    if (n - i < len) return false;
    for (std::size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

namespace {
int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%') {
      if (i + 2 >= in.size()) {
        return Status::invalid_argument("malformed percent-escape in the query string");
      }
      int hi = hex_digit(in[i + 1]);
      int lo = hex_digit(in[i + 2]);
      if (hi < 0 || lo < 0) {
        return Status::invalid_argument("malformed percent-escape in the query string");
      }
      out.push_back(static_cast<char>(hi << 4 | lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  if (!valid_utf8(out)) return Status::invalid_utf8("query string is not valid UTF-8");
  return out;
}
}  // namespace

Result<std::map<std::string, std::string, std::less<>>> parse_query(std::string_view query) {
  std::map<std::string, std::string, std::less<>> out;
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    auto name = percent_decode(pair.substr(0, eq));
    if (!name) return name.status();
    auto value =
        percent_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!value) return value.status();
    out.emplace(std::move(*name), std::move(*value));
  }
  return out;
}

}  // namespace chatcored::json_util
