// Runner: the scenarios, their open-loop schedule and their accounting.
//
// OPEN LOOP. A step at offered rate R sends message k at t0 + k/R, whatever
// the server does; latencies are measured from that *intended* time, so a
// stalled server (or a stalled generator) shows up as latency instead of
// silently slowing the schedule down (no coordinated omission). How late
// the generator itself was is recorded too (send_lag), so a saturated
// generator is visible rather than mistaken for a slow server.
//
// ACCOUNTING. Every message has a row (intended time, step, sender,
// acked, deliveries). Latencies go into the histogram of the message's own
// step even when they arrive during the next phase. After the sending
// phase each step drains (bounded) until everything sent is acked and
// delivered, then the step is judged: pass = ack p99 and delivery p99
// within the limit, no errors, nothing unacked, every acked message
// delivered to every recipient exactly once.
//
// Single-threaded: one io_context, run by the caller's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <asio.hpp>
#include <nlohmann/json.hpp>

#include "client.hpp"
#include "histogram.hpp"

namespace chatcore_bench {

// Load that runs beside the measured steps, on its own thread (e.g.
// HttpWriter): started once every connection is up, stopped when the last
// step has drained; its report goes into the result as "side_load".
class SideLoad {
 public:
  virtual ~SideLoad() = default;
  virtual void start() = 0;
  virtual nlohmann::json stop() = 0;
};

struct RunOptions {
  // one2one
  std::size_t users = 200;  // online users, in pairs (u0<->u1, u2<->u3, ...)
  // group
  std::size_t groups = 2;
  std::size_t group_size = 100;
  // stepped rate (messages/s offered), both scenarios
  std::vector<double> rates;
  double step_seconds = 5;
  double warmup_seconds = 2;  // unreported, at the first rate (0: none)
  double drain_seconds = 5;
  double p99_limit_ms = 50;
  // Stop stepping after this many failed steps in a row (0: run every
  // rate). 1 is the strict "until p99 > limit or loss"; more keeps a single
  // step spoiled by a noisy neighbour from ending the curve.
  int stop_after_failures = 1;
  // idle
  std::vector<std::size_t> idle_counts = {1000, 5000, 10000, 19000};
  std::size_t idle_users = 100;
  double idle_settle_seconds = 8;
  int server_pid = 0;  // for RSS (idle) and CPU time; 0 = not sampled
  // connections
  std::size_t source_ips = 32;  // 127.0.0.2 .. 127.0.0.(1+n)
  std::size_t connect_concurrency = 200;
  double connect_timeout_seconds = 120;
  double heartbeat_seconds = 5;
  // Touched once every connection is up (before the first step), then the
  // run waits start_delay_seconds: lets a script attach strace/perf to the
  // server for the measured part only.
  std::string ready_file;
  double start_delay_seconds = 0;
  // chatcore sends every 1:1 message to the sender's own devices too
  bool direct_echo = true;
  SideLoad* side_load = nullptr;  // not owned; null: none
};

class Runner final : public Events {
 public:
  Runner(Adapter& adapter, RunOptions options);
  ~Runner() override;

  nlohmann::json run_one2one();
  nlohmann::json run_group();
  nlohmann::json run_idle();

  // Events
  void on_ready(std::size_t conn) override;
  void on_joined(std::size_t conn) override;
  void on_ack(std::size_t conn, std::uint32_t msg) override;
  void on_deliver(std::size_t conn, std::uint32_t msg) override;
  void on_send_error(std::size_t conn, std::uint32_t msg, const std::string& what) override;
  void on_error(std::size_t conn, const std::string& what) override;
  void on_closed(std::size_t conn, const std::string& why) override;

 private:
  struct Conn {
    std::unique_ptr<BenchClient> client;
    std::size_t user = 0;
    std::size_t group = SIZE_MAX;  // group scenario: the group it sends to
    bool ready = false;
    bool joined = false;
    bool closed = false;
  };
  struct Msg {
    std::uint64_t intended_ns = 0;
    std::uint32_t sender = 0;  // connection index
    std::uint16_t step = 0;
    std::uint16_t expected = 0;  // deliveries expected (recipients' connections)
    std::uint16_t delivered = 0;
    std::uint8_t echoes = 0;
    bool acked = false;
    bool failed = false;
  };
  struct Step {
    double rate = 0;
    std::uint32_t first = 0;  // message index range [first, end)
    std::uint32_t end = 0;
    double send_seconds = 0;
    Histogram ack;
    Histogram deliver;
    Histogram send_lag;
    std::uint64_t acked = 0;
    std::uint64_t delivered = 0;
    std::uint64_t echoes = 0;
    std::uint64_t send_errors = 0;
    std::uint64_t duplicates = 0;
  };

  std::uint64_t now_ns() const;
  // Runs the loop until pred() holds or `seconds` pass; returns pred().
  bool run_until(const std::function<bool()>& pred, double seconds);
  // Adds connections up to `total` (user of connection i from user_of(i)) and
  // waits until all are ready; false on timeout or failures.
  bool connect_all(std::size_t total, const std::function<std::size_t(std::size_t)>& user_of,
                   const std::function<std::size_t(std::size_t)>& device_of);
  void start_heartbeats();
  void heartbeat_tick();
  // One stepped-rate run; `send` issues message k from its sender.
  nlohmann::json run_steps(const std::string& scenario,
                           const std::function<void(std::uint32_t)>& issue_next,
                           std::size_t expected_per_message);
  nlohmann::json step_json(const Step& s, std::size_t expected_per_message) const;
  bool step_passed(const Step& s, std::size_t expected_per_message,
                   std::vector<std::string>* why) const;
  nlohmann::json common_json(const std::string& scenario) const;
  void announce_ready();
  void stop_all();

  Adapter& adapter_;
  RunOptions opt_;
  asio::io_context io_;
  asio::steady_timer pacer_;
  asio::steady_timer heartbeat_timer_;
  std::chrono::steady_clock::time_point t0_;
  std::vector<Conn> conns_;
  std::vector<Msg> msgs_;
  std::vector<Step> steps_;
  std::size_t ready_count_ = 0;
  std::size_t joined_count_ = 0;
  std::size_t closed_count_ = 0;
  std::size_t pending_starts_ = 0;
  std::size_t next_start_ = 0;
  std::size_t heartbeat_cursor_ = 0;
  std::uint64_t errors_ = 0;
  std::vector<std::string> error_samples_;
  std::uint64_t outstanding_acks_ = 0;        // sent, neither acked nor failed
  std::uint64_t outstanding_deliveries_ = 0;  // expected, not yet delivered
  bool group_mode_ = false;
};

// Resident memory of a process from /proc/<pid>/status, in bytes
// ({VmRSS, RssAnon}); zeros if unreadable.
std::pair<std::uint64_t, std::uint64_t> process_rss(int pid);

}  // namespace chatcore_bench
