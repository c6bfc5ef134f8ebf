#include "histogram.hpp"

#include <bit>
#include <cmath>

namespace chatcore_bench {

int Histogram::bucket_of(std::uint64_t v) noexcept {
  if (v < static_cast<std::uint64_t>(kLinear)) return static_cast<int>(v);
  const int msb = 63 - std::countl_zero(v);                         // >= kSubBits + 1
  const int shift = msb - kSubBits;                                 // keeps the top kSubBits+1 bits
  const auto sub = static_cast<int>(v >> shift) - (1 << kSubBits);  // 0..127
  return kLinear + (msb - (kSubBits + 1)) * (1 << kSubBits) + sub;
}

std::uint64_t Histogram::bucket_low(int bucket) noexcept {
  if (bucket < kLinear) return static_cast<std::uint64_t>(bucket);
  const int rel = bucket - kLinear;
  const int msb = rel / (1 << kSubBits) + kSubBits + 1;
  const int sub = rel % (1 << kSubBits);
  return (static_cast<std::uint64_t>((1 << kSubBits) + sub)) << (msb - kSubBits);
}

std::uint64_t Histogram::bucket_high(int bucket) noexcept {
  if (bucket < kLinear) return static_cast<std::uint64_t>(bucket);
  const int rel = bucket - kLinear;
  const int msb = rel / (1 << kSubBits) + kSubBits + 1;
  return bucket_low(bucket) + ((std::uint64_t{1} << (msb - kSubBits)) - 1);
}

void Histogram::record(std::uint64_t value_ns) noexcept {
  ++counts_[static_cast<std::size_t>(bucket_of(value_ns))];
  ++count_;
  if (value_ns < min_) min_ = value_ns;
  if (value_ns > max_) max_ = value_ns;
  sum_ += static_cast<long double>(value_ns);
}

void Histogram::merge(const Histogram& other) noexcept {
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  if (other.count_ > 0 && other.min_ < min_) min_ = other.min_;
  if (other.max_ > max_) max_ = other.max_;
  sum_ += other.sum_;
}

void Histogram::reset() noexcept { *this = Histogram{}; }

double Histogram::mean() const noexcept {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_ / static_cast<long double>(count_));
}

std::uint64_t Histogram::percentile(double q) const noexcept {
  if (count_ == 0) return 0;
  if (q <= 0) return min();
  auto target = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  if (target == 0) target = 1;
  if (target >= count_) return max_;
  std::uint64_t seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    seen += counts_[static_cast<std::size_t>(b)];
    if (seen >= target) {
      const std::uint64_t high = bucket_high(b);
      return high < max_ ? high : max_;
    }
  }
  return max_;
}

nlohmann::json Histogram::to_json() const {
  auto us = [](std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  return nlohmann::json{{"count", count_},
                        {"min_us", us(min())},
                        {"mean_us", mean() / 1000.0},
                        {"p50_us", us(percentile(0.50))},
                        {"p90_us", us(percentile(0.90))},
                        {"p99_us", us(percentile(0.99))},
                        {"p999_us", us(percentile(0.999))},
                        {"max_us", us(max_)}};
}

}  // namespace chatcore_bench
