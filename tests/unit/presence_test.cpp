#include "chatcore/presence.hpp"

#include <doctest/doctest.h>

using namespace chatcore;

namespace {
PresenceOptions opts() {
  PresenceOptions o;
  o.heartbeat_interval_ms = 5'000;
  o.timeout_ms = 30'000;
  return o;
}
}  // namespace

TEST_CASE("online from the first session; offline at once on the last clean close") {
  ManualClock clock(1'000'000);
  PresenceTracker p(opts(), clock);
  CHECK(p.session_started(UserId(1), 10));
  CHECK_FALSE(p.session_started(UserId(1), 11));  // a second device: no change
  CHECK(p.is_online(UserId(1)));
  CHECK_FALSE(p.session_ended(10, /*clean=*/true));
  CHECK(p.is_online(UserId(1)));
  clock.advance(1234);
  CHECK(p.session_ended(11, true));
  CHECK_FALSE(p.is_online(UserId(1)));
  CHECK(p.online_users() == 0);
}

TEST_CASE("heartbeats keep a session alive; silence beyond the timeout expires it") {
  ManualClock clock(1'000'000);
  PresenceTracker p(opts(), clock);
  p.session_started(UserId(1), 10);
  for (int i = 0; i < 10; ++i) {
    clock.advance(5'000);
    p.heartbeat(10);
    auto e = p.expire();
    CHECK(e.timed_out_sessions.empty());
    CHECK(e.went_offline.empty());
  }
  std::int64_t last = clock.now_ms();
  clock.advance(29'999);
  CHECK(p.expire().went_offline.empty());
  clock.advance(1);
  auto e = p.expire();
  REQUIRE(e.timed_out_sessions.size() == 1);
  CHECK(e.timed_out_sessions[0] == 10);
  REQUIRE(e.went_offline.size() == 1);
  CHECK(e.went_offline[0].user == UserId(1));
  CHECK(e.went_offline[0].last_seen_ms == last);  // the last sign of life, not the expiry
  CHECK_FALSE(p.is_online(UserId(1)));
}

TEST_CASE("a dropped connection stays online until its deadline: no flapping on reconnect") {
  ManualClock clock(1'000'000);
  PresenceTracker p(opts(), clock);
  p.session_started(UserId(1), 10);
  clock.advance(3'000);
  CHECK_FALSE(p.session_ended(10, /*clean=*/false));
  CHECK(p.is_online(UserId(1)));
  clock.advance(10'000);
  CHECK_FALSE(p.session_started(UserId(1), 11));  // reconnected: never went offline
  clock.advance(20'000);                          // the dropped session's deadline passes
  auto e = p.expire();
  CHECK(e.timed_out_sessions.empty());  // it was not connected: nothing to close
  CHECK(e.went_offline.empty());        // session 11 still alive
  CHECK(p.is_online(UserId(1)));
}

TEST_CASE("a dropped last connection goes offline after the timeout, not before") {
  ManualClock clock(1'000'000);
  PresenceTracker p(opts(), clock);
  p.session_started(UserId(2), 20);
  p.session_ended(20, false);
  clock.advance(29'000);
  CHECK(p.expire().went_offline.empty());
  clock.advance(1'000);
  auto e = p.expire();
  REQUIRE(e.went_offline.size() == 1);
  CHECK(e.went_offline[0].last_seen_ms == 1'000'000);
}
