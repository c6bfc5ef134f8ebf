// The histogram is the one piece of arithmetic every reported figure goes
// through: bucket bounds, percentiles and merging are checked exactly.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "histogram.hpp"

using chatcore_bench::Histogram;

TEST_CASE("buckets tile the range and keep the relative error under 1/128") {
  const std::uint64_t values[] = {
      0, 1, 255, 256, 257, 1000, 123456789, (std::uint64_t{1} << 40) + 12345, UINT64_MAX};
  for (std::uint64_t v : values) {
    const int b = Histogram::bucket_of(v);
    CHECK(Histogram::bucket_low(b) <= v);
    CHECK(v <= Histogram::bucket_high(b));
    const double width = static_cast<double>(Histogram::bucket_high(b) - Histogram::bucket_low(b));
    CHECK(width <= static_cast<double>(v) / 128.0 + 1.0);
  }
  for (int b = 1; b < Histogram::kBuckets; ++b) {
    REQUIRE(Histogram::bucket_low(b) == Histogram::bucket_high(b - 1) + 1);
  }
  CHECK(Histogram::bucket_of(UINT64_MAX) == Histogram::kBuckets - 1);
}

TEST_CASE("percentiles agree with the sorted samples within the bucket error") {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(11.0, 1.5);  // ~60 us median, long tail
  std::vector<std::uint64_t> samples;
  Histogram h;
  for (int i = 0; i < 100000; ++i) {
    const auto v = static_cast<std::uint64_t>(dist(rng));
    samples.push_back(v);
    h.record(v);
  }
  std::sort(samples.begin(), samples.end());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const auto exact = samples[static_cast<std::size_t>(q * samples.size()) - 1];
    const auto got = h.percentile(q);
    CHECK(static_cast<double>(got) >= static_cast<double>(exact));
    CHECK(static_cast<double>(got) <= static_cast<double>(exact) * (1.0 + 1.0 / 64));
  }
  CHECK(h.percentile(1.0) == samples.back());
  CHECK(h.max() == samples.back());
  CHECK(h.min() == samples.front());
  CHECK(h.count() == samples.size());
}

TEST_CASE("merge adds counts; an empty histogram reports zeros") {
  Histogram a, b, empty;
  a.record(100);
  b.record(1'000'000);
  a.merge(b);
  CHECK(a.count() == 2);
  CHECK(a.max() == 1'000'000);
  CHECK(a.min() == 100);
  CHECK(a.percentile(0.5) == 100);
  CHECK(empty.percentile(0.99) == 0);
  CHECK(empty.to_json()["count"] == 0);
}
