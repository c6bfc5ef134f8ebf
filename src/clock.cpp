#include "chatcore/clock.hpp"

#include <chrono>

namespace chatcore {

std::int64_t SystemClock::now_ms() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

SystemClock& SystemClock::instance() {
  static SystemClock* clock = new SystemClock();  // never destroyed: usable during exit
  return *clock;
}

}  // namespace chatcore
