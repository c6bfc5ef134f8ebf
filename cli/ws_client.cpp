#include "ws_client.hpp"

#include <libwebsockets.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>
#include <random>
#include <span>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "errors.hpp"

namespace chatcore::cli {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kSubprotocol = "chatcore.v1";
// A Deliver of a 100,000-character body is up to ~400 KB; anything past
// this is not a frame of ours and only costs memory.
constexpr std::size_t kMaxInboundBytes = 1024 * 1024;
constexpr milliseconds kTick{200};
constexpr milliseconds kBackoffFirst{500};
constexpr milliseconds kBackoffMax{30000};
constexpr milliseconds kCloseGrace{2000};
constexpr milliseconds kWelcomeTimeout{10000};
constexpr std::uint64_t kHelloRequestId = 1;

// Closes that a reconnect cannot fix (docs/protocol.md, close codes).
constexpr int kCloseProtocolViolation = 4000;
constexpr int kCloseUnauthenticated = 4001;
constexpr int kCloseMalformedFrame = 4002;
constexpr int kCloseFrameTooLarge = 4003;

const char* close_name(int code) {
  switch (code) {
    case 1000:
      return "normal";
    case 1001:
      return "going away";
    case 1006:
      return "abnormal";
    case 4000:
      return "protocol_violation";
    case 4001:
      return "unauthenticated";
    case 4002:
      return "malformed_frame";
    case 4003:
      return "frame_too_large";
    case 4008:
      return "slow_consumer";
    case 4009:
      return "heartbeat_timeout";
    default:
      return "unknown";
  }
}

class TailSession {
 public:
  TailSession(const TailConfig& config, TailHandler& handler)
      : config_(config), handler_(handler), rng_(std::random_device{}()) {
    cursor_ = config.cursor.value_or(std::numeric_limits<std::uint64_t>::max());
    cursor_known_ = config.cursor.has_value();
  }

  int run();

  // ---- lws side (called from callback()) ----
  int on_lws_event(lws* wsi, lws_callback_reasons reason, void* in, std::size_t len);

  std::atomic<bool> stop_requested{false};

  // From the signal thread: interrupt lws_service(). The mutex keeps the
  // context from being destroyed between the check and the call.
  void wake() {
    std::lock_guard lock(context_mu_);
    if (context_ != nullptr) lws_cancel_service(context_);
  }

 private:
  void parse_url();
  void connect();
  void begin_stop();
  void tick();
  void process_inbound();
  void handle_frame(const wire::Frame& frame);
  void handle_disconnect();
  void queue(std::vector<std::uint8_t> frame);
  void schedule_tick();
  static void on_tick(lws_sorted_usec_list_t* sul);

  const TailConfig& config_;
  TailHandler& handler_;
  std::mutex context_mu_;
  lws_context* context_ = nullptr;  // written under context_mu_, only by run()
  std::mt19937_64 rng_;

  // URL pieces (point into url_buffer_, which lws_parse_uri cuts up).
  std::vector<char> url_buffer_;
  std::string address_;
  std::string path_;
  int port_ = 0;
  bool tls_ = false;

  struct Tick {
    lws_sorted_usec_list_t sul;  // first member: on_tick() casts back
    TailSession* owner;
  } tick_{};

  // Connection state. wsi_ is non-null from connect() until CLOSED/ERROR.
  lws* wsi_ = nullptr;
  bool established_ = false;
  Clock::time_point established_at_{};
  bool closing_ = false;       // send a close frame at the next WRITEABLE
  bool disconnected_ = false;  // the lws side saw the end; handled in the loop
  int close_code_ = 0;
  std::string close_reason_;
  std::string connect_error_;
  std::vector<std::uint8_t> rx_;
  bool rx_overflow_ = false;
  std::deque<std::vector<std::uint8_t>> inbound_;
  std::deque<std::vector<std::uint8_t>> outbound_;

  // Session state, handled outside callbacks.
  bool welcomed_ = false;       // this connection
  bool welcomed_ever_ = false;  // any connection of this run
  bool auth_refused_ = false;
  std::string refusal_;
  std::uint64_t cursor_ = 0;
  bool cursor_known_ = false;
  std::uint64_t next_request_id_ = kHelloRequestId + 1;
  milliseconds heartbeat_interval_{5000};
  milliseconds silence_limit_{30000};
  Clock::time_point last_heartbeat_{};
  Clock::time_point last_inbound_{};
  milliseconds backoff_ = kBackoffFirst;
  Clock::time_point next_connect_{};
  bool stopping_ = false;
  Clock::time_point stop_deadline_{};
};

int callback(lws* wsi, lws_callback_reasons reason, void* /*user*/, void* in, std::size_t len) {
  lws_context* ctx = lws_get_context(wsi);
  auto* session = ctx != nullptr ? static_cast<TailSession*>(lws_context_user(ctx)) : nullptr;
  if (session == nullptr) return 0;
  return session->on_lws_event(wsi, reason, in, len);
}

// Written by callbacks only for the wsi they were given; they never call
// into the handler (see the header: the loop does that).
int TailSession::on_lws_event(lws* wsi, lws_callback_reasons reason, void* in, std::size_t len) {
  switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
      if (wsi != wsi_) return 0;
      established_ = true;
      established_at_ = Clock::now();
      queue(encode_hello(kHelloRequestId, config_.token, config_.device_id, cursor_));
      return 0;

    case LWS_CALLBACK_CLIENT_RECEIVE: {
      if (wsi != wsi_) return 0;
      if (rx_.size() + len > kMaxInboundBytes) {
        rx_overflow_ = true;
        return -1;
      }
      const auto* bytes = static_cast<const std::uint8_t*>(in);
      rx_.insert(rx_.end(), bytes, bytes + len);
      if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
        // Text messages are not part of the protocol; drop them.
        if (lws_frame_is_binary(wsi)) inbound_.push_back(std::move(rx_));
        rx_.clear();
      }
      return 0;
    }

    case LWS_CALLBACK_CLIENT_WRITEABLE: {
      if (wsi != wsi_) return 0;
      if (closing_) {
        static const char kBye[] = "bye";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL,
                         reinterpret_cast<unsigned char*>(const_cast<char*>(kBye)),
                         sizeof(kBye) - 1);
        return -1;  // lws sends the close frame and waits for the echo
      }
      if (outbound_.empty()) return 0;
      std::vector<std::uint8_t>& frame = outbound_.front();
      // lws needs LWS_PRE writable bytes before the payload for the header.
      std::vector<unsigned char> buffer(LWS_PRE + frame.size());
      std::memcpy(buffer.data() + LWS_PRE, frame.data(), frame.size());
      int n = lws_write(wsi, buffer.data() + LWS_PRE, frame.size(), LWS_WRITE_BINARY);
      if (n < static_cast<int>(frame.size())) return -1;
      outbound_.pop_front();
      if (!outbound_.empty()) lws_callback_on_writable(wsi);
      return 0;
    }

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
      if (wsi != wsi_) return 0;
      // Payload: 2 bytes of status (network order), then a UTF-8 reason.
      if (len >= 2) {
        const auto* p = static_cast<const unsigned char*>(in);
        close_code_ = (p[0] << 8) | p[1];
        close_reason_.assign(reinterpret_cast<const char*>(p) + 2, len - 2);
      }
      return 0;

    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
      if (wsi != wsi_ && wsi_ != nullptr) return 0;
      // `in` is a C string or null; `len` is not always set for this reason.
      if (in != nullptr) {
        const char* text = static_cast<const char*>(in);
        connect_error_ = len > 0 ? std::string(text, ::strnlen(text, len)) : std::string(text);
      }
      if (connect_error_.empty()) connect_error_ = "connection failed";
      wsi_ = nullptr;
      disconnected_ = true;
      return 0;

    case LWS_CALLBACK_CLIENT_CLOSED:
      if (wsi != wsi_) return 0;
      wsi_ = nullptr;
      disconnected_ = true;
      return 0;

    default:
      return 0;
  }
}

void TailSession::queue(std::vector<std::uint8_t> frame) {
  outbound_.push_back(std::move(frame));
  if (wsi_ != nullptr && established_) lws_callback_on_writable(wsi_);
}

void TailSession::parse_url() {
  url_buffer_.assign(config_.ws_url.begin(), config_.ws_url.end());
  url_buffer_.push_back('\0');
  const char* prot = nullptr;
  const char* address = nullptr;
  const char* path = nullptr;
  if (lws_parse_uri(url_buffer_.data(), &prot, &address, &port_, &path) != 0 ||
      address == nullptr || address[0] == '\0') {
    throw CliError(kExitUsage, "usage", fmt::format("bad WebSocket URL: {}", config_.ws_url));
  }
  std::string scheme = prot != nullptr ? prot : "";
  if (scheme != "ws" && scheme != "wss") {
    throw CliError(kExitUsage, "usage",
                   fmt::format("WebSocket URL must be ws:// or wss://: {}", config_.ws_url));
  }
  tls_ = scheme == "wss";
  address_ = address;
  // lws_parse_uri drops the path's leading '/'.
  path_ = std::string("/") + (path != nullptr ? path : "");
}

void TailSession::connect() {
  established_ = false;
  closing_ = false;
  disconnected_ = false;
  close_code_ = 0;
  close_reason_.clear();
  connect_error_.clear();
  rx_.clear();
  rx_overflow_ = false;
  outbound_.clear();
  welcomed_ = false;

  lws_client_connect_info ci{};
  ci.context = context_;
  ci.address = address_.c_str();
  ci.port = port_;
  ci.path = path_.c_str();
  ci.host = address_.c_str();
  ci.origin = address_.c_str();
  ci.protocol = kSubprotocol;
  ci.ssl_connection = tls_ ? LCCSCF_USE_SSL : 0;
  ci.pwsi = &wsi_;
  if (lws_client_connect_via_info(&ci) == nullptr) {
    // Failed synchronously (e.g. name resolution); the ERROR callback may
    // or may not have run. Either way this attempt is over.
    wsi_ = nullptr;
    disconnected_ = true;
    if (connect_error_.empty()) connect_error_ = "connection failed";
  }
}

void TailSession::begin_stop() {
  if (stopping_) return;
  stopping_ = true;
  stop_deadline_ = Clock::now() + kCloseGrace;
  if (wsi_ == nullptr) return;
  if (established_) {
    // A clean close makes the user offline at once (docs/protocol.md,
    // lifecycle 5), where a dropped socket would keep them "online" for
    // the presence timeout.
    closing_ = true;
    lws_callback_on_writable(wsi_);
  } else {
    lws_set_timeout(wsi_, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
  }
}

void TailSession::schedule_tick() {
  lws_sul_schedule(context_, 0, &tick_.sul, &TailSession::on_tick,
                   std::chrono::duration_cast<std::chrono::microseconds>(kTick).count());
}

void TailSession::on_tick(lws_sorted_usec_list_t* sul) {
  // The tick exists to make lws_service() return regularly, so the loop
  // can send heartbeats and reconnect; it does nothing itself.
  reinterpret_cast<Tick*>(sul)->owner->schedule_tick();
}

void TailSession::tick() {
  auto now = Clock::now();
  if (wsi_ == nullptr || stopping_) return;
  if (!welcomed_) {
    // Upgraded but no Welcome: a server that never answers Hello would
    // otherwise hold this connection forever.
    if (established_ && now - established_at_ > kWelcomeTimeout) {
      connect_error_ = "no Welcome from the server";
      lws_set_timeout(wsi_, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
      established_at_ = now;
    }
    return;
  }
  if (now - last_heartbeat_ >= heartbeat_interval_) {
    last_heartbeat_ = now;
    queue(encode_heartbeat(next_request_id_++));
  }
  // The server answers every Heartbeat; total silence for the presence
  // timeout means a half-open connection that TCP alone may not notice for
  // many minutes. Drop it and reconnect.
  if (now - last_inbound_ > silence_limit_) {
    handler_.on_status("no answer from the server: reconnecting");
    lws_set_timeout(wsi_, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    last_inbound_ = now;  // one note per dead connection, not one per tick
  }
}

void TailSession::process_inbound() {
  while (!inbound_.empty()) {
    std::vector<std::uint8_t> bytes = std::move(inbound_.front());
    inbound_.pop_front();
    last_inbound_ = Clock::now();
    const wire::Frame* frame = verify_frame(std::span<const std::uint8_t>(bytes));
    if (frame == nullptr) {
      handler_.on_status("ignored a frame that failed verification");
      continue;
    }
    handle_frame(*frame);
    if (stopping_) break;
  }
}

void TailSession::handle_frame(const wire::Frame& frame) {
  switch (frame.body_type()) {
    case wire::Body::Welcome: {
      const wire::Welcome* w = frame.body_as_Welcome();
      welcomed_ = true;
      welcomed_ever_ = true;
      backoff_ = kBackoffFirst;
      if (w->heartbeat_ms() > 0) heartbeat_interval_ = milliseconds(w->heartbeat_ms());
      silence_limit_ = std::max(milliseconds(w->presence_timeout_ms()), 3 * heartbeat_interval_);
      last_heartbeat_ = Clock::now();
      // The server clamps a cursor beyond its inbox to the head (a fresh
      // device asking for "from now on", or a wiped server): adopt it.
      if (!cursor_known_ || cursor_ > w->inbox_head()) {
        cursor_ = w->inbox_head();
        cursor_known_ = true;
        handler_.on_cursor(cursor_);
      }
      handler_.on_welcome(*w, cursor_);
      return;
    }
    case wire::Body::Deliver: {
      const wire::Deliver* d = frame.body_as_Deliver();
      if (d->message() == nullptr) return;
      std::uint64_t seq = d->inbox_seq();
      if (seq <= cursor_) return;  // already shown (docs/protocol.md: the cursor rule)
      if (seq != cursor_ + 1) {
        handler_.on_status(fmt::format("inbox gap: seq {} after {}", seq, cursor_));
      }
      if (!handler_.on_deliver(seq, *d->message())) {
        begin_stop();
        return;
      }
      // Advance only after the handler has shown it: a crash in between
      // shows it again next time rather than never.
      cursor_ = seq;
      handler_.on_cursor(cursor_);
      return;
    }
    case wire::Body::Presence:
      handler_.on_presence(*frame.body_as_Presence());
      return;
    case wire::Body::Error: {
      const wire::Error* e = frame.body_as_Error();
      std::string name = e->name() != nullptr ? e->name()->str() : "error";
      std::string message = e->message() != nullptr ? e->message()->str() : "";
      if (name == "unauthenticated") {
        auth_refused_ = true;
        refusal_ = message;
      } else {
        handler_.on_status(fmt::format("server error {}: {}", name, message));
      }
      return;
    }
    default:
      return;  // HeartbeatAck and anything newer than this client
  }
}

void TailSession::handle_disconnect() {
  disconnected_ = false;
  welcomed_ = false;
  established_ = false;
  if (stopping_) return;
  if (auth_refused_ || close_code_ == kCloseUnauthenticated) {
    throw CliError(kExitUnauthenticated, "unauthenticated",
                   fmt::format("the server refused the token{}{}: log in again",
                               refusal_.empty() ? "" : ": ", refusal_));
  }
  if (close_code_ == kCloseProtocolViolation || close_code_ == kCloseMalformedFrame ||
      close_code_ == kCloseFrameTooLarge) {
    throw CliError(kExitRefused, close_name(close_code_),
                   fmt::format("the server closed the connection: {} {} {}", close_code_,
                               close_name(close_code_), close_reason_));
  }
  std::string why;
  if (!connect_error_.empty()) {
    why = connect_error_;
  } else if (rx_overflow_) {
    why = "inbound message over 1 MiB";
  } else if (close_code_ != 0) {
    why = fmt::format("close {} {}", close_code_, close_name(close_code_));
    if (!close_reason_.empty()) why += ": " + close_reason_;
  } else {
    why = "connection lost";
  }
  if (!welcomed_ever_) {
    throw CliError(kExitUnavailable, "network_error",
                   fmt::format("cannot open {}: {}", config_.ws_url, why));
  }
  // Full jitter over [backoff/2, backoff]: many clients dropped by one
  // server restart do not all come back in the same instant.
  // (A Welcome resets the backoff, so a server that accepts and then
  // drops again is retried quickly once, then ever more slowly.)
  auto half = backoff_.count() / 2;
  milliseconds delay(half + static_cast<long>(rng_() % static_cast<std::uint64_t>(half + 1)));
  next_connect_ = Clock::now() + delay;
  backoff_ = std::min(backoff_ * 2, kBackoffMax);
  handler_.on_status(fmt::format("disconnected ({}); reconnecting in {:.1f} s", why,
                                 static_cast<double>(delay.count()) / 1000.0));
}

int TailSession::run() {
  parse_url();

  lws_set_log_level(config_.verbose ? (LLL_ERR | LLL_WARN | LLL_NOTICE) : 0, nullptr);
  static const lws_protocols kProtocols[] = {
      {kSubprotocol, callback, 0, 64 * 1024, 0, nullptr, 0},
      {nullptr, nullptr, 0, 0, 0, nullptr, 0},
  };
  lws_context_creation_info info{};
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = kProtocols;
  info.gid = -1;
  info.uid = -1;
  info.user = this;
  if (tls_) info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  lws_context* ctx = lws_create_context(&info);
  if (ctx == nullptr) throw CliError(kExitUnavailable, "internal", "lws_create_context failed");
  {
    std::lock_guard lock(context_mu_);
    context_ = ctx;
  }
  tick_.owner = this;
  schedule_tick();

  // Destroys the context on every exit path (a handler or a fatal close
  // throws); the tick must not fire into a destroyed session.
  struct ContextGuard {
    TailSession* s;
    ~ContextGuard() {
      lws_sul_cancel(&s->tick_.sul);
      lws_context* c = nullptr;
      {
        std::lock_guard lock(s->context_mu_);
        std::swap(c, s->context_);
      }
      lws_context_destroy(c);
    }
  } guard{this};

  next_connect_ = Clock::now();
  while (true) {
    if (stop_requested.load()) begin_stop();
    if (stopping_ && (wsi_ == nullptr || Clock::now() >= stop_deadline_)) break;
    if (!stopping_ && wsi_ == nullptr && !disconnected_ && Clock::now() >= next_connect_) {
      connect();
    }
    lws_service(ctx, 0);
    process_inbound();
    if (auth_refused_ && wsi_ != nullptr && !stopping_) {
      // The server closes with 4001 right after the Error; do not wait on it.
      lws_set_timeout(wsi_, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
    if (disconnected_) handle_disconnect();
    tick();
  }
  return kExitOk;
}

// Blocks SIGINT/SIGTERM in every thread (the mask is inherited by threads
// libcurl's resolver or anything else creates later) and waits for them on
// one thread, which asks the session to stop. A second signal while the
// clean close is in progress exits at once.
class SignalStopper {
 public:
  explicit SignalStopper(TailSession& session) : session_(session) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, &saved_);
    thread_ = std::thread([this] { wait_loop(); });
  }
  ~SignalStopper() {
    done_.store(true);
    thread_.join();
    pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
  }
  SignalStopper(const SignalStopper&) = delete;
  SignalStopper& operator=(const SignalStopper&) = delete;

 private:
  void wait_loop() {
    const timespec poll{0, 200 * 1000 * 1000};
    while (!done_.load()) {
      int sig = sigtimedwait(&set_, nullptr, &poll);
      if (sig < 0) continue;  // EAGAIN (timeout) or EINTR
      if (session_.stop_requested.exchange(true)) std::_Exit(128 + sig);
      session_.wake();
    }
  }

  TailSession& session_;
  sigset_t set_{};
  sigset_t saved_{};
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace

int run_tail(const TailConfig& config, TailHandler& handler) {
  TailSession session(config, handler);
  SignalStopper stopper(session);
  return session.run();
}

}  // namespace chatcore::cli
