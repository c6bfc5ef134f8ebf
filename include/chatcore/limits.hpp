// Limits: every bound the engine enforces, with its default. All are
// configurable (the daemon reads them from its config file); each one, when
// hit, produces a documented ErrorCode or close code (docs/protocol.md).
#pragma once

#include <cstddef>
#include <cstdint>

namespace chatcore {

struct Limits {
  // A message body: at most this many Unicode code points of valid UTF-8.
  // Over it: ErrorCode::kTooLarge. 100,000 code points is up to 400,000 bytes.
  std::uint32_t max_body_chars = 100'000;
  // Members of one group, owner included. Over it: ErrorCode::kGroupFull.
  std::uint32_t max_group_members = 100;
  // A single inbound protocol frame, in bytes (after WebSocket reassembly).
  // Must exceed 4 * max_body_chars plus framing. Over it: close 4003.
  std::size_t max_frame_bytes = 512 * 1024;
  // Per-session outbound bytes the transport may hold before the engine stops
  // feeding inbox catch-up (soft) ...
  std::size_t outbound_soft_bytes = 1 * 1024 * 1024;
  // ... and after which the session is closed as a slow consumer (hard,
  // close 4008). The client resyncs from its cursor on reconnect.
  std::size_t outbound_hard_bytes = 8 * 1024 * 1024;
  // Per-user send rate: a token bucket of `send_burst` tokens refilled at
  // `sends_per_second`. Over it: ErrorCode::kRateLimited with retry_after_ms.
  double sends_per_second = 50.0;
  double send_burst = 100.0;
  // Largest page a Sync or History request may ask for (larger is clamped).
  std::uint32_t max_page = 200;
  // Sends accepted and waiting for their commit, engine-wide. Over it new
  // sends get ErrorCode::kUnavailable (storage cannot keep up; retry).
  std::size_t max_pending_sends = 100'000;
  // Inbox entries read from the store per catch-up step.
  std::uint32_t catchup_page = 256;
};

}  // namespace chatcore
