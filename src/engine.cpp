// The engine: protocol handling, the rules, and the commit pipeline.
//
// Design in one paragraph (docs/architecture.md has the long form). All
// session state lives on the owner thread and is touched only there, so
// there are no locks around it. The only state shared with the storage
// thread is two queues under one mutex: sends waiting for a commit, and
// committed batches waiting for poll(). The storage thread takes EVERY
// waiting send (up to max_commit_batch) as one batch, so while one fsync
// runs the next batch accumulates: group commit falls out of the queue
// shape. On a busy core the storage thread may also wait a little for more
// sends before a commit (EngineOptions::commit_delay, internal/
// commit_delay.hpp), but only at rates where the wait gathers some: at low
// rates a lone send never waits.
//
// Delivery is driven by a per-session watermark (`delivered`): a Deliver
// frame is only ever sent for watermark + 1. A live delivery that would
// skip ahead (the session is still catching up, or paused by backpressure)
// is not sent; the session is instead "pumped" from the store, which by
// then holds the entry because completions are only queued after commit.
// That single rule makes sync + live delivery gap-free and duplicate-free
// whatever the interleaving of commits, Hello and backpressure.
#include "chatcore/engine.hpp"

#include <pthread.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include "chatcore/protocol.hpp"
#include "chatcore/snowflake.hpp"
#include "internal/commit_delay.hpp"
#include "internal/frames.hpp"
#include "internal/rate_limiter.hpp"
#include "internal/utf8.hpp"

namespace chatcore {

namespace {

// A thread that runs `io` until it has no more work, named (at most 15
// characters) for `top -H` and perf.
std::thread run_in_thread(asio::io_context& io, const char* name) {
  return std::thread([&io, name] {
#ifdef __linux__
    pthread_setname_np(pthread_self(), name);
#else
    (void)name;
#endif
    io.run();
  });
}

constexpr std::uint32_t kDefaultPage = 50;
// EngineOptions::commit_delay's cap: past a second a "wait for more sends"
// is a stall, and the cap keeps CommitDelay's arithmetic far from overflow.
constexpr std::int64_t kMaxCommitDelayUs = 1'000'000;
constexpr std::size_t kMaxDeviceIdBytes = 64;
constexpr std::size_t kMaxGroupNameBytes = 128;
constexpr std::size_t kMaxPresenceQueryUsers = 200;
constexpr std::uint16_t kMaxWritesInFlight = 16;  // per session: read marks not yet stored

using SendCallback = std::function<void(Result<SendResult>)>;

struct PendingSend {
  NewMessage message;
  SendCallback done;
  // When the send was accepted; read only with a commit_delay.
  std::chrono::steady_clock::time_point accepted_at;
};

struct CompletedBatch {
  std::vector<PendingSend> sends;
  std::vector<CommitOutcome> outcomes;
  bool waited = false;  // the commit waited for more sends (commit_delay)
};

// One Deliver frame per committed message, patched per recipient: the body
// is encoded once however many inboxes and sessions it reaches (a 100-member
// group costs one encode, not 100). inbox_seq is never 0, so the field is
// always present in the buffer and can be overwritten in place.
class DeliverFrame {
 public:
  explicit DeliverFrame(const Message& m) : message_(m) {}
  const std::vector<std::uint8_t>& for_seq(std::uint64_t inbox_seq) {
    if (bytes_.empty()) {
      bytes_ = encode_deliver(inbox_seq, message_);
      return bytes_;
    }
    auto* frame = flatbuffers::GetMutableRoot<wire::Frame>(bytes_.data());
    auto* deliver = static_cast<wire::Deliver*>(frame->mutable_body());
    if (!deliver->mutate_inbox_seq(inbox_seq)) bytes_ = encode_deliver(inbox_seq, message_);
    return bytes_;
  }

 private:
  const Message& message_;
  std::vector<std::uint8_t> bytes_;
};

bool is_client_frame(wire::Body type) {
  switch (type) {
    case wire::Body::Hello:
    case wire::Body::Send:
    case wire::Body::Sync:
    case wire::Body::History:
    case wire::Body::Heartbeat:
    case wire::Body::PresenceQuery:
    case wire::Body::MarkRead:
      return true;
    default:
      return false;
  }
}

// What a session keeps of its credential key: a 128-bit fingerprint from
// two unrelated 64-bit hashes (the standard library's and FNV-1a), not the
// key itself. A token hash is 64 characters, i.e. a heap string for every
// connection, where this is 16 bytes inline. Two live credentials collide
// with a probability of about n^2 / 2^129, so revoke_credential still closes
// exactly the sessions opened with the revoked credential.
using CredentialFingerprint = std::array<std::uint64_t, 2>;

CredentialFingerprint fingerprint(std::string_view key) {
  std::uint64_t fnv = 0xcbf29ce484222325u;
  for (unsigned char c : key) {
    fnv ^= c;
    fnv *= 0x100000001b3u;
  }
  return {std::hash<std::string_view>{}(key), fnv};
}

std::uint32_t page_limit(std::uint32_t requested, std::uint32_t max_page) {
  if (requested == 0) return std::min(kDefaultPage, max_page);
  return std::min(requested, max_page);
}

}  // namespace

struct Engine::Impl {
  // Kept lean: an idle connection's memory is a product figure
  // (docs/benchmarks.md), and there is one of these per connection.
  struct SessionState {
    SessionId id = 0;
    std::shared_ptr<Session> session;
    UserId user;
    std::uint64_t delivered = 0;  // highest inbox seq sent to this session
    bool authenticated = false;
    bool closing = false;
    std::uint16_t writes_in_flight = 0;  // read marks on the write thread
    CredentialFingerprint credential{};  // of Identity::credential_key
    std::string device_id;
  };

  // The sessions of one online user. One device is the common case, so the
  // first id lives inline and only further devices allocate.
  class SessionList {
   public:
    bool empty() const { return first_ == 0; }
    void add(SessionId id) {
      if (first_ == 0) {
        first_ = id;
      } else {
        rest_.push_back(id);
      }
    }
    void remove(SessionId id) {
      if (first_ != id) {
        std::erase(rest_, id);
      } else if (rest_.empty()) {
        first_ = 0;
      } else {
        first_ = rest_.back();
        rest_.pop_back();
      }
    }
    template <class F>
    void for_each(F&& f) const {
      if (first_ != 0) f(first_);
      for (SessionId id : rest_) f(id);
    }

   private:
    SessionId first_ = 0;  // session ids start at 1
    std::vector<SessionId> rest_;
  };

  // A user with at least one authenticated session here.
  struct OnlineUser {
    SessionList sessions;
    // The newest inbox seq this engine knows to be committed for the user.
    std::uint64_t known_head = 0;
  };

  Impl(EngineOptions o, Store& s, Authenticator& a, const Clock& c, Notifier* n)
      : options(std::move(o)),
        store(s),
        auth(a),
        clock(c),
        notifier(n),
        ids(options.worker_id, c),
        presence(options.presence, c),
        limiter(options.limits.sends_per_second, options.limits.send_burst),
        commit_delay(std::clamp(options.commit_delay, std::chrono::microseconds(0),
                                std::chrono::microseconds(kMaxCommitDelayUs))) {
    if (options.max_commit_batch == 0) options.max_commit_batch = 1;
    if (options.storage_thread) {
      work.emplace(io.get_executor());
      storage = run_in_thread(io, "cc-storage");  // commits batches
      writes_work.emplace(writes_io.get_executor());
      writer = run_in_thread(writes_io, "cc-writes");  // other writes (defer_write)
    }
  }

  ~Impl() {
    if (storage.joinable()) {
      flush_sends();  // anything held (hold_sends_until_flush) is written too
      work.reset();   // io.run() returns once the posted drains are done
      storage.join();
      writes_work.reset();  // likewise: the side writes queued so far still run
      writer.join();
    }
  }

  // ---- session bookkeeping ---------------------------------------------------
  SessionState* find(SessionId id) {
    auto it = sessions.find(id);
    return it == sessions.end() ? nullptr : &it->second;
  }

  void send_to(SessionState& s, const std::vector<std::uint8_t>& frame) {
    if (s.closing) return;
    s.session->send(frame);
    if (s.session->queued_bytes() > options.limits.outbound_hard_bytes) {
      ++stats.slow_consumer_closes;
      close_session(s, CloseCode::kSlowConsumer, "outbound queue over its limit: resync by cursor");
    }
  }

  void send_error(SessionState& s, std::uint64_t request_id, const Status& st,
                  std::uint32_t retry_after_ms = 0) {
    ++stats.errors_sent;
    send_to(s, encode_error(request_id, st, retry_after_ms));
  }

  void close_session(SessionState& s, CloseCode code, std::string_view reason) {
    if (s.closing) return;
    s.closing = true;
    s.session->close(code, reason);
  }

  // Error frame, then close: for frames after which the session cannot go on.
  void fail_session(SessionState& s, std::uint64_t request_id, const Status& st, CloseCode code) {
    send_error(s, request_id, st);
    close_session(s, code, st.message());
  }

  // ---- delivery ----------------------------------------------------------------
  // Only for a user with a session (pump and deliver_live run for those).
  std::uint64_t& head_of(UserId user) { return online[user].known_head; }

  // Sends the next inbox entries from the store until the session has
  // everything known committed, or its transport queue reaches the soft
  // limit (on_writable resumes it).
  void pump(SessionState& s) {
    const auto& limits = options.limits;
    while (!s.closing && s.authenticated && s.delivered < head_of(s.user) &&
           s.session->queued_bytes() < limits.outbound_soft_bytes) {
      auto page = store.read_inbox(s.user, s.delivered, limits.catchup_page);
      if (!page.is_ok() || page->empty()) return;  // the next commit or poll retries
      for (const auto& item : *page) {
        if (s.closing) return;
        send_to(s, encode_deliver(item.inbox_seq, *item.message));
        ++stats.deliveries;
        s.delivered = item.inbox_seq;
        if (s.session->queued_bytes() >= limits.outbound_soft_bytes) return;
      }
    }
  }

  void deliver_live(SessionState& s, std::uint64_t inbox_seq, DeliverFrame& frame) {
    if (s.closing || !s.authenticated || inbox_seq <= s.delivered) return;
    if (inbox_seq == s.delivered + 1 &&
        s.session->queued_bytes() < options.limits.outbound_soft_bytes) {
      send_to(s, frame.for_seq(inbox_seq));
      ++stats.deliveries;
      s.delivered = inbox_seq;
      return;
    }
    pump(s);
  }

  // ---- presence fan-out ------------------------------------------------------------
  void broadcast_presence(const PresenceInfo& p) {
    auto watchers = store.watchers_of(p.user);
    if (!watchers.is_ok()) return;
    std::vector<std::uint8_t> frame;
    for (UserId w : *watchers) {
      auto it = online.find(w);
      if (it == online.end()) continue;
      if (frame.empty()) frame = internal::encode_presence(0, p);
      it->second.sessions.for_each([&](SessionId sid) {
        if (auto* s = find(sid)) send_to(*s, frame);
      });
    }
  }

  void went_offline(UserId user, std::int64_t last_seen_ms) {
    // Remembered here until the deferred store write has surely landed, so
    // presence_of never reads an older value in between.
    recent_last_seen[user] = last_seen_ms;
    defer_write([this, user, last_seen_ms] { store.set_last_seen(user, last_seen_ms); });
    broadcast_presence(PresenceInfo{user, false, last_seen_ms});
  }

  PresenceInfo presence_of(UserId user) {
    if (presence.is_online(user)) return {user, true, presence.last_activity_ms(user)};
    if (auto it = recent_last_seen.find(user); it != recent_last_seen.end()) {
      return {user, false, it->second};
    }
    auto seen = store.last_seen(user);
    return {user, false, seen.is_ok() ? *seen : 0};
  }

  // ---- authorisation -----------------------------------------------------------------
  Status check_member(UserId user, ConversationId conv) {
    auto parsed = ConversationId::from_raw(conv.value);
    if (!parsed) return Status::invalid_argument("malformed conversation id");
    if (conv.is_direct()) {
      if (conv.low_user() != user && conv.high_user() != user) {
        return Status::permission_denied("not a participant of this conversation");
      }
      return Status::ok();
    }
    auto role = store.member_role(conv.group_id(), user);
    if (role.is_ok()) return Status::ok();
    if (role.status().code() != ErrorCode::kNotFound) return role.status();
    if (!store.get_group(conv.group_id()).is_ok()) return Status::not_found("no such conversation");
    return Status::permission_denied("not a member of this group");
  }

  // ---- the send path -----------------------------------------------------------------
  void submit_send(UserId sender, SendRequest req, SendCallback done) {
    auto refuse = [&](Status st) { done(Result<SendResult>(std::move(st))); };
    if (shutting_down) return refuse(Status::unavailable("server is shutting down"));

    // Resolve the conversation.
    ConversationId conv = req.conversation;
    if (req.peer.valid() == conv.valid()) {
      return refuse(
          Status::invalid_argument("set exactly one of conversation_id and peer_user_id"));
    }
    if (req.peer.valid()) {
      auto direct = ConversationId::direct_checked(sender, req.peer);
      if (!direct) return refuse(Status::invalid_argument("invalid peer user id"));
      conv = *direct;
    }

    // Authorise: only a participant/member sends, and only as itself.
    if (Status st = check_member(sender, conv); !st) return refuse(std::move(st));
    std::vector<UserId> recipients;
    if (conv.is_direct()) {
      UserId peer = conv.peer_of(sender);
      if (!store.get_user(peer).is_ok()) return refuse(Status::not_found("no such user"));
      recipients = {conv.low_user(), conv.high_user()};
    } else {
      auto members = store.group_members(conv.group_id());
      if (!members.is_ok()) return refuse(members.status());
      recipients.reserve(members->size());
      for (const auto& m : *members) recipients.push_back(m.user);
    }

    // Validate.
    if (req.client_msg_id.is_zero()) {
      return refuse(Status::invalid_argument("client_msg_id must be 16 non-zero bytes"));
    }
    auto chars = internal::utf8_count(req.body);
    if (!chars) return refuse(Status::invalid_utf8("body is not valid UTF-8"));
    if (*chars == 0) return refuse(Status::invalid_argument("body is empty"));
    if (*chars > options.limits.max_body_chars) {
      return refuse(Status::too_large(fmt::format("body has {} characters; the limit is {}", *chars,
                                                  options.limits.max_body_chars)));
    }

    // Rate limit, then the engine-wide backlog bound.
    std::int64_t now = clock.now_ms();
    if (std::uint32_t wait = limiter.try_take(sender.value, now); wait != 0) {
      ++stats.rate_limited;
      return refuse(Status::rate_limited(fmt::format("too many messages; retry in {} ms", wait)));
    }
    if (pending_sends >= options.limits.max_pending_sends) {
      return refuse(Status::unavailable("storage is behind; retry shortly"));
    }

    PendingSend p;
    p.message.id = ids.next();
    p.message.conversation = conv;
    p.message.sender = sender;
    p.message.client_msg_id = req.client_msg_id;
    p.message.body = std::move(req.body);
    p.message.sent_at_ms = now;
    p.message.recipients = std::move(recipients);
    p.done = std::move(done);
    enqueue(std::move(p));
  }

  void enqueue(PendingSend p) {
    ++pending_sends;
    if (options.commit_delay.count() > 0) p.accepted_at = std::chrono::steady_clock::now();
    bool schedule = false;
    {
      std::lock_guard lock(mu);
      waiting.push_back(std::move(p));
      if (options.storage_thread && !options.hold_sends_until_flush && !drain_scheduled) {
        drain_scheduled = true;
        schedule = true;
      }
    }
    if (schedule) asio::post(io, [this] { drain_one_batch(); });
  }

  // Small writes that need no reply (device cursors, last seen) run on the
  // WRITE THREAD (cc-writes), in the order deferred. Not on the owner
  // thread, which must never wait for the Store's writer (LmdbStore: a
  // running checkpoint holds it), nor on the storage thread, whose commits
  // every ack waits for. Without a storage thread they run at once.
  void defer_write(std::function<void()> write) {
    if (!options.storage_thread) return write();
    asio::post(writes_io, [write = std::move(write)] {
      // An exception out of a handler would end the write thread's run()
      // and with it every later write. These writes are refreshed by the
      // next Hello, Sync or disconnect, so a failed one is dropped.
      try {
        write();
      } catch (const std::exception&) {
      }
    });
  }

  // A write whose outcome a session waits for: `task()` on the write
  // thread, then `reply(result)` on the owner thread (through post()).
  // Without a storage thread both run at once.
  template <typename Work, typename Reply>
  void write_then_reply(Work task, Reply reply) {
    if (!options.storage_thread) return reply(task());
    asio::post(writes_io, [this, task = std::move(task), reply = std::move(reply)]() mutable {
      using R = decltype(task());
      std::optional<R> result;
      try {
        result.emplace(task());
      } catch (const std::exception& e) {  // see defer_write; this one is answered
        result.emplace(Status::internal(std::string("unexpected error: ") + e.what()));
      }
      post([reply = std::move(reply), result = std::move(*result)]() mutable {
        reply(std::move(result));
      });
    });
  }

  // Storage thread (or poll() without one): commits one batch of everything
  // waiting and hands it back to the owner thread. Returns false if there
  // was nothing to do.
  bool drain_one_batch() {
    CompletedBatch batch;
    if (options.storage_thread && commit_delay.waiting()) batch.waited = wait_for_more_sends();
    {
      std::lock_guard lock(mu);
      std::size_t n = std::min(waiting.size(), options.max_commit_batch);
      if (n == 0) {
        drain_scheduled = false;
        return false;
      }
      if (options.storage_thread) commit_delay.record(n, std::chrono::steady_clock::now());
      batch.sends.reserve(n);
      for (std::size_t i = 0; i < n; ++i) {
        batch.sends.push_back(std::move(waiting.front()));
        waiting.pop_front();
      }
    }
    std::vector<NewMessage> messages;
    messages.reserve(batch.sends.size());
    // Moved, not copied: a body can be 400 KB, and after the commit only
    // the sender (a plain id, unaffected by the move) is read again.
    for (auto& p : batch.sends) messages.push_back(std::move(p.message));
    batch.outcomes = store.commit(messages);
    std::function<void()> wake;
    {
      std::lock_guard lock(mu);
      completed.push_back(std::move(batch));
      if (options.storage_thread) {
        if (!waiting.empty()) {
          asio::post(io, [this] { drain_one_batch(); });  // drain_scheduled stays true
        } else {
          drain_scheduled = false;
        }
      }
      wake = wakeup;
    }
    completed_cv.notify_all();
    if (wake) wake();
    return true;
  }

  // Storage thread: lets more sends join the next commit (see CommitDelay).
  // A plain sleep: the sends arriving meanwhile only append to `waiting`
  // (drain_scheduled stays true). A batch already full does not wait; one
  // that fills during the sleep sleeps on (at most commit_delay, and only
  // at rates where a full batch of max_commit_batch is rare). Returns
  // whether it slept.
  bool wait_for_more_sends() {
    std::chrono::steady_clock::time_point until;
    auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(mu);
      if (waiting.empty() || waiting.size() >= options.max_commit_batch) return false;
      until = commit_delay.start_at(waiting.front().accepted_at, now);
    }
    if (until <= now) return false;
    std::this_thread::sleep_until(until);
    return true;
  }

  void flush_sends() {
    if (!options.storage_thread) return;
    bool schedule = false;
    {
      std::lock_guard lock(mu);
      if (!waiting.empty() && !drain_scheduled) {
        drain_scheduled = schedule = true;
      }
    }
    if (schedule) asio::post(io, [this] { drain_one_batch(); });
  }

  void post(std::function<void()> task) {
    std::function<void()> wake;
    {
      std::lock_guard lock(mu);
      posted.push_back(std::move(task));
      wake = wakeup;
    }
    if (wake) wake();
  }

  std::size_t poll() {
    if (!options.storage_thread) {
      while (drain_one_batch()) {
      }
    }
    std::deque<CompletedBatch> ready;
    std::vector<std::function<void()>> tasks;
    {
      std::lock_guard lock(mu);
      ready.swap(completed);
      tasks.swap(posted);
    }
    for (auto& batch : ready) complete(batch);
    for (auto& task : tasks) task();
    return ready.size();
  }

  void complete(CompletedBatch& batch) {
    ++stats.commit_batches;
    if (batch.waited) ++stats.commits_delayed;
    for (std::size_t i = 0; i < batch.sends.size(); ++i) {
      --pending_sends;
      PendingSend& p = batch.sends[i];
      CommitOutcome& out = batch.outcomes[i];
      if (!out.status.is_ok() || !out.message) {
        Status st = out.status.is_ok() ? Status::internal("store returned no message") : out.status;
        p.done(Result<SendResult>(std::move(st)));
        continue;
      }
      SendResult result;
      result.message = out.message;
      result.duplicate = out.duplicate;
      if (out.duplicate) {
        ++stats.messages_duplicate;
      } else {
        ++stats.messages_committed;
        for (const auto& [user, seq] : out.inbox) {
          if (user == p.message.sender) result.sender_inbox_seq = seq;
        }
      }
      // Ack first: the sender learns its message is durable before anyone
      // (including its own other devices) sees it delivered.
      p.done(Result<SendResult>(result));
      if (out.duplicate) continue;
      DeliverFrame frame(*out.message);
      for (const auto& [user, seq] : out.inbox) {
        auto it = online.find(user);
        if (it == online.end()) {
          if (notifier && user != p.message.sender)
            notifier->on_offline_message(user, *out.message);
          continue;
        }
        it->second.known_head = std::max(it->second.known_head, seq);
        it->second.sessions.for_each([&](SessionId sid) {
          if (auto* s = find(sid)) deliver_live(*s, seq, frame);
        });
      }
    }
  }

  // ---- frame handlers ------------------------------------------------------------------
  void on_hello(SessionState& s, std::uint64_t rid, const wire::Hello& hello) {
    if (s.authenticated) {
      return fail_session(s, rid, Status(ErrorCode::kProtocolViolation, "Hello sent twice"),
                          CloseCode::kProtocolViolation);
    }
    if (shutting_down) {
      return fail_session(s, rid, Status::unavailable("server is shutting down"),
                          CloseCode::kGoingAway);
    }
    std::string_view token = hello.token() ? hello.token()->string_view() : std::string_view();
    auto identity = auth.authenticate(token);
    if (!identity.is_ok()) {
      Status st = identity.status().code() == ErrorCode::kUnauthenticated
                      ? identity.status()
                      : Status::unauthenticated("token could not be verified");
      return fail_session(s, rid, st, CloseCode::kUnauthenticated);
    }
    std::string_view device = hello.device_id() ? hello.device_id()->string_view() : "";
    if (device.empty() || device.size() > kMaxDeviceIdBytes) {
      return fail_session(s, rid, Status::invalid_argument("device_id must be 1..64 bytes"),
                          CloseCode::kProtocolViolation);
    }
    s.authenticated = true;
    s.user = identity->user;
    s.device_id = device;
    s.credential = fingerprint(identity->credential_key);
    online[s.user].sessions.add(s.id);
    ++stats.sessions_authenticated;

    auto head = store.inbox_head(s.user);
    std::uint64_t& known = head_of(s.user);
    if (head.is_ok()) known = std::max(known, *head);
    // A cursor beyond the inbox (a wiped server, a confused client) would
    // silently swallow future entries: clamp it; Welcome tells the head.
    s.delivered = std::min<std::uint64_t>(hello.cursor(), known);
    defer_write([this, user = s.user, device = s.device_id, cursor = s.delivered] {
      store.set_device_cursor(user, device, cursor);
    });

    internal::WelcomeInfo w;
    w.user = s.user;
    w.inbox_head = known;
    w.heartbeat_ms = static_cast<std::uint32_t>(options.presence.heartbeat_interval_ms);
    w.presence_timeout_ms = static_cast<std::uint32_t>(options.presence.timeout_ms);
    w.server_time_ms = clock.now_ms();
    w.max_body_chars = options.limits.max_body_chars;
    w.session_id = s.id;
    send_to(s, internal::encode_welcome(rid, w));

    recent_last_seen.erase(s.user);
    if (presence.session_started(s.user, s.id)) {
      broadcast_presence(PresenceInfo{s.user, true, clock.now_ms()});
    }
    pump(s);
  }

  void on_send(SessionState& s, std::uint64_t rid, const wire::Send& send) {
    SendRequest req;
    req.conversation = ConversationId(send.conversation_id());
    req.peer = UserId(send.peer_user_id());
    if (!send.client_msg_id() || send.client_msg_id()->size() != 16) {
      return send_error(s, rid, Status::invalid_argument("client_msg_id must be 16 bytes"));
    }
    std::copy(send.client_msg_id()->begin(), send.client_msg_id()->end(),
              req.client_msg_id.bytes.begin());
    if (send.body()) req.body.assign(send.body()->data(), send.body()->size());
    SessionId sid = s.id;
    UserId user = s.user;
    submit_send(s.user, std::move(req), [this, sid, rid, user](Result<SendResult> r) {
      SessionState* target = find(sid);
      if (!target) return;  // gone; the client resends by client_msg_id
      if (!r.is_ok()) {
        std::uint32_t retry = r.status().code() == ErrorCode::kRateLimited
                                  ? limiter.wait_ms(user.value, clock.now_ms())
                                  : 0;
        return send_error(*target, rid, r.status(), retry);
      }
      send_to(*target, internal::encode_ack(rid, *r->message, r->sender_inbox_seq, r->duplicate));
    });
  }

  void on_sync(SessionState& s, std::uint64_t rid, const wire::Sync& sync) {
    std::uint32_t limit = page_limit(sync.limit(), options.limits.max_page);
    auto items = store.read_inbox(s.user, sync.after_inbox_seq(), limit);
    if (!items.is_ok()) return send_error(s, rid, items.status());
    auto head = store.inbox_head(s.user);
    defer_write([this, user = s.user, device = s.device_id, cursor = sync.after_inbox_seq()] {
      store.set_device_cursor(user, device, cursor);
    });
    send_to(s, internal::encode_sync_batch(rid, *items, head.is_ok() ? *head : 0));
  }

  void on_history(SessionState& s, std::uint64_t rid, const wire::History& h) {
    HistoryQuery q;
    if (h.before_seq()) q.before_seq = h.before_seq();
    if (h.after_seq()) q.after_seq = h.after_seq();
    q.limit = h.limit();
    ConversationId conv(h.conversation_id());
    auto page = history(s.user, conv, q);
    if (!page.is_ok()) return send_error(s, rid, page.status());
    send_to(s, internal::encode_history_page(rid, conv, *page));
  }

  Result<std::vector<std::shared_ptr<const Message>>> history(UserId reader, ConversationId conv,
                                                              HistoryQuery q) {
    if (q.before_seq && q.after_seq) {
      return Status::invalid_argument("set at most one of before_seq and after_seq");
    }
    if (Status st = check_member(reader, conv); !st) return st;
    q.limit = page_limit(q.limit, options.limits.max_page);
    return store.history(conv, q);
  }

  void on_presence_query(SessionState& s, std::uint64_t rid, const wire::PresenceQuery& q) {
    std::vector<PresenceInfo> out;
    if (q.group_id() != 0) {
      auto members = group_members(s.user, GroupId(q.group_id()));
      if (!members.is_ok()) return send_error(s, rid, members.status());
      for (const auto& [m, p] : *members) out.push_back(p);
    }
    if (q.user_ids()) {
      if (q.user_ids()->size() > kMaxPresenceQueryUsers) {
        return send_error(s, rid, Status::invalid_argument("at most 200 user ids per query"));
      }
      for (auto uid : *q.user_ids()) out.push_back(presence_of(UserId(uid)));
    }
    send_to(s, internal::encode_presence_list(rid, out));
  }

  Status mark_read(UserId user, ConversationId conv, std::uint64_t seq) {
    if (Status st = check_member(user, conv); !st) return st;
    auto state = store.conversation_state(conv);
    if (state.is_ok()) seq = std::min(seq, state->last_seq);
    return store.set_read_cursor(user, conv, seq);
  }

  void on_frame(SessionState& s, std::span<const std::uint8_t> bytes) {
    if (s.closing) return;
    if (bytes.size() > options.limits.max_frame_bytes) {
      return fail_session(s, 0, Status::too_large("frame over the size limit"),
                          CloseCode::kFrameTooLarge);
    }
    const wire::Frame* frame = verify_frame(bytes);
    if (!frame) {
      return fail_session(s, 0, Status(ErrorCode::kMalformedFrame, "frame failed verification"),
                          CloseCode::kMalformedFrame);
    }
    std::uint64_t rid = frame->request_id();
    wire::Body type = frame->body_type();
    if (!is_client_frame(type) || frame->body() == nullptr) {
      return fail_session(s, rid,
                          Status(ErrorCode::kProtocolViolation,
                                 fmt::format("{} is not a client frame", frame_type_name(type))),
                          CloseCode::kProtocolViolation);
    }
    if (type == wire::Body::Hello) return on_hello(s, rid, *frame->body_as_Hello());
    if (!s.authenticated) {
      return fail_session(s, rid, Status(ErrorCode::kProtocolViolation, "send Hello first"),
                          CloseCode::kProtocolViolation);
    }
    presence.heartbeat(s.id);  // any frame is a sign of life
    switch (type) {
      case wire::Body::Send:
        return on_send(s, rid, *frame->body_as_Send());
      case wire::Body::Sync:
        return on_sync(s, rid, *frame->body_as_Sync());
      case wire::Body::History:
        return on_history(s, rid, *frame->body_as_History());
      case wire::Body::Heartbeat:
        return send_to(s, internal::encode_heartbeat_ack(rid, clock.now_ms()));
      case wire::Body::PresenceQuery:
        return on_presence_query(s, rid, *frame->body_as_PresenceQuery());
      case wire::Body::MarkRead: {
        const auto* m = frame->body_as_MarkRead();
        const ConversationId conv(m->conversation_id());
        const std::uint64_t seq = m->seq();
        const SessionId sid = s.id;
        const UserId user = s.user;
        // A store write: on the write thread, answered back here. Bounded
        // per session, so that a client cannot queue writes without limit.
        if (s.writes_in_flight >= kMaxWritesInFlight) {
          return send_error(s, rid,
                            Status::rate_limited("too many read marks waiting to be stored; "
                                                 "wait for their MarkReadAcks"));
        }
        ++s.writes_in_flight;
        return write_then_reply(
            [this, user, conv, seq]() -> Result<std::uint64_t> {
              if (Status st = mark_read(user, conv, seq); !st) return st;
              auto cursor = store.read_cursor(user, conv);
              return cursor.is_ok() ? *cursor : 0;
            },
            [this, sid, rid, conv](Result<std::uint64_t> cursor) {
              SessionState* target = find(sid);
              if (!target) return;  // gone; the read mark is stored anyway
              --target->writes_in_flight;
              if (!cursor.is_ok()) return send_error(*target, rid, cursor.status());
              send_to(*target, internal::encode_mark_read_ack(rid, conv, *cursor));
            });
      }
      default:
        return;  // unreachable: is_client_frame() filtered
    }
  }

  // ---- groups ----------------------------------------------------------------------------
  Result<std::vector<std::pair<Member, PresenceInfo>>> group_members(UserId asker, GroupId g) {
    if (Status st = check_member(asker, ConversationId::group(g)); !st) return st;
    auto members = store.group_members(g);
    if (!members.is_ok()) return members.status();
    std::vector<std::pair<Member, PresenceInfo>> out;
    out.reserve(members->size());
    for (const auto& m : *members) out.emplace_back(m, presence_of(m.user));
    return out;
  }

  Result<MemberRole> role_of(UserId actor, GroupId group) {
    auto role = store.member_role(group, actor);
    if (role.is_ok()) return role;
    if (role.status().code() != ErrorCode::kNotFound) return role.status();
    if (!store.get_group(group).is_ok()) return Status::not_found("no such group");
    return Status::permission_denied("not a member of this group");
  }

  // ---- state -----------------------------------------------------------------------------
  EngineOptions options;
  Store& store;
  Authenticator& auth;
  const Clock& clock;
  Notifier* notifier;
  SnowflakeGenerator ids;
  PresenceTracker presence;
  internal::RateLimiter limiter;
  EngineStats stats;

  SessionId next_session_id = 1;
  std::unordered_map<SessionId, SessionState> sessions;
  std::unordered_map<UserId, OnlineUser> online;
  // Last seen of users who went offline while this engine ran (16 bytes a
  // user; cleared for a user when they come back online).
  std::unordered_map<UserId, std::int64_t> recent_last_seen;
  std::uint64_t pending_sends = 0;
  bool shutting_down = false;
  std::int64_t last_sweep_ms = 0;

  // Shared with the storage thread (guarded by mu).
  std::mutex mu;
  std::condition_variable completed_cv;
  std::deque<PendingSend> waiting;
  std::deque<CompletedBatch> completed;
  // The storage thread's own (no lock): whether commits wait for more sends.
  internal::CommitDelay commit_delay;
  std::vector<std::function<void()>> posted;  // Engine::post, for the owner thread
  bool drain_scheduled = false;
  std::function<void()> wakeup;

  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread storage;
  // The write thread (see defer_write); declared after everything its
  // tasks use, and joined in ~Impl before any of it goes.
  asio::io_context writes_io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> writes_work;
  std::thread writer;
};

// ---- public façade ---------------------------------------------------------------------

Engine::Engine(EngineOptions options, Store& store, Authenticator& auth, const Clock& clock,
               Notifier* notifier)
    : impl_(std::make_unique<Impl>(std::move(options), store, auth, clock, notifier)) {}

Engine::~Engine() = default;

void Engine::set_wakeup(std::function<void()> wakeup) {
  std::lock_guard lock(impl_->mu);
  impl_->wakeup = std::move(wakeup);
}

void Engine::post(std::function<void()> task) { impl_->post(std::move(task)); }

SessionId Engine::connect(std::shared_ptr<Session> session) {
  SessionId id = impl_->next_session_id++;
  Impl::SessionState s;
  s.id = id;
  s.session = std::move(session);
  impl_->sessions.emplace(id, std::move(s));
  ++impl_->stats.sessions_open;
  return id;
}

void Engine::on_frame(SessionId id, std::span<const std::uint8_t> frame) {
  if (auto* s = impl_->find(id)) impl_->on_frame(*s, frame);
}

void Engine::on_writable(SessionId id) {
  if (auto* s = impl_->find(id)) impl_->pump(*s);
}

void Engine::disconnect(SessionId id, bool clean) {
  auto it = impl_->sessions.find(id);
  if (it == impl_->sessions.end()) return;
  Impl::SessionState s = std::move(it->second);
  impl_->sessions.erase(it);
  --impl_->stats.sessions_open;
  if (!s.authenticated) return;
  --impl_->stats.sessions_authenticated;
  auto us = impl_->online.find(s.user);
  if (us != impl_->online.end()) {
    us->second.sessions.remove(id);
    if (us->second.sessions.empty()) impl_->online.erase(us);
  }
  if (impl_->presence.session_ended(id, clean)) {
    impl_->went_offline(s.user, impl_->clock.now_ms());
  }
}

std::size_t Engine::poll() { return impl_->poll(); }

void Engine::flush_sends() { impl_->flush_sends(); }

void Engine::tick() {
  auto expiry = impl_->presence.expire();
  for (SessionId sid : expiry.timed_out_sessions) {
    if (auto* s = impl_->find(sid)) {
      impl_->close_session(*s, CloseCode::kHeartbeatTimeout, "no heartbeat within the timeout");
    }
  }
  for (const auto& p : expiry.went_offline) impl_->went_offline(p.user, p.last_seen_ms);
  std::int64_t now = impl_->clock.now_ms();
  if (now - impl_->last_sweep_ms > 60'000) {
    impl_->limiter.sweep(now);
    impl_->last_sweep_ms = now;
  }
}

void Engine::send_message(UserId sender, SendRequest request,
                          std::function<void(Result<SendResult>)> done) {
  impl_->submit_send(sender, std::move(request), std::move(done));
}

Result<std::vector<std::shared_ptr<const Message>>> Engine::history(UserId reader,
                                                                    ConversationId conv,
                                                                    const HistoryQuery& query) {
  return impl_->history(reader, conv, query);
}

Status Engine::check_member(UserId reader, ConversationId conv) {
  return impl_->check_member(reader, conv);
}

Result<GroupId> Engine::create_group(UserId creator, std::string_view name,
                                     std::span<const UserId> members) {
  auto chars = internal::utf8_count(name);
  if (!chars) return Status::invalid_utf8("group name is not valid UTF-8");
  if (name.empty() || name.size() > kMaxGroupNameBytes) {
    return Status::invalid_argument("group name must be 1..128 bytes");
  }
  if (!impl_->store.get_user(creator).is_ok()) return Status::not_found("no such user");
  return impl_->store.create_group(name, creator, members, impl_->clock.now_ms(),
                                   impl_->options.limits.max_group_members);
}

Status Engine::add_member(UserId actor, GroupId group, UserId user) {
  auto role = impl_->role_of(actor, group);
  if (!role.is_ok()) return role.status();
  if (*role == MemberRole::kMember) {
    return Status::permission_denied("only the group's owner or admins add members");
  }
  return impl_->store.add_member(group, user, MemberRole::kMember,
                                 impl_->options.limits.max_group_members);
}

Status Engine::remove_member(UserId actor, GroupId group, UserId user) {
  auto role = impl_->role_of(actor, group);
  if (!role.is_ok()) return role.status();
  if (actor == user) {
    if (*role == MemberRole::kOwner) {
      return Status::failed_precondition("the owner cannot leave the group");
    }
    return impl_->store.remove_member(group, user);
  }
  if (*role == MemberRole::kMember) {
    return Status::permission_denied("only the group's owner or admins remove members");
  }
  auto target = impl_->store.member_role(group, user);
  if (!target.is_ok()) return Status::not_found("not a member of this group");
  if (*target == MemberRole::kOwner) {
    return Status::failed_precondition("the owner cannot be removed");
  }
  if (*target == MemberRole::kAdmin && *role != MemberRole::kOwner) {
    return Status::permission_denied("only the owner removes admins");
  }
  return impl_->store.remove_member(group, user);
}

Result<std::vector<std::pair<Member, PresenceInfo>>> Engine::group_members(UserId asker,
                                                                           GroupId group) {
  return impl_->group_members(asker, group);
}

PresenceInfo Engine::presence_of(UserId user) { return impl_->presence_of(user); }

std::uint32_t Engine::send_retry_after_ms(UserId user) {
  return impl_->limiter.wait_ms(user.value, impl_->clock.now_ms());
}

Status Engine::mark_read(UserId user, ConversationId conv, std::uint64_t seq) {
  return impl_->mark_read(user, conv, seq);
}

void Engine::revoke_credential(std::string_view credential_key) {
  const CredentialFingerprint revoked = fingerprint(credential_key);
  for (auto& [id, s] : impl_->sessions) {
    if (s.authenticated && s.credential == revoked) {
      impl_->fail_session(s, 0, Status::unauthenticated("token revoked"),
                          CloseCode::kUnauthenticated);
    }
  }
}

void Engine::shutdown() {
  Impl& d = *impl_;
  if (!d.shutting_down) {
    d.shutting_down = true;
    // Finish every accepted send: commit, then ack.
    d.flush_sends();
    while (d.pending_sends > 0) {
      if (d.options.storage_thread) {
        std::unique_lock lock(d.mu);
        d.completed_cv.wait(lock, [&] { return !d.completed.empty(); });
      }
      d.poll();
    }
  }
  for (auto& [id, s] : d.sessions) {
    d.close_session(s, CloseCode::kGoingAway, "server shutting down");
  }
}

EngineStats Engine::stats() const {
  EngineStats s = impl_->stats;
  s.pending_commits = impl_->pending_sends;
  s.users_online = impl_->presence.online_users();
  return s;
}

const EngineOptions& Engine::options() const { return impl_->options; }

}  // namespace chatcore
