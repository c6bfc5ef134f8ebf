// HttpWriter: while the steps run, one account edits its profile
// (PATCH /api/v1/users/me) at a fixed rate on its own thread, open loop:
// request k is due at start + k / rate, and its latency is measured from
// that due time, so a stalled server shows as latency.
//
// Why: besides messages, a chat server takes logins, profile and group
// changes and read marks, and in chatcored these are writes to LMDB, whose
// single writer a running checkpoint holds. They must not stall message
// traffic; with this side load the run shows whether they do
// (docs/benchmarks.md, "Latency at 50 %").
//
// Not thread-safe: prepare(), start() and stop() from one thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "histogram.hpp"
#include "runner.hpp"

namespace chatcore_bench {

class HttpWriter final : public SideLoad {
 public:
  // base_url: "http://127.0.0.1:8080"; the account is "bw<nonce>".
  HttpWriter(std::string base_url, std::string password, std::uint32_t nonce, double per_second);
  ~HttpWriter() override;
  HttpWriter(const HttpWriter&) = delete;
  HttpWriter& operator=(const HttpWriter&) = delete;

  // Signs the account up and logs it in (each an Argon2 hash on the server:
  // done before the run, not during it). Throws std::runtime_error.
  void prepare();

  void start() override;
  // Stops the thread; {"rate", "writes", "errors", "error_sample",
  // "latency": histogram JSON (microseconds)}.
  nlohmann::json stop() override;

 private:
  void loop();

  std::string base_url_;
  std::string password_;
  std::string name_;
  double per_second_;
  std::string token_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  // Written by the thread, read after join().
  Histogram latency_;
  std::uint64_t writes_ = 0;
  std::uint64_t errors_ = 0;
  std::string error_sample_;
};

}  // namespace chatcore_bench
