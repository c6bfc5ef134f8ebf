#include "signals.hpp"

#include <pthread.h>

#include <csignal>

namespace chatcored {

namespace {
sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}
}  // namespace

SignalWatcher::SignalWatcher(std::function<void(int)> on_signal)
    : on_signal_(std::move(on_signal)) {
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  thread_ = std::thread([this] {
#ifdef __linux__
    pthread_setname_np(pthread_self(), "cc-signals");
#endif
    sigset_t wait_set = stop_signals();
    for (;;) {
      int sig = 0;
      if (sigwait(&wait_set, &sig) != 0) continue;
      // The destructor wakes us with a SIGTERM aimed at this thread only.
      if (stopping_.load(std::memory_order_acquire)) return;
      on_signal_(sig);
    }
  });
}

SignalWatcher::~SignalWatcher() {
  stopping_.store(true, std::memory_order_release);
  pthread_kill(thread_.native_handle(), SIGTERM);
  thread_.join();
}

}  // namespace chatcored
