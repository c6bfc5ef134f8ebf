// Clock: the engine's only source of time, injectable like leveldb's Env.
//
// Everything time-dependent in the core (Snowflake ids, presence timeouts,
// last seen, rate limits, token expiry) reads a Clock, so tests drive time
// with ManualClock instead of sleeping.
//
// Time is wall-clock milliseconds since the Unix epoch. Wall clocks can step
// backwards (NTP); consumers that need monotonicity (SnowflakeGenerator)
// defend against it themselves.
//
// Thread-safety: implementations must be safe to call from any thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace chatcore {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since 1970-01-01T00:00:00Z.
  virtual std::int64_t now_ms() const = 0;
};

// The real wall clock (std::chrono::system_clock).
class SystemClock final : public Clock {
 public:
  std::int64_t now_ms() const override;
  // A process-wide instance; never destroyed.
  static SystemClock& instance();
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::int64_t start_ms = 1'750'000'000'000) : now_(start_ms) {}
  std::int64_t now_ms() const override { return now_.load(std::memory_order_acquire); }
  void set(std::int64_t ms) { now_.store(ms, std::memory_order_release); }
  void advance(std::int64_t ms) { now_.fetch_add(ms, std::memory_order_acq_rel); }

 private:
  std::atomic<std::int64_t> now_;
};

}  // namespace chatcore
