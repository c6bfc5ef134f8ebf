// The per-frame checks on the send path, at the largest legal size:
// UTF-8 validation of a 100,000-character body (internal::utf8_count, the
// engine's check) in three scripts, and the FlatBuffers verifier gate
// (verify_frame) on a Send frame carrying the largest body, ~400 KB.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "bench_support.hpp"
#include "chatcore/protocol.hpp"
#include "internal/utf8.hpp"

namespace chatcore::bench {
namespace {

constexpr std::size_t kChars = 100'000;

// `kChars` repetitions of one encoded code point.
std::string body_of(std::string_view code_point) {
  std::string s;
  s.reserve(kChars * code_point.size());
  for (std::size_t i = 0; i < kChars; ++i) s.append(code_point);
  return s;
}

void BM_Utf8Count100kChars(benchmark::State& state, std::string_view code_point) {
  const std::string body = body_of(code_point);
  for (auto _ : state) {
    auto n = internal::utf8_count(body);
    if (!n || *n != kChars) {
      state.SkipWithError("utf8_count disagrees with the body");
      break;
    }
    benchmark::DoNotOptimize(n);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
  state.counters["body_bytes"] = static_cast<double>(body.size());
}
BENCHMARK_CAPTURE(BM_Utf8Count100kChars, ascii, "a")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Utf8Count100kChars, cjk_3byte, "\xe6\xbc\xa2")  // U+6F22
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Utf8Count100kChars, emoji_4byte, "\xf0\x9f\x98\x80")  // U+1F600
    ->Unit(benchmark::kMicrosecond);

void BM_VerifyFrameSend400KB(benchmark::State& state) {
  const std::vector<std::uint8_t> frame = encode_send(
      1, ConversationId::group(GroupId(1)), UserId(), client_id(1), body_of("\xf0\x9f\x98\x80"));
  for (auto _ : state) {
    const wire::Frame* f = verify_frame(frame);
    if (f == nullptr) {
      state.SkipWithError("verify_frame refused a well-formed frame");
      break;
    }
    benchmark::DoNotOptimize(f);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(frame.size()));
  state.counters["frame_bytes"] = static_cast<double>(frame.size());
}
BENCHMARK(BM_VerifyFrameSend400KB)->Unit(benchmark::kNanosecond);

}  // namespace
}  // namespace chatcore::bench
