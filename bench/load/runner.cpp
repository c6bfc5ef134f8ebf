#include "runner.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace chatcore_bench {

namespace {

constexpr std::size_t kMaxErrorSamples = 20;

double ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }

// utime + stime of a process, in clock ticks (0 when unreadable).
std::uint64_t process_cpu_ticks(int pid) {
  if (pid <= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name may contain spaces: fields are counted after ") ".
  const auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string f;
  std::uint64_t utime = 0;
  std::uint64_t stime = 0;
  for (int i = 3; fields >> f; ++i) {
    if (i == 14) utime = std::stoull(f);
    if (i == 15) {
      stime = std::stoull(f);
      break;
    }
  }
  return utime + stime;
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

}  // namespace

std::pair<std::uint64_t, std::uint64_t> process_rss(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  std::uint64_t rss = 0;
  std::uint64_t anon = 0;
  while (std::getline(in, line)) {
    if (line.starts_with("VmRSS:")) rss = std::stoull(line.substr(6)) * 1024;
    if (line.starts_with("RssAnon:")) anon = std::stoull(line.substr(8)) * 1024;
  }
  return {rss, anon};
}

Runner::Runner(Adapter& adapter, RunOptions options)
    : adapter_(adapter),
      opt_(std::move(options)),
      pacer_(io_),
      heartbeat_timer_(io_),
      t0_(std::chrono::steady_clock::now()) {}

Runner::~Runner() { stop_all(); }

void Runner::stop_all() {
  pacer_.cancel();
  heartbeat_timer_.cancel();
  for (auto& c : conns_) {
    if (c.client) c.client->stop();
  }
  // Let the cancelled operations finish before the clients are destroyed.
  io_.restart();
  io_.run_for(std::chrono::milliseconds(200));
}

std::uint64_t Runner::now_ns() const {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0_)
          .count());
}

bool Runner::run_until(const std::function<bool()>& pred, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::microseconds(static_cast<std::int64_t>(seconds * 1e6));
  while (!pred()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    io_.restart();
    // Handlers run one at a time so that the predicate is seen promptly;
    // with nothing to do the loop sleeps in epoll_wait, at most 50 ms.
    io_.run_one_for(std::min<std::chrono::steady_clock::duration>(deadline - now,
                                                                  std::chrono::milliseconds(50)));
  }
  return true;
}

// ---- connections ----------------------------------------------------------------------

bool Runner::connect_all(std::size_t total, const std::function<std::size_t(std::size_t)>& user_of,
                         const std::function<std::size_t(std::size_t)>& device_of) {
  const std::size_t first = conns_.size();
  for (std::size_t i = first; i < total; ++i) {
    ClientSpec spec;
    spec.conn = i;
    spec.user = user_of(i);
    spec.device = device_of(i);
    // 127.0.0.2, .3, ...: every source address has its own ephemeral ports.
    const auto host = static_cast<unsigned>(2 + i % std::max<std::size_t>(1, opt_.source_ips));
    spec.source = asio::ip::address_v4((127u << 24) | (host & 0xffffffu));
    Conn c;
    c.user = spec.user;
    c.client = adapter_.make_client(io_, *this, spec);
    conns_.push_back(std::move(c));
  }
  next_start_ = first;
  auto start_more = [this, total] {
    while (next_start_ < total && pending_starts_ < opt_.connect_concurrency) {
      ++pending_starts_;
      conns_[next_start_++].client->start();
    }
  };
  start_more();
  const std::size_t closed_before = closed_count_;
  const bool ok = run_until(
      [&] {
        start_more();
        return ready_count_ + (closed_count_ - closed_before) >= total;
      },
      opt_.connect_timeout_seconds);
  return ok && closed_count_ == closed_before;
}

void Runner::on_ready(std::size_t conn) {
  Conn& c = conns_.at(conn);
  if (c.ready) return;
  c.ready = true;
  ++ready_count_;
  if (pending_starts_ > 0) --pending_starts_;
}

void Runner::on_joined(std::size_t conn) {
  Conn& c = conns_.at(conn);
  if (c.joined) return;
  c.joined = true;
  ++joined_count_;
}

void Runner::on_closed(std::size_t conn, const std::string& why) {
  Conn& c = conns_.at(conn);
  if (c.closed) return;
  c.closed = true;
  ++closed_count_;
  if (!c.ready && pending_starts_ > 0) --pending_starts_;
  if (c.ready) --ready_count_;
  c.ready = false;
  on_error(conn, "connection closed: " + why);
}

void Runner::on_error(std::size_t conn, const std::string& what) {
  ++errors_;
  if (error_samples_.size() < kMaxErrorSamples) {
    error_samples_.push_back(fmt::format("conn {}: {}", conn, what));
  }
}

void Runner::start_heartbeats() {
  heartbeat_timer_.expires_after(std::chrono::milliseconds(100));
  heartbeat_timer_.async_wait([this](const std::error_code& ec) {
    if (ec) return;
    heartbeat_tick();
    start_heartbeats();
  });
}

void Runner::heartbeat_tick() {
  // Every connection once per heartbeat period, spread over 100 ms ticks.
  if (conns_.empty()) return;
  const double ticks = std::max(1.0, opt_.heartbeat_seconds / 0.1);
  const auto per_tick =
      static_cast<std::size_t>(std::ceil(static_cast<double>(conns_.size()) / ticks));
  for (std::size_t k = 0; k < per_tick; ++k) {
    Conn& c = conns_[heartbeat_cursor_++ % conns_.size()];
    if (c.ready) c.client->heartbeat();
  }
}

// ---- messages -------------------------------------------------------------------------

void Runner::on_ack(std::size_t conn, std::uint32_t msg) {
  if (msg >= msgs_.size() || msgs_[msg].intended_ns == 0 || msgs_[msg].sender != conn) {
    return on_error(conn, fmt::format("ack for unknown message {}", msg));
  }
  Msg& m = msgs_[msg];
  Step& s = steps_[m.step];
  if (m.acked || m.failed) {
    ++s.duplicates;
    return on_error(conn, fmt::format("second ack for message {}", msg));
  }
  m.acked = true;
  --outstanding_acks_;
  ++s.acked;
  const std::uint64_t now = now_ns();
  s.ack.record(now > m.intended_ns ? now - m.intended_ns : 0);
}

void Runner::on_deliver(std::size_t conn, std::uint32_t msg) {
  if (msg >= msgs_.size() || msgs_[msg].intended_ns == 0) {
    return on_error(conn, fmt::format("delivery of unknown message {}", msg));
  }
  Msg& m = msgs_[msg];
  Step& s = steps_[m.step];
  const bool echo = !group_mode_ && conns_[conn].user == conns_[m.sender].user;
  if (echo) {
    // 1:1 copy to the sender's own device: counted, not timed.
    if (m.echoes >= 1 || !opt_.direct_echo) {
      ++s.duplicates;
      return on_error(conn, fmt::format("duplicate echo of message {}", msg));
    }
    ++m.echoes;
    ++s.echoes;
    if (!m.failed) --outstanding_deliveries_;
    return;
  }
  if (m.delivered >= m.expected) {
    ++s.duplicates;
    return on_error(conn, fmt::format("duplicate delivery of message {}", msg));
  }
  ++m.delivered;
  ++s.delivered;
  if (!m.failed) --outstanding_deliveries_;
  const std::uint64_t now = now_ns();
  s.deliver.record(now > m.intended_ns ? now - m.intended_ns : 0);
}

void Runner::on_send_error(std::size_t conn, std::uint32_t msg, const std::string& what) {
  on_error(conn, fmt::format("send of message {} failed: {}", msg, what));
  if (msg >= msgs_.size() || msgs_[msg].intended_ns == 0) return;
  Msg& m = msgs_[msg];
  if (m.acked || m.failed) return;
  m.failed = true;
  ++steps_[m.step].send_errors;
  --outstanding_acks_;
  const std::uint64_t echo_left = (opt_.direct_echo && !group_mode_) ? 1u - m.echoes : 0u;
  outstanding_deliveries_ -= (m.expected - m.delivered) + echo_left;
}

nlohmann::json Runner::run_steps(const std::string& scenario,
                                 const std::function<void(std::uint32_t)>& issue_next,
                                 std::size_t expected_per_message) {
  nlohmann::json steps = nlohmann::json::array();
  nlohmann::json best = nullptr;      // highest passing step before the first failure
  nlohmann::json best_any = nullptr;  // highest passing step at all
  double lossless_acks_per_s = 0;     // best throughput of a step without loss
  bool failed_once = false;
  int failures_in_a_row = 0;
  std::string stop_reason = "all rates run";
  // A short unreported warm-up at the first rate: the first messages after
  // connecting pay one-off costs (the store's first writes, cold caches)
  // that would otherwise fail the first step on a stall that says nothing
  // about the rate.
  std::vector<std::pair<double, bool>> plan;  // (rate, warm-up)
  if (opt_.warmup_seconds > 0 && !opt_.rates.empty()) plan.emplace_back(opt_.rates.front(), true);
  for (double r : opt_.rates) plan.emplace_back(r, false);
  for (const auto& [rate, warmup] : plan) {
    if (rate <= 0) continue;
    const double seconds = warmup ? opt_.warmup_seconds : opt_.step_seconds;
    Step& s = steps_.emplace_back();
    s.rate = rate;
    const auto count = static_cast<std::uint32_t>(std::llround(rate * seconds));
    s.first = static_cast<std::uint32_t>(msgs_.size());
    s.end = s.first + count;
    msgs_.resize(s.end);
    const std::uint16_t step_index = static_cast<std::uint16_t>(steps_.size() - 1);
    const std::uint64_t start = now_ns() + 20'000'000;  // 20 ms to arm the pacer
    const double interval = 1e9 / rate;
    std::uint32_t next = s.first;
    const std::uint64_t cpu_before = process_cpu_ticks(opt_.server_pid);
    std::function<void(const std::error_code&)> pace;
    pace = [&](const std::error_code& ec) {
      if (ec) return;
      const std::uint64_t now = now_ns();
      while (next < s.end) {
        const auto intended =
            start + static_cast<std::uint64_t>(static_cast<double>(next - s.first) * interval);
        if (intended > now) {
          pacer_.expires_at(t0_ + std::chrono::nanoseconds(intended));
          pacer_.async_wait(pace);
          return;
        }
        Msg& m = msgs_[next];
        m.intended_ns = intended;
        m.step = step_index;
        m.expected = static_cast<std::uint16_t>(expected_per_message);
        ++outstanding_acks_;
        outstanding_deliveries_ +=
            expected_per_message + ((opt_.direct_echo && !group_mode_) ? 1 : 0);
        s.send_lag.record(now - intended);
        issue_next(next);  // sets m.sender, then sends
        ++next;
      }
    };
    pacer_.expires_at(t0_ + std::chrono::nanoseconds(start));
    pacer_.async_wait(pace);
    run_until([&] { return next >= s.end; }, seconds * 3 + 10);
    pacer_.cancel();
    s.send_seconds = static_cast<double>(now_ns() - start) / 1e9;
    run_until([&] { return outstanding_acks_ == 0 && outstanding_deliveries_ == 0; },
              opt_.drain_seconds);
    if (warmup) {
      std::fprintf(stderr, "%-8s warm-up %.0f/s for %.1f s: acked %llu, errors %llu\n",
                   scenario.c_str(), rate, seconds, static_cast<unsigned long long>(s.acked),
                   static_cast<unsigned long long>(s.send_errors + s.duplicates));
      continue;
    }
    const std::uint64_t cpu_after = process_cpu_ticks(opt_.server_pid);
    std::vector<std::string> why;
    const bool passed = step_passed(s, expected_per_message, &why);
    nlohmann::json j = step_json(s, expected_per_message);
    j["passed"] = passed;
    j["why_failed"] = why;
    if (opt_.server_pid > 0) {
      j["server_cpu_seconds"] =
          static_cast<double>(cpu_after - cpu_before) / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
    std::fprintf(stderr,
                 "%-8s %9.0f/s sent %8u acked %8llu deliv %9llu err %4llu | ack p50 %7.2f p99 "
                 "%8.2f max %8.2f | deliv p50 %7.2f p99 %8.2f max %8.2f ms | lag p99 %6.2f | %s\n",
                 scenario.c_str(), rate, count, static_cast<unsigned long long>(s.acked),
                 static_cast<unsigned long long>(s.delivered),
                 static_cast<unsigned long long>(s.send_errors + s.duplicates),
                 ms(s.ack.percentile(0.5)), ms(s.ack.percentile(0.99)), ms(s.ack.max()),
                 ms(s.deliver.percentile(0.5)), ms(s.deliver.percentile(0.99)), ms(s.deliver.max()),
                 ms(s.send_lag.percentile(0.99)), passed ? "pass" : "FAIL");
    steps.push_back(j);
    if (j["errors"].get<std::uint64_t>() == 0 && j["unacked"].get<std::uint64_t>() == 0 &&
        j["all_acked_delivered"].get<bool>()) {
      lossless_acks_per_s = std::max(lossless_acks_per_s, j["acks_per_s"].get<double>());
    }
    if (passed) {
      if (!failed_once) best = j;
      best_any = j;
      failures_in_a_row = 0;
    } else {
      if (!failed_once) {
        stop_reason = fmt::format("first failure at {:.0f}/s: {}", rate, fmt::join(why, "; "));
      }
      failed_once = true;
      ++failures_in_a_row;
      // Let the backlog of a failed step clear before anything else runs.
      run_until([&] { return outstanding_acks_ == 0 && outstanding_deliveries_ == 0; },
                opt_.drain_seconds * 2);
      if (opt_.stop_after_failures > 0 && failures_in_a_row >= opt_.stop_after_failures) break;
    }
  }
  nlohmann::json out = common_json(scenario);
  out["steps"] = steps;
  out["stop_reason"] = stop_reason;
  nlohmann::json summary;
  summary["max_passing_rate"] = best_any.is_null() ? 0.0 : best_any["rate"].get<double>();
  summary["max_lossless_acks_per_s"] = lossless_acks_per_s;
  if (best.is_null()) {
    summary["max_sustained_rate"] = 0;
  } else {
    summary["max_sustained_rate"] = best["rate"];
    summary["deliveries_per_s_at_max"] = best["deliveries_per_s"];
    summary["ack_at_max"] = best["ack_latency"];
    summary["delivery_at_max"] = best["delivery_latency"];
  }
  bool clean = true;
  for (const auto& st : steps) {
    if (st["errors"].get<std::uint64_t>() > 0 || !st["all_acked_delivered"].get<bool>()) {
      clean = false;
    }
  }
  summary["clean"] = clean;
  out["summary"] = summary;
  if (opt_.side_load != nullptr) out["side_load"] = opt_.side_load->stop();
  return out;
}

bool Runner::step_passed(const Step& s, std::size_t expected_per_message,
                         std::vector<std::string>* why) const {
  const double limit_ns = opt_.p99_limit_ms * 1e6;
  const std::uint64_t sent = s.end - s.first;
  if (static_cast<double>(s.ack.percentile(0.99)) > limit_ns) why->push_back("ack p99 over limit");
  if (static_cast<double>(s.deliver.percentile(0.99)) > limit_ns) {
    why->push_back("delivery p99 over limit");
  }
  if (s.send_errors + s.duplicates > 0) why->push_back("errors");
  if (s.acked + s.send_errors < sent) why->push_back("unacked messages");
  if (s.delivered < s.acked * expected_per_message) why->push_back("acked but undelivered");
  return why->empty();
}

nlohmann::json Runner::step_json(const Step& s, std::size_t expected_per_message) const {
  const std::uint64_t sent = s.end - s.first;
  // Acked messages that did not reach every recipient (exact, per message).
  std::uint64_t undelivered = 0;
  for (std::uint32_t i = s.first; i < s.end; ++i) {
    const Msg& m = msgs_[i];
    if (m.acked && m.delivered < m.expected) undelivered += m.expected - m.delivered;
  }
  const double secs = s.send_seconds > 0 ? s.send_seconds : 1;
  return {{"rate", s.rate},
          {"sent", sent},
          {"send_seconds", s.send_seconds},
          {"acked", s.acked},
          {"unacked", sent - s.acked - s.send_errors},
          {"delivered", s.delivered},
          {"expected_deliveries", s.acked * expected_per_message},
          {"undelivered_acked", undelivered},
          {"echoes", s.echoes},
          {"errors", s.send_errors + s.duplicates},
          {"duplicates", s.duplicates},
          {"all_acked_delivered", undelivered == 0},
          {"acks_per_s", static_cast<double>(s.acked) / secs},
          {"deliveries_per_s", static_cast<double>(s.delivered) / secs},
          {"ack_latency", s.ack.to_json()},
          {"delivery_latency", s.deliver.to_json()},
          {"send_lag", s.send_lag.to_json()}};
}

nlohmann::json Runner::common_json(const std::string& scenario) const {
  std::uint64_t gen_writes = 0;
  for (const auto& c : conns_) gen_writes += c.client->write_calls();
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return {
      {"tool", "chatcore-bench"},
      {"scenario", scenario},
      {"server", adapter_.name()},
      {"connections", conns_.size()},
      {"errors_total", errors_},
      {"error_samples", error_samples_},
      {"generator_write_calls", gen_writes},
      {"machine",
       {{"host", host}, {"cpus", sysconf(_SC_NPROCESSORS_ONLN)}, {"loadavg_end", load_average()}}}};
}

void Runner::announce_ready() {
  if (!opt_.ready_file.empty()) std::ofstream(opt_.ready_file) << ::getpid() << "\n";
  if (opt_.start_delay_seconds > 0) run_until([] { return false; }, opt_.start_delay_seconds);
  if (opt_.side_load != nullptr) opt_.side_load->start();
}

// ---- scenarios ------------------------------------------------------------------------

nlohmann::json Runner::run_one2one() {
  const std::size_t n = opt_.users & ~std::size_t{1};
  if (n < 2) throw std::runtime_error("one2one needs at least 2 users");
  const std::string load_start = load_average();
  adapter_.setup_users(n);
  if (!connect_all(
          n, [](std::size_t i) { return i; }, [](std::size_t) { return 0; })) {
    throw std::runtime_error(fmt::format("one2one: only {} of {} connections came up ({})",
                                         ready_count_, n,
                                         error_samples_.empty() ? "timeout" : error_samples_[0]));
  }
  start_heartbeats();
  announce_ready();
  // Message k goes from user k mod n to its partner (u0<->u1, u2<->u3, ...).
  auto issue = [this, n](std::uint32_t k) {
    const std::size_t from = k % n;
    msgs_[k].sender = static_cast<std::uint32_t>(from);
    conns_[from].client->send_direct(from ^ 1, k);
  };
  nlohmann::json out = run_steps("one2one", issue, 1);
  out["users"] = n;
  out["machine"]["loadavg_start"] = load_start;
  return out;
}

nlohmann::json Runner::run_group() {
  group_mode_ = true;
  const std::size_t g = opt_.groups;
  const std::size_t size = opt_.group_size;
  const std::size_t n = g * size;
  const std::string load_start = load_average();
  adapter_.setup_users(n);
  std::vector<std::vector<std::size_t>> groups(g);
  for (std::size_t i = 0; i < n; ++i) groups[i / size].push_back(i);
  adapter_.setup_groups(groups);
  if (!connect_all(
          n, [](std::size_t i) { return i; }, [](std::size_t) { return 0; })) {
    throw std::runtime_error(fmt::format("group: only {} of {} connections came up ({})",
                                         ready_count_, n,
                                         error_samples_.empty() ? "timeout" : error_samples_[0]));
  }
  for (std::size_t i = 0; i < n; ++i) conns_[i].group = i / size;
  start_heartbeats();
  // Owners first (an XMPP room is created by its first occupant), then
  // everyone else.
  for (std::size_t k = 0; k < g; ++k) conns_[k * size].client->join(k);
  if (!run_until([&] { return joined_count_ >= g; }, 30)) {
    throw std::runtime_error("group: rooms not created in 30 s");
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (i % size != 0) conns_[i].client->join(i / size);
  }
  if (!run_until([&] { return joined_count_ >= n; }, 60)) {
    throw std::runtime_error(fmt::format("group: {} of {} joined", joined_count_, n));
  }
  announce_ready();
  // Message k is sent by member (k mod n), to its group: senders rotate
  // through every member of every group.
  auto issue = [this, n](std::uint32_t k) {
    const std::size_t from = k % n;
    msgs_[k].sender = static_cast<std::uint32_t>(from);
    conns_[from].client->send_group(conns_[from].group, k);
  };
  nlohmann::json out = run_steps("group", issue, size);
  out["groups"] = g;
  out["group_size"] = size;
  out["machine"]["loadavg_start"] = load_start;
  return out;
}

nlohmann::json Runner::run_idle() {
  if (opt_.server_pid <= 0) throw std::runtime_error("idle needs --server-pid for RSS");
  const std::string load_start = load_average();
  const std::size_t users = std::max<std::size_t>(1, opt_.idle_users);
  adapter_.setup_users(users);
  start_heartbeats();
  run_until([] { return false; }, 1.0);
  auto [rss0, anon0] = process_rss(opt_.server_pid);
  nlohmann::json points = nlohmann::json::array();
  std::vector<double> xs, ys, ya;
  bool ok = true;
  for (std::size_t target : opt_.idle_counts) {
    const auto t = std::chrono::steady_clock::now();
    const bool up = connect_all(
        target, [users](std::size_t i) { return i % users; },
        [users](std::size_t i) { return i / users; });
    const double connect_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    // Idle for a while, heartbeating, so that the server's per-connection
    // state is in its steady form (and a heartbeat has gone round).
    run_until([] { return false; }, opt_.idle_settle_seconds);
    auto [rss, anon] = process_rss(opt_.server_pid);
    const std::size_t alive = ready_count_;
    std::fprintf(stderr,
                 "idle     %6zu connections (%zu alive, %.1f s to connect): RSS %.1f MiB, "
                 "anon %.1f MiB\n",
                 target, alive, connect_s, static_cast<double>(rss) / 1048576.0,
                 static_cast<double>(anon) / 1048576.0);
    points.push_back({{"connections", target},
                      {"alive", alive},
                      {"connect_seconds", connect_s},
                      {"rss_bytes", rss},
                      {"rss_anon_bytes", anon}});
    xs.push_back(static_cast<double>(alive));
    ys.push_back(static_cast<double>(rss));
    ya.push_back(static_cast<double>(anon));
    if (!up || alive != target) {
      ok = false;
      break;
    }
  }
  // Least-squares slope: bytes of server memory per added connection.
  auto slope = [&](const std::vector<double>& y) {
    const double n = static_cast<double>(xs.size());
    if (xs.size() < 2) return 0.0;
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      sx += xs[i];
      sy += y[i];
      sxx += xs[i] * xs[i];
      sxy += xs[i] * y[i];
    }
    const double den = n * sxx - sx * sx;
    return den == 0 ? 0.0 : (n * sxy - sx * sy) / den;
  };
  nlohmann::json out = common_json("idle");
  out["idle_users"] = users;
  out["points"] = points;
  out["baseline_rss_bytes"] = rss0;
  out["baseline_rss_anon_bytes"] = anon0;
  out["rss_bytes_per_connection"] = slope(ys);
  out["rss_anon_bytes_per_connection"] = slope(ya);
  out["machine"]["loadavg_start"] = load_start;
  out["summary"] = {{"all_connected", ok},
                    {"max_connections", xs.empty() ? 0.0 : xs.back()},
                    {"rss_bytes_per_connection", slope(ys)},
                    {"rss_anon_bytes_per_connection", slope(ya)},
                    {"clean", ok && errors_ == 0}};
  std::fprintf(stderr, "idle     slope: %.0f B/connection RSS, %.0f B/connection anonymous\n",
               slope(ys), slope(ya));
  return out;
}

}  // namespace chatcore_bench
