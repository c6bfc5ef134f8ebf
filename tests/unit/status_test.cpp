#include "chatcore/status.hpp"

#include <doctest/doctest.h>

#include <stdexcept>

using namespace chatcore;

TEST_CASE("every error code has a stable name that maps back") {
  for (std::uint16_t c = 0; c <= 14; ++c) {
    auto code = static_cast<ErrorCode>(c);
    std::string name = error_code_name(code);
    CHECK(name != "unknown");
    CHECK(error_code_from_name(name).value() == code);
  }
  // The names are wire contract: spot-check a few exact spellings.
  CHECK(std::string(error_code_name(ErrorCode::kPermissionDenied)) == "permission_denied");
  CHECK(std::string(error_code_name(ErrorCode::kTooLarge)) == "too_large");
  CHECK(std::string(error_code_name(ErrorCode::kRateLimited)) == "rate_limited");
  CHECK_FALSE(error_code_from_name("nope"));
}

TEST_CASE("Status carries code and message") {
  Status ok;
  CHECK(ok.is_ok());
  CHECK(ok.to_string() == "ok");
  Status st = Status::not_found("no such user");
  CHECK_FALSE(st.is_ok());
  CHECK(st.code() == ErrorCode::kNotFound);
  CHECK(st.to_string() == "not_found: no such user");
}

TEST_CASE("Result holds a value or an error, never both") {
  Result<int> good(5);
  CHECK(good.is_ok());
  CHECK(*good == 5);
  CHECK(good.status().is_ok());
  Result<int> bad(Status::permission_denied("no"));
  CHECK_FALSE(bad.is_ok());
  CHECK(bad.status().code() == ErrorCode::kPermissionDenied);
  CHECK_THROWS_AS(bad.value(), std::logic_error);
  // An OK status is not a value: it becomes an internal error, loudly.
  Result<int> confused(Status::ok());
  CHECK(confused.status().code() == ErrorCode::kInternal);
}
