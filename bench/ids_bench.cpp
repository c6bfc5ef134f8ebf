// Snowflake id generation: one thread, and two threads sharing one
// generator (the lock-free compare-and-swap under contention).
//
// Note when reading the figures: one generator issues at most 4096 ids per
// millisecond before it borrows the next millisecond (snowflake.hpp). A
// loop faster than 4.1 M ids/s therefore runs the embedded time ahead of
// the clock for the length of the run; the figure is the cost of next(),
// not a sustainable id rate.
#include <benchmark/benchmark.h>

#include "chatcore/clock.hpp"
#include "chatcore/snowflake.hpp"

namespace chatcore::bench {
namespace {

void BM_SnowflakeNext(benchmark::State& state) {
  // Shared by every thread of a multi-threaded run; a fresh generator per
  // thread count would hide nothing, since ids only need to grow.
  static SnowflakeGenerator generator(7, SystemClock::instance());
  for (auto _ : state) {
    benchmark::DoNotOptimize(generator.next());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SnowflakeNext)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace chatcore::bench
