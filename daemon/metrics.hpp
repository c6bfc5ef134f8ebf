// Metrics: chatcored's counters and the Prometheus text exposition of them.
//
// /metrics serves, in the Prometheus text format 0.0.4:
//   chatcore_*   the engine's EngineStats (sessions, messages, deliveries,
//                commit batches, errors, rate limiting, presence);
//   chatcored_*  the transport's own counters (connections, frames and
//                bytes in and out, HTTP requests by status class) and
//                gauges (open connections, queued outbound bytes), the
//                store's journal and checkpoints, plus
//                chatcored_build_info and process start time.
// docs/operations.md lists every series. Names are stable: dashboards and
// alerts depend on them.
//
// Thread-safety: owner thread only (the lws service thread updates and
// renders them), so plain integers suffice.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "chatcore/engine.hpp"
#include "chatcore/lmdb_store.hpp"

namespace chatcored {

// Point-in-time values the transport reports when /metrics is rendered.
struct TransportGauges {
  std::uint64_t ws_connections = 0;         // open WebSocket connections
  std::uint64_t http_in_flight = 0;         // HTTP requests awaiting their response
  std::uint64_t outbound_queued_bytes = 0;  // sum over WebSocket sessions
  bool draining = false;
};

class Metrics {
 public:
  Metrics();

  // ---- transport events ------------------------------------------------------
  void ws_opened() { ++ws_opened_; }
  void ws_closed() { ++ws_closed_; }
  void ws_frame_in(std::size_t bytes) {
    ++ws_frames_in_;
    ws_bytes_in_ += bytes;
  }
  void ws_frame_out(std::size_t bytes) {
    ++ws_frames_out_;
    ws_bytes_out_ += bytes;
  }
  // One socket write of (coalesced) WebSocket messages.
  void ws_write() { ++ws_writes_; }
  void ws_frame_too_large() { ++ws_frames_too_large_; }
  void ws_upgrade_refused() { ++ws_upgrades_refused_; }
  // One HTTP response written by the transport (API, health, metrics,
  // transport-level errors); `status` is the HTTP status code.
  void http_response(int status);

  // Where render() reads the store's journal figures (chatcored_journal_*).
  // Called on the owner thread when /metrics is rendered; journal_stats()
  // is safe from any thread.
  void set_journal_source(std::function<chatcore::LmdbStore::JournalStats()> source) {
    journal_source_ = std::move(source);
  }

  // The whole exposition, ending in a newline.
  std::string render(const chatcore::EngineStats& engine, const TransportGauges& gauges) const;

 private:
  std::uint64_t ws_opened_ = 0;
  std::uint64_t ws_closed_ = 0;
  std::uint64_t ws_frames_in_ = 0;
  std::uint64_t ws_bytes_in_ = 0;
  std::uint64_t ws_frames_out_ = 0;
  std::uint64_t ws_bytes_out_ = 0;
  std::uint64_t ws_writes_ = 0;
  std::uint64_t ws_frames_too_large_ = 0;
  std::uint64_t ws_upgrades_refused_ = 0;
  std::uint64_t http_by_class_[6] = {};  // index 1..5: 1xx..5xx
  double start_time_seconds_ = 0;
  std::function<chatcore::LmdbStore::JournalStats()> journal_source_;
};

}  // namespace chatcored
