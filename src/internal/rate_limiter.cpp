#include "internal/rate_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace chatcore::internal {

double RateLimiter::refill(Bucket& b, std::int64_t now_ms) const {
  if (now_ms > b.updated_ms) {
    b.tokens =
        std::min(burst_, b.tokens + rate_ * static_cast<double>(now_ms - b.updated_ms) / 1000.0);
    b.updated_ms = now_ms;
  }
  return b.tokens;
}

std::uint32_t RateLimiter::wait_for(const Bucket& b) const {
  if (b.tokens >= 1.0) return 0;
  if (rate_ <= 0) return UINT32_MAX;
  double wait = std::ceil((1.0 - b.tokens) * 1000.0 / rate_);
  return static_cast<std::uint32_t>(std::max(1.0, wait));
}

std::uint32_t RateLimiter::try_take(std::uint64_t key, std::int64_t now_ms) {
  auto [it, inserted] = buckets_.try_emplace(key, Bucket{burst_, now_ms});
  Bucket& b = it->second;
  refill(b, now_ms);
  if (std::uint32_t wait = wait_for(b); wait != 0) return wait;
  b.tokens -= 1.0;
  return 0;
}

std::uint32_t RateLimiter::wait_ms(std::uint64_t key, std::int64_t now_ms) {
  auto it = buckets_.find(key);
  if (it == buckets_.end()) return 0;
  refill(it->second, now_ms);
  return wait_for(it->second);
}

void RateLimiter::sweep(std::int64_t now_ms) {
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    it = refill(it->second, now_ms) >= burst_ ? buckets_.erase(it) : std::next(it);
  }
}

}  // namespace chatcore::internal
