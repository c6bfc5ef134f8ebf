#include "chatcore/presence.hpp"

#include <algorithm>

namespace chatcore {

PresenceTracker::PresenceTracker(PresenceOptions options, const Clock& clock)
    : options_(options), clock_(clock) {}

bool PresenceTracker::session_started(UserId user, SessionKey session) {
  std::int64_t now = clock_.now_ms();
  sessions_[session] = Entry{user, now, true};
  UserState& u = users_[user];
  bool was_offline = u.sessions == 0;
  ++u.sessions;
  u.last_alive_ms = std::max(u.last_alive_ms, now);
  return was_offline;
}

void PresenceTracker::heartbeat(SessionKey session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end() || !it->second.connected) return;
  std::int64_t now = clock_.now_ms();
  it->second.last_alive_ms = now;
  UserState& u = users_[it->second.user];
  u.last_alive_ms = std::max(u.last_alive_ms, now);
}

bool PresenceTracker::remove(SessionKey session, std::int64_t last_alive_ms) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return false;
  UserId user = it->second.user;
  sessions_.erase(it);
  auto u = users_.find(user);
  if (u == users_.end()) return false;
  u->second.last_alive_ms = std::max(u->second.last_alive_ms, last_alive_ms);
  if (--u->second.sessions > 0) return false;
  users_.erase(u);
  return true;
}

bool PresenceTracker::session_ended(SessionKey session, bool clean) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return false;
  if (!clean) {
    // Keep counting the session until its deadline: a dropped connection
    // that comes back within the timeout never shows as offline.
    it->second.connected = false;
    return false;
  }
  return remove(session, clock_.now_ms());
}

PresenceTracker::Expiry PresenceTracker::expire() {
  Expiry out;
  std::int64_t now = clock_.now_ms();
  std::vector<std::pair<SessionKey, Entry>> expired;
  for (const auto& [key, entry] : sessions_) {
    if (now - entry.last_alive_ms >= options_.timeout_ms) expired.emplace_back(key, entry);
  }
  // Deterministic order for callers and tests.
  std::sort(expired.begin(), expired.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [key, entry] : expired) {
    if (entry.connected) out.timed_out_sessions.push_back(key);
    auto u = users_.find(entry.user);
    std::int64_t last = u == users_.end() ? entry.last_alive_ms
                                          : std::max(u->second.last_alive_ms, entry.last_alive_ms);
    if (remove(key, entry.last_alive_ms)) {
      out.went_offline.push_back(PresenceInfo{entry.user, false, last});
    }
  }
  return out;
}

bool PresenceTracker::is_online(UserId user) const { return users_.contains(user); }

std::int64_t PresenceTracker::last_activity_ms(UserId user) const {
  auto it = users_.find(user);
  return it == users_.end() ? 0 : it->second.last_alive_ms;
}

}  // namespace chatcore
