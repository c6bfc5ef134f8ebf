#include "chatcore/status.hpp"

#include <stdexcept>

namespace chatcore {

namespace {
struct CodeName {
  ErrorCode code;
  const char* name;
};
// The wire-visible names. Append only; never rename (clients match on them).
constexpr CodeName kNames[] = {
    {ErrorCode::kOk, "ok"},
    {ErrorCode::kInvalidArgument, "invalid_argument"},
    {ErrorCode::kUnauthenticated, "unauthenticated"},
    {ErrorCode::kPermissionDenied, "permission_denied"},
    {ErrorCode::kNotFound, "not_found"},
    {ErrorCode::kAlreadyExists, "already_exists"},
    {ErrorCode::kTooLarge, "too_large"},
    {ErrorCode::kInvalidUtf8, "invalid_utf8"},
    {ErrorCode::kRateLimited, "rate_limited"},
    {ErrorCode::kGroupFull, "group_full"},
    {ErrorCode::kFailedPrecondition, "failed_precondition"},
    {ErrorCode::kUnavailable, "unavailable"},
    {ErrorCode::kInternal, "internal"},
    {ErrorCode::kMalformedFrame, "malformed_frame"},
    {ErrorCode::kProtocolViolation, "protocol_violation"},
};
}  // namespace

const char* error_code_name(ErrorCode code) noexcept {
  for (const auto& n : kNames) {
    if (n.code == code) return n.name;
  }
  return "unknown";
}

std::optional<ErrorCode> error_code_from_name(std::string_view name) noexcept {
  for (const auto& n : kNames) {
    if (name == n.name) return n.code;
  }
  return std::nullopt;
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  std::string s = error_code_name(code_);
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

namespace detail {
void throw_bad_result_access(const Status& s) {
  throw std::logic_error("chatcore::Result::value() on an error: " + s.to_string());
}
}  // namespace detail

}  // namespace chatcore
