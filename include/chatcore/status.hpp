// Status and Result<T>: how every chatcore call reports success or failure.
//
// Recoverable errors are values, never exceptions (exceptions are reserved
// for programmer errors and never cross the C ABI). A Status is a stable
// ErrorCode plus a human-readable message. The code is the contract: clients
// branch on it, the message is for people and may change between releases.
//
// The same ErrorCode values travel on the wire (the `Error` frame's `code`
// field and the HTTP API's `error.code` string), so a code once published is
// never renumbered or renamed. docs/protocol.md lists them all.
//
// Thread-safety: Status and Result are plain values; distinct objects may be
// used from distinct threads freely.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace chatcore {

// Stable error codes. Numbers are wire-visible: append only.
//
// Retry guidance (abseil-style): kUnavailable and kRateLimited mean "the same
// call may succeed later"; every other code means "do not retry unchanged".
enum class ErrorCode : std::uint16_t {
  kOk = 0,
  kInvalidArgument = 1,      // malformed request field (bad id, bad UUID, empty name...)
  kUnauthenticated = 2,      // no or bad credentials/token
  kPermissionDenied = 3,     // authenticated, but not allowed (non-member, not owner)
  kNotFound = 4,             // unknown user, group, conversation
  kAlreadyExists = 5,        // name taken, member already present
  kTooLarge = 6,             // body over the character limit, frame/HTTP body too big
  kInvalidUtf8 = 7,          // text is not valid UTF-8
  kRateLimited = 8,          // per-user send rate exceeded; retry after retry_after_ms
  kGroupFull = 9,            // the group already has its maximum number of members
  kFailedPrecondition = 10,  // state forbids the call (e.g. removing the owner)
  kUnavailable = 11,         // shutting down, storage temporarily unavailable: retry
  kInternal = 12,            // a bug or an unexpected storage failure
  kMalformedFrame = 13,      // a frame failed the FlatBuffers verifier
  kProtocolViolation = 14,   // a well-formed frame in the wrong place (e.g. before Hello)
};

// The stable snake_case name of a code ("permission_denied"). Never null.
const char* error_code_name(ErrorCode code) noexcept;

// The code for a name produced by error_code_name, or nullopt.
std::optional<ErrorCode> error_code_from_name(std::string_view name) noexcept;

class Status {
 public:
  // An OK status.
  Status() noexcept = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  static Status invalid_argument(std::string m) {
    return {ErrorCode::kInvalidArgument, std::move(m)};
  }
  static Status unauthenticated(std::string m) {
    return {ErrorCode::kUnauthenticated, std::move(m)};
  }
  static Status permission_denied(std::string m) {
    return {ErrorCode::kPermissionDenied, std::move(m)};
  }
  static Status not_found(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
  static Status already_exists(std::string m) { return {ErrorCode::kAlreadyExists, std::move(m)}; }
  static Status too_large(std::string m) { return {ErrorCode::kTooLarge, std::move(m)}; }
  static Status invalid_utf8(std::string m) { return {ErrorCode::kInvalidUtf8, std::move(m)}; }
  static Status rate_limited(std::string m) { return {ErrorCode::kRateLimited, std::move(m)}; }
  static Status group_full(std::string m) { return {ErrorCode::kGroupFull, std::move(m)}; }
  static Status failed_precondition(std::string m) {
    return {ErrorCode::kFailedPrecondition, std::move(m)};
  }
  static Status unavailable(std::string m) { return {ErrorCode::kUnavailable, std::move(m)}; }
  static Status internal(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }

  bool is_ok() const noexcept { return code_ == ErrorCode::kOk; }
  explicit operator bool() const noexcept { return is_ok(); }
  ErrorCode code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

  // "permission_denied: you are not a member of this conversation", or "ok".
  std::string to_string() const;

  friend bool operator==(const Status& a, const Status& b) noexcept { return a.code_ == b.code_; }

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

// Either a T or a non-OK Status. C++20 has no std::expected; this is the
// small subset we need. Accessing value() of an error Result is a programmer
// error (it throws std::logic_error).
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    if (std::get<Status>(v_).is_ok()) v_ = Status::internal("Result built from an OK status");
  }

  bool is_ok() const noexcept { return std::holds_alternative<T>(v_); }
  explicit operator bool() const noexcept { return is_ok(); }

  const T& value() const& {
    check();
    return std::get<T>(v_);
  }
  T& value() & {
    check();
    return std::get<T>(v_);
  }
  T&& value() && {
    check();
    return std::get<T>(std::move(v_));
  }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  // The error; an OK Status when this holds a value.
  Status status() const { return is_ok() ? Status() : std::get<Status>(v_); }

 private:
  void check() const;
  std::variant<T, Status> v_;
};

namespace detail {
[[noreturn]] void throw_bad_result_access(const Status& s);
}  // namespace detail

template <typename T>
void Result<T>::check() const {
  if (!is_ok()) detail::throw_bad_result_access(std::get<Status>(v_));
}

}  // namespace chatcore
