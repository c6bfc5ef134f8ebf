// CommitDelay: how long the storage thread lets sends gather before it
// starts a commit (EngineOptions::commit_delay).
//
// Every commit costs about the same CPU and one fsync however many sends it
// carries. On a busy core, commits that each carry two or three sends spend
// a third of the core on fsyncs and wakeups, and that CPU is taken from the
// network thread: at 25,000 msg/s on one core, waiting up to 200 us cut the
// storage thread from 31 % to 11 % of the core and lowered the p99, for
// about 0.25 ms more at the median (docs/benchmarks.md).
//
// A wait only pays when sends arrive fast enough to fill it, so it applies
// only while the recent send rate would bring at least kMinGathered more
// sends within the delay; at lower rates commits start at once and a lone
// send pays nothing. The rate is counted over windows of kWindow.
//
// The wait is measured from the moment the oldest waiting send was
// accepted, so no send waits longer than `delay` for the wait itself; a
// commit pipeline that is already behind (its oldest send older than
// `delay`) starts at once.
//
// Thread-safety: none (the storage thread's own state).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace chatcore::internal {

class CommitDelay {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kWindow{10};
  static constexpr std::uint64_t kMinGathered = 2;

  explicit CommitDelay(std::chrono::microseconds delay) : delay_(delay) {}

  // When a commit whose oldest send was accepted at `oldest` may start, as
  // decided at `now`: `oldest + delay` while the rate is high, else `oldest`
  // (at once). A rate measured before a pause of two windows or more is
  // stale: the first send after a quiet spell does not wait.
  Clock::time_point start_at(Clock::time_point oldest, Clock::time_point now) const {
    if (!waiting_pays_ || now - window_start_ >= 2 * kWindow) return oldest;
    return oldest + delay_;
  }

  // Counts `sends` taken into a commit at `now`; when a window has passed,
  // decides from its rate whether the next commits wait.
  void record(std::size_t sends, Clock::time_point now) {
    if (delay_.count() <= 0) return;
    window_sends_ += sends;
    auto elapsed = now - window_start_;
    if (elapsed < kWindow) return;
    // sends/elapsed * delay >= kMinGathered, without a division.
    waiting_pays_ = delay_ * static_cast<std::int64_t>(window_sends_) >=
                    elapsed * static_cast<std::int64_t>(kMinGathered);
    window_start_ = now;
    window_sends_ = 0;
  }

  bool waiting() const { return waiting_pays_; }

 private:
  std::chrono::microseconds delay_;
  Clock::time_point window_start_{};
  std::uint64_t window_sends_ = 0;
  bool waiting_pays_ = false;
};

}  // namespace chatcore::internal
