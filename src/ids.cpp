#include "chatcore/ids.hpp"

#include <charconv>

namespace chatcore {

std::optional<ConversationId> ConversationId::direct_checked(UserId a, UserId b) {
  if (!a.valid() || !b.valid() || a == b) return std::nullopt;
  if (a.value > kMaxUserId || b.value > kMaxUserId) return std::nullopt;
  return direct(a, b);
}

std::optional<ConversationId> ConversationId::from_raw(std::uint64_t raw) {
  if (raw >> 63) return std::nullopt;
  ConversationId id(raw);
  if (id.is_group()) {
    if (!id.group_id().valid()) return std::nullopt;
    return id;
  }
  UserId lo = id.low_user();
  UserId hi = id.high_user();
  // A direct id is only well-formed as direct(lo, hi) with lo < hi.
  if (!lo.valid() || !hi.valid() || !(lo < hi)) return std::nullopt;
  return id;
}

bool ClientMsgId::is_zero() const {
  for (auto b : bytes) {
    if (b != 0) return false;
  }
  return true;
}

namespace {
constexpr char kHex[] = "0123456789abcdef";
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
bool is_dash_position(std::size_t i) { return i == 8 || i == 13 || i == 18 || i == 23; }
}  // namespace

std::string ClientMsgId::to_uuid() const {
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 0xf]);
  }
  return out;
}

std::optional<ClientMsgId> ClientMsgId::from_uuid(std::string_view text) {
  if (text.size() != 36) return std::nullopt;
  ClientMsgId id;
  std::size_t byte = 0;
  for (std::size_t i = 0; i < text.size();) {
    if (is_dash_position(i)) {
      if (text[i] != '-') return std::nullopt;
      ++i;
      continue;
    }
    int hi = hex_value(text[i]);
    int lo = hex_value(text[i + 1]);
    if (hi < 0 || lo < 0 || is_dash_position(i + 1)) return std::nullopt;
    id.bytes[byte++] = static_cast<std::uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return id;
}

std::string to_decimal(std::uint64_t v) { return std::to_string(v); }

std::optional<std::uint64_t> parse_decimal(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return v;
}

}  // namespace chatcore
