// Snowflake message ids.
//
// Layout of the 64-bit id (bit 63 is always 0):
//
//   | 0 | 41 bits: ms since kSnowflakeEpochMs | 10 bits: worker | 12 bits: sequence |
//
// 41 bits of milliseconds last ~69.7 years from the epoch (2025-01-01 UTC),
// 10 bits name up to 1024 generators (one per daemon), and 12 bits allow
// 4096 ids per millisecond per generator.
//
// Guarantees of one SnowflakeGenerator:
//  * every id is strictly greater than the previous one, even when the
//    wall clock steps backwards (the generator keeps using its last
//    timestamp until the clock catches up) and when more than 4096 ids are
//    taken within one millisecond (it borrows the next millisecond rather
//    than sleeping, so the embedded time may run slightly ahead under
//    bursts; it never runs behind the true time of issue);
//  * the time of issue is recoverable: snowflake_time_ms(id).
//
// Thread-safety: next() may be called from any number of threads at once
// (it is lock-free: one 64-bit compare-and-swap on the last id).
#pragma once

#include <atomic>
#include <cstdint>

#include "chatcore/clock.hpp"
#include "chatcore/ids.hpp"

namespace chatcore {

// 2025-01-01T00:00:00Z in Unix milliseconds.
inline constexpr std::int64_t kSnowflakeEpochMs = 1'735'689'600'000;
inline constexpr unsigned kSnowflakeWorkerBits = 10;
inline constexpr unsigned kSnowflakeSequenceBits = 12;
inline constexpr std::uint32_t kMaxWorkerId = (1u << kSnowflakeWorkerBits) - 1;

class SnowflakeGenerator {
 public:
  // worker_id must be <= kMaxWorkerId (values above are masked, which the
  // caller's configuration check should have refused). `clock` must outlive
  // the generator.
  SnowflakeGenerator(std::uint32_t worker_id, const Clock& clock);

  SnowflakeGenerator(const SnowflakeGenerator&) = delete;
  SnowflakeGenerator& operator=(const SnowflakeGenerator&) = delete;

  MessageId next();

  std::uint32_t worker_id() const { return worker_; }

 private:
  const Clock& clock_;
  const std::uint32_t worker_;
  std::atomic<std::uint64_t> last_{0};
};

// Unix milliseconds at which `id` was issued.
std::int64_t snowflake_time_ms(MessageId id);
std::uint32_t snowflake_worker(MessageId id);
std::uint32_t snowflake_sequence(MessageId id);

}  // namespace chatcore
