#include "internal/rate_limiter.hpp"

#include <doctest/doctest.h>

using chatcore::internal::RateLimiter;

TEST_CASE("a burst is allowed, then sends are paced at the rate") {
  RateLimiter limiter(/*rate=*/10.0, /*burst=*/3.0);
  std::int64_t t = 1'000'000;
  CHECK(limiter.try_take(1, t) == 0);
  CHECK(limiter.try_take(1, t) == 0);
  CHECK(limiter.try_take(1, t) == 0);
  std::uint32_t wait = limiter.try_take(1, t);
  CHECK(wait == 100);  // one token every 100 ms at 10/s
  CHECK(limiter.wait_ms(1, t) == 100);
  CHECK(limiter.try_take(1, t + 99) != 0);
  CHECK(limiter.try_take(1, t + 100) == 0);
  // Another user has a bucket of its own.
  CHECK(limiter.try_take(2, t) == 0);
  CHECK(limiter.wait_ms(3, t) == 0);
}

TEST_CASE("full buckets are forgotten by sweep") {
  RateLimiter limiter(10.0, 3.0);
  limiter.try_take(1, 0);
  limiter.try_take(2, 0);
  CHECK(limiter.tracked() == 2);
  limiter.sweep(50);  // not refilled yet
  CHECK(limiter.tracked() == 2);
  limiter.sweep(1000);
  CHECK(limiter.tracked() == 0);
}
