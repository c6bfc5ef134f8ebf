// Presence: who is online, from heartbeats, and when they were last seen.
//
// The rules (DESIGN.md §2, promise 7):
//  * A user is online while at least one of their sessions is alive. A
//    session is alive from its Hello until it closes cleanly, or until
//    `timeout_ms` passes without a Heartbeat (or any other frame).
//  * A clean close of the user's last session makes them offline at once.
//  * A dropped connection (no clean close) keeps the session counted until
//    its heartbeat deadline, so a flaky network does not flap presence.
//  * On going offline, "last seen" is the time of the last sign of life and
//    is persisted by the engine (Store::set_last_seen).
//  * The engine pushes changes only to the user's watchers that are online;
//    group members' presence is fetched on demand.
//
// PresenceTracker is the bookkeeping half; the engine does the fan-out.
// Thread-safety: owner thread only (like the Engine).
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "chatcore/clock.hpp"
#include "chatcore/ids.hpp"

namespace chatcore {

struct PresenceOptions {
  // Advertised to clients in Welcome: send a Heartbeat at least this often.
  std::int64_t heartbeat_interval_ms = 5'000;
  // Silent this long = offline (and the session is closed, code 4009).
  std::int64_t timeout_ms = 30'000;
};

struct PresenceInfo {
  UserId user;
  bool online = false;
  std::int64_t last_seen_ms = 0;  // 0: never seen
};

class PresenceTracker {
 public:
  using SessionKey = std::uint64_t;

  PresenceTracker(PresenceOptions options, const Clock& clock);

  // A session of `user` became alive. Returns true if the user was offline
  // and is now online.
  bool session_started(UserId user, SessionKey session);
  // Any sign of life from the session (a Heartbeat or any other frame).
  void heartbeat(SessionKey session);
  // The session's connection ended. Clean: removed at once; returns true if
  // that made the user offline. Not clean: kept until its deadline (see
  // expire()); returns false.
  bool session_ended(SessionKey session, bool clean);

  struct Expiry {
    // Sessions still connected whose deadline passed: the engine closes them.
    std::vector<SessionKey> timed_out_sessions;
    // Users whose last session expired: now offline, last seen = `last_seen_ms`.
    std::vector<PresenceInfo> went_offline;
  };
  // Expires every session whose last sign of life is older than timeout_ms.
  // Timed-out connected sessions are removed too (the caller closes them).
  Expiry expire();

  bool is_online(UserId user) const;
  // Newest sign of life of any session of `user`; 0 if none tracked.
  std::int64_t last_activity_ms(UserId user) const;
  std::size_t online_users() const { return users_.size(); }
  const PresenceOptions& options() const { return options_; }

 private:
  struct Entry {
    UserId user;
    std::int64_t last_alive_ms = 0;
    bool connected = true;
  };
  struct UserState {
    std::uint32_t sessions = 0;
    std::int64_t last_alive_ms = 0;
  };
  bool remove(SessionKey session, std::int64_t last_alive_ms);

  PresenceOptions options_;
  const Clock& clock_;
  std::unordered_map<SessionKey, Entry> sessions_;
  std::unordered_map<UserId, UserState> users_;
};

}  // namespace chatcore
