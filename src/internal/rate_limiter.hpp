// RateLimiter: per-key token buckets (the per-user send rate limit).
//
// Each key owns a bucket of `burst` tokens refilled continuously at `rate`
// tokens per second. A send takes one token; with none left it is refused
// and told how long until one is available (Error.retry_after_ms).
//
// Idle buckets are full buckets, so they are dropped by sweep() to keep
// memory proportional to recently active users, not to all users.
//
// Thread-safety: none (owner thread of the Engine).
#pragma once

#include <cstdint>
#include <unordered_map>

namespace chatcore::internal {

class RateLimiter {
 public:
  RateLimiter(double rate_per_second, double burst) : rate_(rate_per_second), burst_(burst) {}

  // 0 if a token was taken; otherwise the milliseconds until one is available
  // (nothing taken).
  std::uint32_t try_take(std::uint64_t key, std::int64_t now_ms);
  // Like try_take's refusal value, without taking: 0 if a token is there.
  std::uint32_t wait_ms(std::uint64_t key, std::int64_t now_ms);
  // Forgets buckets that are full again at `now_ms`.
  void sweep(std::int64_t now_ms);
  std::size_t tracked() const { return buckets_.size(); }

 private:
  struct Bucket {
    double tokens;
    std::int64_t updated_ms;
  };
  double refill(Bucket& b, std::int64_t now_ms) const;
  std::uint32_t wait_for(const Bucket& b) const;

  double rate_;
  double burst_;
  std::unordered_map<std::uint64_t, Bucket> buckets_;
};

}  // namespace chatcore::internal
