#include "metrics.hpp"

#include <libwebsockets.h>

#include <chrono>

#include <fmt/format.h>

namespace chatcored {

namespace {

// A small writer for the text format: HELP and TYPE once per family, then
// its samples. Label values here are fixed ASCII, so no escaping is needed.
class Exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void sample(std::string_view name, std::uint64_t value, std::string_view labels = {}) {
    if (labels.empty()) {
      out_ += fmt::format("{} {}\n", name, value);
    } else {
      out_ += fmt::format("{}{{{}}} {}\n", name, labels, value);
    }
  }
  void sample_double(std::string_view name, double value) {
    out_ += fmt::format("{} {:.3f}\n", name, value);
  }
  void single_double(std::string_view name, std::string_view type, std::string_view help,
                     double value) {
    family(name, type, help);
    sample_double(name, value);
  }
  // A family with a single unlabelled sample.
  void single(std::string_view name, std::string_view type, std::string_view help,
              std::uint64_t value) {
    family(name, type, help);
    sample(name, value);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

Metrics::Metrics() {
  start_time_seconds_ =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void Metrics::http_response(int status) {
  int cls = status / 100;
  if (cls >= 1 && cls <= 5) ++http_by_class_[cls];
}

std::string Metrics::render(const chatcore::EngineStats& e, const TransportGauges& g) const {
  Exposition x;
  // ---- engine ------------------------------------------------------------------
  x.single("chatcore_sessions_open", "gauge", "Sessions connected to the engine.", e.sessions_open);
  x.single("chatcore_sessions_authenticated", "gauge", "Sessions past Hello.",
           e.sessions_authenticated);
  x.single("chatcore_users_online", "gauge", "Users with at least one live session.",
           e.users_online);
  x.single("chatcore_messages_committed_total", "counter", "New messages durably stored.",
           e.messages_committed);
  x.single("chatcore_messages_duplicate_total", "counter",
           "Idempotent resends answered with the original message.", e.messages_duplicate);
  x.single("chatcore_deliveries_total", "counter", "Deliver frames sent to devices.", e.deliveries);
  x.single("chatcore_commit_batches_total", "counter",
           "Store commits (group commit: one fsync per batch).", e.commit_batches);
  x.single("chatcore_commits_delayed_total", "counter",
           "Store commits that first waited for more sends (commit_delay_us).", e.commits_delayed);
  x.single("chatcore_pending_commits", "gauge", "Sends accepted and waiting for their commit.",
           e.pending_commits);
  x.single("chatcore_errors_sent_total", "counter", "Error frames sent.", e.errors_sent);
  x.single("chatcore_rate_limited_total", "counter", "Sends refused by the per-user rate limit.",
           e.rate_limited);
  x.single("chatcore_slow_consumer_closes_total", "counter",
           "Sessions closed because their outbound queue passed the hard limit.",
           e.slow_consumer_closes);

  // ---- transport -----------------------------------------------------------------
  x.single("chatcored_ws_connections", "gauge", "Open WebSocket connections.", g.ws_connections);
  x.single("chatcored_ws_connections_opened_total", "counter", "WebSocket connections accepted.",
           ws_opened_);
  x.single("chatcored_ws_connections_closed_total", "counter", "WebSocket connections ended.",
           ws_closed_);
  x.single("chatcored_ws_upgrades_refused_total", "counter",
           "WebSocket upgrades refused (wrong path or draining).", ws_upgrades_refused_);
  x.single("chatcored_ws_frames_received_total", "counter", "Complete WebSocket messages received.",
           ws_frames_in_);
  x.single("chatcored_ws_received_bytes_total", "counter",
           "Payload bytes of complete WebSocket messages received.", ws_bytes_in_);
  x.single("chatcored_ws_frames_sent_total", "counter", "WebSocket messages queued for sending.",
           ws_frames_out_);
  x.single("chatcored_ws_sent_bytes_total", "counter",
           "Payload bytes of WebSocket messages queued for sending.", ws_bytes_out_);
  x.single("chatcored_ws_writes_total", "counter",
           "Socket writes of WebSocket messages (several messages queued together share one).",
           ws_writes_);
  x.single("chatcored_ws_frames_too_large_total", "counter",
           "Inbound messages over limits.max_frame_bytes (connection closed 4003).",
           ws_frames_too_large_);
  x.single("chatcored_ws_outbound_queued_bytes", "gauge",
           "Bytes queued for WebSocket peers and not yet written.", g.outbound_queued_bytes);
  x.family("chatcored_http_requests_total", "counter",
           "HTTP responses written by chatcored (API, health, metrics), by status class.");
  static constexpr std::string_view kClasses[] = {"", "1xx", "2xx", "3xx", "4xx", "5xx"};
  for (int cls = 1; cls <= 5; ++cls) {
    x.sample("chatcored_http_requests_total", http_by_class_[cls],
             fmt::format("code=\"{}\"", kClasses[cls]));
  }
  x.single("chatcored_http_requests_in_flight", "gauge",
           "HTTP requests received and not yet answered.", g.http_in_flight);
  x.single("chatcored_draining", "gauge", "1 while shutting down gracefully.", g.draining ? 1 : 0);

  // ---- store: the journal and its checkpoints ------------------------------------
  if (journal_source_) {
    const auto j = journal_source_();
    x.single("chatcored_journal_unapplied_bytes", "gauge",
             "Journaled commits waiting for a checkpoint into LMDB (record bytes and index).",
             j.unapplied_bytes);
    x.single("chatcored_journal_unapplied_batches", "gauge",
             "Journaled commit batches waiting for a checkpoint into LMDB.", j.unapplied_batches);
    x.single("chatcored_journal_checkpoints_total", "counter",
             "Checkpoints: journaled batches applied to LMDB in one transaction.", j.checkpoints);
    x.single("chatcored_journal_checkpoint_failures_total", "counter",
             "Checkpoints that failed (retried; nothing is lost).", j.checkpoint_failures);
    x.single("chatcored_journal_checkpoint_yields_total", "counter",
             "Checkpoint transactions committed early to let a waiting direct write in.",
             j.checkpoint_yields);
    x.single_double("chatcored_journal_checkpoint_seconds_total", "counter",
                    "Time spent in checkpoints.", j.checkpoint_seconds);
  }

  x.family("chatcored_build_info", "gauge", "Build information; the value is always 1.");
  x.sample("chatcored_build_info", 1,
           fmt::format("version=\"{}\",libwebsockets=\"{}\"", CHATCORED_VERSION,
                       lws_get_library_version()));
  x.family("process_start_time_seconds", "gauge", "Start time of the process since the epoch.");
  x.sample_double("process_start_time_seconds", start_time_seconds_);
  return x.take();
}

}  // namespace chatcored
