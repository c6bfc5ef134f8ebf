// Snowflake generation without locks.
//
// The generator's whole state is the last id it issued. A new id is the
// larger of (a) the id made from the current time with sequence 0 and (b)
// last + 1. Case (b) covers both a burst within one millisecond and a wall
// clock that stepped back: either way the id keeps increasing, and once the
// sequence overflows its 12 bits the increment carries into the timestamp
// bits, i.e. the generator borrows the next millisecond. A compare-and-swap
// loop makes this safe from any number of threads.
#include "chatcore/snowflake.hpp"

namespace chatcore {

namespace {
constexpr unsigned kTimeShift = kSnowflakeWorkerBits + kSnowflakeSequenceBits;
constexpr std::uint64_t kSequenceMask = (1u << kSnowflakeSequenceBits) - 1;
constexpr std::uint64_t kTimeMask = (std::uint64_t{1} << 41) - 1;

// The worker bits sit between the time and the sequence; a carry out of the
// sequence would run into them, so the "+1" path skips over them.
std::uint64_t successor(std::uint64_t id, std::uint32_t worker) {
  if ((id & kSequenceMask) != kSequenceMask) return id + 1;
  std::uint64_t ms = (id >> kTimeShift) + 1;
  return (ms << kTimeShift) | (std::uint64_t{worker} << kSnowflakeSequenceBits);
}
}  // namespace

SnowflakeGenerator::SnowflakeGenerator(std::uint32_t worker_id, const Clock& clock)
    : clock_(clock), worker_(worker_id & kMaxWorkerId) {}

MessageId SnowflakeGenerator::next() {
  std::uint64_t last = last_.load(std::memory_order_relaxed);
  for (;;) {
    std::int64_t since_epoch = clock_.now_ms() - kSnowflakeEpochMs;
    if (since_epoch < 0) since_epoch = 0;  // a clock before 2025: clamp, stay monotonic
    std::uint64_t ms = static_cast<std::uint64_t>(since_epoch) & kTimeMask;
    std::uint64_t from_clock =
        (ms << kTimeShift) | (std::uint64_t{worker_} << kSnowflakeSequenceBits);
    std::uint64_t from_last = last == 0 ? 0 : successor(last, worker_);
    std::uint64_t id = from_clock > from_last ? from_clock : from_last;
    if (last_.compare_exchange_weak(last, id, std::memory_order_acq_rel,
                                    std::memory_order_relaxed)) {
      return MessageId(id);
    }
  }
}

std::int64_t snowflake_time_ms(MessageId id) {
  return static_cast<std::int64_t>(id.value >> kTimeShift) + kSnowflakeEpochMs;
}

std::uint32_t snowflake_worker(MessageId id) {
  return static_cast<std::uint32_t>((id.value >> kSnowflakeSequenceBits) & kMaxWorkerId);
}

std::uint32_t snowflake_sequence(MessageId id) {
  return static_cast<std::uint32_t>(id.value & kSequenceMask);
}

}  // namespace chatcore
