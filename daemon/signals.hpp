// SignalWatcher: turns SIGTERM/SIGINT into a plain function call on a
// dedicated thread, so no work at all happens inside a signal handler.
//
// How: the constructor blocks SIGTERM and SIGINT for the calling thread, and
// every thread created after it inherits that mask (construct it first in
// main(), before the engine's storage thread exists). A watcher thread waits
// for them with sigwait() and calls `on_signal` with the signal number.
// Since the signal is never "delivered", async-signal-safety does not
// arise: `on_signal` may log, take locks and call lws_cancel_service().
//
// SIGPIPE is ignored process-wide (a peer that vanished mid-write is an
// ordinary error return, not a reason to die).
//
// Thread-safety: construct and destroy on the main thread; `on_signal` runs
// on the watcher thread.
#pragma once

#include <pthread.h>
#include <atomic>
#include <functional>
#include <thread>

namespace chatcored {

class SignalWatcher {
 public:
  explicit SignalWatcher(std::function<void(int signal)> on_signal);
  // Stops and joins the watcher thread; `on_signal` is not called after.
  ~SignalWatcher();

  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  std::function<void(int)> on_signal_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace chatcored
