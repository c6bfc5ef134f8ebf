// Engine: the façade an embedding application or transport holds.
//
// The engine speaks the chatcore wire protocol (schema/wire.fbs) with
// sessions handed to it by a transport, and offers the same operations as
// C++ calls (for an HTTP API, a bot, a test). It owns the rules: who may
// read and write where, validation and limits, Snowflake ids, ordering,
// inbox sync, presence, and the commit pipeline that makes acks mean
// "durable".
//
// THREADING (docs/architecture.md has the whole picture)
//  * The engine has one OWNER THREAD (the "network thread": the thread that
//    constructed it, e.g. the lws service loop). Every public method except
//    those marked "any thread" must be called on it (the group changes and
//    mark_read are: they touch only the Store). Sessions, the
//    Notifier and completion callbacks are called only on it.
//  * Commits run on the engine's STORAGE THREAD (an asio::io_context with
//    one thread), which drains every pending send into one batch and calls
//    Store::commit once per batch (group commit). Completed batches are
//    queued back to the owner thread; the engine then calls the wakeup
//    function (set_wakeup) FROM THE STORAGE THREAD, and the transport must
//    soon call poll() on the owner thread (chatcored: lws_cancel_service).
//  * Other Store writes (device cursors, last seen, WebSocket read marks)
//    run on the engine's WRITE THREAD (cc-writes), one at a time in order;
//    a read mark's MarkReadAck is then sent from the owner thread. Neither
//    the owner thread nor the storage thread ever waits for such a write
//    (LmdbStore: it may wait for a checkpoint).
//  * With EngineOptions::storage_thread = false there is no storage thread:
//    pending sends are committed, as one batch, inside poll(), and the other
//    writes run at once, on the owner thread. Useful for
//    single-threaded embedding and deterministic tests.
//  * Store reads (history, sync catch-up, membership) happen on the owner
//    thread; the Store must allow that concurrently with commit().
//
// PROMISES and where they are kept
//  1. Ack only after Store::commit returned (durable per the Store's mode).
//  2. Seqs are assigned by the Store inside the commit transaction.
//  3. Each session has a delivered watermark; a Deliver is sent only for
//     watermark + 1, and any gap is filled from the store, so a device sees
//     every inbox entry after its cursor exactly once, in order.
//  4. Idempotency is the Store's dedup key; the engine reports duplicates.
//  5. Hello first; sends only as the session's user; reads only by members.
//  6. Every refusal is an Error frame with a stable code; a malformed frame
//     closes the session with CloseCode::kMalformedFrame.
//  7. Presence: see presence.hpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chatcore/authenticator.hpp"
#include "chatcore/clock.hpp"
#include "chatcore/ids.hpp"
#include "chatcore/limits.hpp"
#include "chatcore/model.hpp"
#include "chatcore/notifier.hpp"
#include "chatcore/presence.hpp"
#include "chatcore/session.hpp"
#include "chatcore/status.hpp"
#include "chatcore/store.hpp"

namespace chatcore {

struct EngineOptions {
  Limits limits;
  // Snowflake worker id of this engine (0..1023); unique per process sharing a store.
  std::uint32_t worker_id = 0;
  PresenceOptions presence;
  // Most messages committed in one Store::commit call.
  std::size_t max_commit_batch = 256;
  // See THREADING above.
  bool storage_thread = true;
  // With a storage thread: accepted sends wait until the owner thread
  // calls flush_sends(), instead of waking the storage thread one by one. A
  // transport that serves many connections in one event-loop pass calls it
  // when the pass ends, so the sends of one pass form one commit batch
  // (one fsync) and wake the storage thread once. Without it, on a busy
  // single core, the storage thread tends to take each send alone.
  bool hold_sends_until_flush = false;
  // With a storage thread: how long a commit may wait for more sends to
  // join it, counted from when its oldest send was accepted. 0: never
  // waits. Waits only while sends arrive fast enough for the wait to
  // gather at least two more (so never at low rates), and never when a
  // batch is already full or already that late. Fewer, larger commits
  // save the CPU of fsyncs and wakeups on a busy core at the cost of up
  // to this much added latency; chatcored uses 200 us
  // ([storage] commit_delay_us). Values above 1 s are taken as 1 s.
  std::chrono::microseconds commit_delay{0};
};

using SessionId = std::uint64_t;

// A send, as the HTTP API or an embedder makes it. Exactly one of
// conversation / peer is set.
struct SendRequest {
  ConversationId conversation;
  UserId peer;  // 1-on-1 by user id
  ClientMsgId client_msg_id;
  std::string body;
};

struct SendResult {
  std::shared_ptr<const Message> message;
  std::uint64_t sender_inbox_seq = 0;  // 0 for a duplicate
  bool duplicate = false;
};

// Cumulative counters, for /metrics. Read on the owner thread.
struct EngineStats {
  std::uint64_t sessions_open = 0;           // gauge: sessions currently open
  std::uint64_t sessions_authenticated = 0;  // gauge
  std::uint64_t messages_committed = 0;      // counter: new messages stored
  std::uint64_t messages_duplicate = 0;      // counter: idempotent resends
  std::uint64_t deliveries = 0;              // counter: Deliver frames sent
  std::uint64_t commit_batches = 0;          // counter: Store::commit calls
  std::uint64_t commits_delayed = 0;         // counter: commits that waited (commit_delay)
  std::uint64_t errors_sent = 0;             // counter: Error frames sent
  std::uint64_t rate_limited = 0;            // counter
  std::uint64_t slow_consumer_closes = 0;
  std::uint64_t pending_commits = 0;  // gauge: sends waiting for a commit
  std::uint64_t users_online = 0;     // gauge
};

class Engine {
 public:
  // `store`, `auth`, `clock` and `notifier` (optional) must outlive the
  // engine. The calling thread becomes the owner thread.
  Engine(EngineOptions options, Store& store, Authenticator& auth,
         const Clock& clock = SystemClock::instance(), Notifier* notifier = nullptr);
  // Stops the storage thread after it finishes the batch in flight. Call
  // shutdown() first to deliver pending acks.
  ~Engine();

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // ANY THREAD (set once, before traffic): called from the storage thread
  // whenever completions wait for poll(), and from whichever thread calls
  // post() (the write thread, a host's worker threads). Must be cheap and
  // thread-safe.
  void set_wakeup(std::function<void()> wakeup);

  // ANY THREAD: runs `task` on the owner thread, inside the next poll(), and
  // wakes the owner thread like a completed commit does. For work finished
  // elsewhere (a password hash on a worker thread) that must continue where
  // sessions and the engine live. Tasks run in the order posted.
  void post(std::function<void()> task);

  // ---- transport side -------------------------------------------------------
  // A new connection. The session must send Hello first.
  SessionId connect(std::shared_ptr<Session> session);
  // One complete inbound frame (a WebSocket message). Replies and errors go
  // to the session; a malformed frame closes it.
  void on_frame(SessionId id, std::span<const std::uint8_t> frame);
  // The transport's outbound queue drained below Limits::outbound_soft_bytes:
  // the engine resumes feeding an inbox catch-up that it paused.
  void on_writable(SessionId id);
  // The connection is gone. `clean` is true for a close the client asked for
  // (its user goes offline at once if this was the last session); false for
  // a dropped connection (offline only after the presence timeout).
  void disconnect(SessionId id, bool clean);
  // Runs completions: acks, deliveries, push notifications, callbacks.
  // Returns how many batches it processed.
  std::size_t poll();
  // Hands the sends accepted so far, and the small writes that go with
  // them (device cursors, last seen), to the storage thread
  // (EngineOptions::hold_sends_until_flush; a no-op otherwise).
  void flush_sends();
  // Expires presence (heartbeat timeouts) and closes silent sessions. Call
  // about once a second.
  void tick();

  // ---- programmatic API (owner thread) --------------------------------------
  // The same path as a WebSocket Send: authorise, validate, rate-limit,
  // commit, then `done` is called from poll() once durable (or at once on a
  // refusal). Deliveries to the members' sessions follow as usual.
  void send_message(UserId sender, SendRequest request,
                    std::function<void(Result<SendResult>)> done);
  // History of a conversation `reader` belongs to (kPermissionDenied otherwise).
  Result<std::vector<std::shared_ptr<const Message>>> history(UserId reader, ConversationId conv,
                                                              const HistoryQuery& query);
  // Whether `reader` may read/write `conv`. OK, kPermissionDenied, kNotFound,
  // or kInvalidArgument (malformed id).
  Status check_member(UserId reader, ConversationId conv);

  // Groups with the membership rules: the creator owns the group; only the
  // owner/admins add members; the owner/admins remove members and anyone may
  // remove themselves; the owner cannot leave (kFailedPrecondition).
  // ANY THREAD, like mark_read below: these three read and write only the
  // Store, and a Store write may wait for the store's own work (LmdbStore:
  // a checkpoint's flush), so call them off the owner thread where its
  // latency matters (chatcored's HTTP API runs them on its write thread).
  Result<GroupId> create_group(UserId creator, std::string_view name,
                               std::span<const UserId> members);
  Status add_member(UserId actor, GroupId group, UserId user);
  Status remove_member(UserId actor, GroupId group, UserId user);
  // Members of a group `asker` belongs to, each with presence.
  Result<std::vector<std::pair<Member, PresenceInfo>>> group_members(UserId asker, GroupId group);

  // After a kRateLimited refusal: milliseconds until `user` may send again
  // (0: now). For Error.retry_after_ms and HTTP Retry-After.
  std::uint32_t send_retry_after_ms(UserId user);

  // Presence of any user (online from live sessions, last seen from the store).
  PresenceInfo presence_of(UserId user);
  // Records that `user` read `conv` up to `seq` (a member only). ANY THREAD
  // (the Store only; see create_group).
  Status mark_read(UserId user, ConversationId conv, std::uint64_t seq);

  // Closes (CloseCode::kUnauthenticated, clean) every session opened with
  // this credential (Identity::credential_key): logout, token revocation.
  void revoke_credential(std::string_view credential_key);

  // Graceful stop: new sends are refused with kUnavailable, every pending
  // commit is finished and acked, then every session is closed with
  // CloseCode::kGoingAway. Blocks the owner thread until the storage thread
  // is idle. Idempotent.
  void shutdown();

  EngineStats stats() const;
  const EngineOptions& options() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace chatcore
