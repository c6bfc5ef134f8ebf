#include "internal/commit_delay.hpp"

#include <doctest/doctest.h>

using chatcore::internal::CommitDelay;
using namespace std::chrono_literals;

namespace {
// Records `per_commit` sends every `every`, for `for_how_long` from `t`.
CommitDelay::Clock::time_point feed(CommitDelay& d, CommitDelay::Clock::time_point t,
                                    std::size_t per_commit, std::chrono::microseconds every,
                                    std::chrono::milliseconds for_how_long) {
  auto end = t + for_how_long;
  for (; t < end; t += every) d.record(per_commit, t);
  return t;
}
}  // namespace

TEST_CASE("CommitDelay: a lone send, before any rate is known, does not wait") {
  CommitDelay d(200us);
  CommitDelay::Clock::time_point t0{std::chrono::seconds(100)};
  CHECK_FALSE(d.waiting());
  CHECK(d.start_at(t0, t0) == t0);
}

TEST_CASE("CommitDelay: at a high send rate a commit starts delay after its oldest send") {
  CommitDelay d(200us);
  CommitDelay::Clock::time_point t{std::chrono::seconds(100)};
  // 3 sends every 100 us = 30,000/s: 6 more within 200 us.
  t = feed(d, t, 3, 100us, 25ms);
  REQUIRE(d.waiting());
  CHECK(d.start_at(t - 50us, t) == t + 150us);
  // An oldest send already older than the delay: start at once (its time has passed).
  CHECK(d.start_at(t - 300us, t) < t);
}

TEST_CASE("CommitDelay: below the rate that gathers two more sends, no wait") {
  CommitDelay d(200us);
  CommitDelay::Clock::time_point t{std::chrono::seconds(100)};
  // 1 send every 200 us = 5,000/s: one more within 200 us, not two.
  t = feed(d, t, 1, 200us, 25ms);
  CHECK_FALSE(d.waiting());
  CHECK(d.start_at(t, t) == t);
  // 1 send every 100 us = 10,000/s: exactly two more.
  t = feed(d, t, 1, 100us, 25ms);
  CHECK(d.waiting());
}

TEST_CASE("CommitDelay: the rate follows the load down, and a quiet spell makes it stale") {
  CommitDelay d(200us);
  CommitDelay::Clock::time_point t{std::chrono::seconds(100)};
  t = feed(d, t, 4, 100us, 25ms);
  REQUIRE(d.waiting());
  // After 20 ms without a commit, the first send does not wait for the old rate.
  t += 20ms;
  CHECK(d.start_at(t, t) == t);
  // A slow trickle turns the wait off once its window is counted.
  t = feed(d, t, 1, 1000us, 25ms);
  CHECK_FALSE(d.waiting());
}

TEST_CASE("CommitDelay: a zero delay never waits") {
  CommitDelay d(0us);
  CommitDelay::Clock::time_point t{std::chrono::seconds(100)};
  t = feed(d, t, 50, 10us, 25ms);
  CHECK_FALSE(d.waiting());
  CHECK(d.start_at(t, t) == t);
}
