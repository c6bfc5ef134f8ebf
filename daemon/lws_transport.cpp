#include "lws_transport.hpp"

#include <arpa/inet.h>

#include <cstring>
#include <string_view>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "chatcore/protocol.hpp"
#include "json_util.hpp"
#include "log.hpp"

namespace chatcored {

using chatcore::CloseCode;
using chatcore::Status;

namespace {

// Per-connection rx buffer of the WebSocket protocol: lws allocates it for
// every connection when the WebSocket opens, idle or not, so it is most of
// what an idle connection costs. A message that fits is handed to the
// engine straight from it (LwsSession::append_fragment); a larger one
// arrives in several RECEIVE callbacks and is reassembled up to
// Limits::max_frame_bytes, at the price of a copy. 256 bytes holds a
// Heartbeat, a Hello, a MarkRead and a Send with a ~150-byte body; a 400 KB
// message takes ~1,600 callbacks of a small memcpy each, which is little
// next to its UTF-8 validation. 64 KiB here made an idle connection cost
// 6.4 KiB (docs/benchmarks.md, idle scenario).
constexpr std::size_t kWsRxBufferBytes = 256;
// Largest single socket write for WebSocket frames; the rest of a larger
// frame is buffered by lws and written on the following POLLOUTs.
constexpr std::size_t kWsTxPacketBytes = 256 * 1024;
// lws' per-thread service buffer (HTTP headers, file chunks).
constexpr unsigned int kServiceBufferBytes = 64 * 1024;

constexpr std::string_view kApiPrefix = "/api/v1/";

// The lws callback mounts (LwsTransport::start): a path equal to one of
// them or below it.
bool under_callback_mount(std::string_view path) {
  for (std::string_view mount : {"/api", "/livez", "/readyz", "/metrics"}) {
    if (path.starts_with(mount) && (path.size() == mount.size() || path[mount.size()] == '/')) {
      return true;
    }
  }
  return false;
}

bool is_ipv4_literal(const std::string& host) {
  in_addr addr{};
  return inet_pton(AF_INET, host.c_str(), &addr) == 1;
}

// application/x-www-form-urlencoded escaping of one query component.
void append_query_escaped(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
}

// lws splits the query at '&' and percent-decodes each "name=value" piece
// before we see it. HttpApi takes the raw query string, so re-encode each
// piece: that keeps an encoded '&' or '=' inside a value unambiguous.
std::string rebuild_query(lws* wsi) {
  std::string query;
  char buf[2048];
  for (int i = 0;; ++i) {
    int n = lws_hdr_copy_fragment(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_URI_ARGS, i);
    if (n < 0) break;
    std::string_view piece(buf, static_cast<std::size_t>(n));
    if (piece.empty()) continue;
    if (!query.empty()) query += '&';
    auto eq = piece.find('=');
    append_query_escaped(query, piece.substr(0, eq));
    if (eq != std::string_view::npos) {
      query += '=';
      append_query_escaped(query, piece.substr(eq + 1));
    }
  }
  return query;
}

std::string header(lws* wsi, lws_token_indexes token) {
  int len = lws_hdr_total_length(wsi, token);
  if (len <= 0) return {};
  std::string value(static_cast<std::size_t>(len) + 1, '\0');
  int n = lws_hdr_copy(wsi, value.data(), len + 1, token);
  if (n < 0) return {};
  value.resize(static_cast<std::size_t>(n));
  return value;
}

std::string peer_address(lws* wsi) {
  char buf[64] = {0};
  const char* peer = lws_get_peer_simple(wsi, buf, sizeof(buf));
  return peer ? std::string(peer) : std::string("?");
}

HttpResponse json_error(int http_status, const Status& status) {
  return HttpResponse{http_status, "application/json",
                      json_util::dump(json_util::error_body(status))};
}

HttpResponse text(int http_status, std::string body) {
  return HttpResponse{http_status, "text/plain; charset=utf-8", std::move(body)};
}

constexpr const char* kMethodNames[] = {"GET",    "POST",    "OPTIONS", "PUT", "PATCH",
                                        "DELETE", "CONNECT", "HEAD",    "GET"};

}  // namespace

// ---- construction and the service loop -----------------------------------------------

LwsTransport::LwsTransport(TransportOptions options, chatcore::Engine& engine, HttpApi& api,
                           Metrics& metrics)
    : options_(std::move(options)),
      engine_(engine),
      api_(api),
      metrics_(metrics),
      // The queue cap is a last line of defence above the engine's hard
      // limit (LwsSession::send).
      session_context_{options_.max_frame_bytes,
                       2 * options_.outbound_hard_bytes + options_.max_frame_bytes,
                       engine.options().limits.outbound_soft_bytes,
                       metrics,
                       {}} {}

LwsTransport::~LwsTransport() {
  {
    std::lock_guard lock(waker_->mu);
    waker_->context = nullptr;
  }
  destroy_context();
}

void LwsTransport::destroy_context() {
  if (context_) {
    lws_sul_cancel(&tick_.sul);
    lws_context_destroy(context_);
    if (uv_loop_) {
      // On a foreign loop lws 4.1 closes its libuv handles asynchronously
      // and frees the context only when destroyed again after they have
      // closed: run their close callbacks, then finish.
      uv_run(uv_loop_.get(), UV_RUN_DEFAULT);
      lws_context_destroy(context_);
    }
    context_ = nullptr;
  }
  if (uv_loop_) {
    uv_run(uv_loop_.get(), UV_RUN_DEFAULT);
    if (uv_loop_close(uv_loop_.get()) != 0) spdlog::warn("uv_loop_close: handles left open");
    uv_loop_.reset();
  }
}

Status LwsTransport::start() {
  // One protocol serves both HTTP and WebSocket. lws binds every new
  // connection to the vhost's default protocol (protocols[0]), a WebSocket
  // that names no subprotocol stays on it, and one that names
  // "chatcore.v1" finds it by name: so every client lands on the same
  // callback whatever it sent.
  protocols_[0].name = kProtocolName;
  protocols_[0].callback = &LwsTransport::callback;
  protocols_[0].rx_buffer_size = kWsRxBufferBytes;
  protocols_[0].tx_packet_size = kWsTxPacketBytes;
  // protocols_[1] stays zeroed: the terminator.

  // Types lws does not know by itself; anything else unknown is refused
  // (415) rather than sent without a type.
  static constexpr std::pair<const char*, const char*> kExtraTypes[] = {
      {".json", "application/json"}, {".mjs", "text/javascript"},
      {".map", "application/json"},  {".wasm", "application/wasm"},
      {".webp", "image/webp"},       {".woff2", "font/woff2"},
      {".fbs", "text/plain"},        {".webmanifest", "application/manifest+json"}};
  mimetypes_.resize(std::size(kExtraTypes));
  for (std::size_t i = 0; i < mimetypes_.size(); ++i) {
    mimetypes_[i].name = kExtraTypes[i].first;
    mimetypes_[i].value = kExtraTypes[i].second;
    mimetypes_[i].next = i + 1 < mimetypes_.size() ? &mimetypes_[i + 1] : nullptr;
  }

  auto callback_mount = [this](lws_http_mount& m, const char* point) {
    m.mountpoint = point;
    m.mountpoint_len = static_cast<unsigned char>(std::strlen(point));
    m.origin = kProtocolName;  // "callback://chatcore.v1": our callback
    m.origin_protocol = LWSMPRO_CALLBACK;
  };
  callback_mount(mounts_[0], "/api");
  callback_mount(mounts_[1], "/livez");
  callback_mount(mounts_[2], "/readyz");
  callback_mount(mounts_[3], "/metrics");
  mounts_[4].mountpoint = "/";
  mounts_[4].mountpoint_len = 1;
  mounts_[4].origin = options_.web_root.c_str();
  mounts_[4].def = "index.html";
  mounts_[4].origin_protocol = LWSMPRO_FILE;
  mounts_[4].extra_mimetypes = mimetypes_.data();
  for (std::size_t i = 0; i + 1 < mounts_.size(); ++i) mounts_[i].mount_next = &mounts_[i + 1];

  lws_context_creation_info info;
  std::memset(&info, 0, sizeof(info));
  info.port = options_.listen.port;
  iface_ = options_.listen.host;
  if (iface_ == "0.0.0.0" || iface_ == "::") {
    // lws binds every address when no interface is named; "::" keeps IPv6
    // on (a dual-stack socket), "0.0.0.0" turns it off.
    if (iface_ == "0.0.0.0") info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    info.iface = nullptr;
  } else {
    if (is_ipv4_literal(iface_)) info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    info.iface = iface_.c_str();
  }
  info.protocols = protocols_.data();
  info.mounts = mounts_.data();
  info.user = this;
  info.vhost_name = "default";
  info.server_string = "chatcored";
  info.pt_serv_buf_size = kServiceBufferBytes;
  info.count_threads = 1;
  if (!options_.tls_cert.empty()) {
    info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.ssl_cert_filepath = options_.tls_cert.c_str();
    info.ssl_private_key_filepath = options_.tls_key.c_str();
    // WebSocket over HTTP/2 (RFC 8441) is not something our clients speak;
    // offering only http/1.1 keeps every connection on one code path.
    info.alpn = "http/1.1";
  }

  void* foreign_loops[1] = {nullptr};
  if (options_.event_loop == EventLoop::kEpoll) {
    // Our own libuv loop, handed to lws as a "foreign" loop: lws registers
    // its sockets, timers and cancel pipe on it, and run() drives it one
    // pass at a time. The plugin is libwebsockets-evlib_uv.so.
    uv_loop_ = std::make_unique<uv_loop_t>();
    if (int rc = uv_loop_init(uv_loop_.get()); rc != 0) {
      uv_loop_.reset();
      return Status::unavailable(fmt::format("uv_loop_init: {}", uv_strerror(rc)));
    }
    foreign_loops[0] = uv_loop_.get();
    info.foreign_loops = foreign_loops;
    info.options |= LWS_SERVER_OPTION_LIBUV;
  }

  context_ = lws_create_context(&info);
  // On a foreign loop lws 4.1 defers a fatal error: when the vhost cannot
  // be created (port in use, bad TLS files) it returns a context that is
  // already being destroyed instead of null. It then has no vhost.
  if (context_ && uv_loop_ && !lws_get_vhost_by_name(context_, "default")) {
    // lws has made the first destroy call itself: let its handles close,
    // then make the final one.
    uv_run(uv_loop_.get(), UV_RUN_DEFAULT);
    lws_context_destroy(context_);
    context_ = nullptr;
    destroy_context();
    return Status::unavailable(
        fmt::format("cannot listen on {} (see the lws error above)", options_.listen.to_string()));
  }
  if (!context_ && uv_loop_) {
    destroy_context();
    return Status::unavailable(
        fmt::format("cannot listen on {} with event_loop = \"epoll\" (see the lws error above; is "
                    "libwebsockets-evlib-uv installed? event_loop = \"poll\" needs no plugin)",
                    options_.listen.to_string()));
  }
  if (!context_) {
    return Status::unavailable(
        fmt::format("cannot listen on {} (see the lws error above)", options_.listen.to_string()));
  }
  {
    std::lock_guard lock(waker_->mu);
    waker_->context = context_;
  }
  engine_.set_wakeup([waker = waker_] { waker->wake(); });
  tick_.owner = this;
  lws_sul_schedule(context_, 0, &tick_.sul, &LwsTransport::tick_callback, LWS_US_PER_SEC);
  spdlog::info("listening address={} port={} tls={} event_loop={} web_root={}",
               options_.listen.host, port(), options_.tls_cert.empty() ? "off" : "on",
               uv_loop_ ? "epoll" : "poll", log_quote(options_.web_root));
  return Status::ok();
}

int LwsTransport::port() const {
  if (!context_) return -1;
  lws_vhost* vhost = lws_get_vhost_by_name(context_, "default");
  return vhost ? lws_get_vhost_listen_port(vhost) : -1;
}

void LwsTransport::run() {
  for (;;) {
    if (uv_loop_) {
      // One pass: wait for whatever is ready (sockets, lws' timers, the
      // cancel pipe that Waker::wake() writes), handle it, return.
      uv_run(uv_loop_.get(), UV_RUN_ONCE);
    } else if (lws_service(context_, 0) < 0) {
      spdlog::error("lws_service_failed");
      return;
    }
    engine_.flush_sends();
    flush_dirty_sessions();
    if (draining_) {
      if (drained()) {
        spdlog::info("drain_complete");
        return;
      }
      if (std::chrono::steady_clock::now() >= drain_deadline_) {
        spdlog::warn("drain_timeout ws_connections={} http_in_flight={}", sessions_.size(),
                     exchanges_.size());
        return;
      }
    }
  }
}

void LwsTransport::flush_dirty_sessions() {
  // A flush never queues frames itself, but swap anyway so the loop never
  // walks a vector that could grow under it.
  flushing_.swap(session_context_.dirty);
  for (LwsSession* session : flushing_) {
    if (!session->flush()) {
      // The socket failed. Outside a callback there is no -1 to return:
      // ask lws to close the connection on its next pass instead.
      if (lws* wsi = session->wsi())
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
  }
  flushing_.clear();
}

void LwsTransport::request_stop() {
  stop_requested_.store(true, std::memory_order_release);
  waker_->wake();
}

void LwsTransport::Waker::wake() {
  std::lock_guard lock(mu);
  if (context) lws_cancel_service(context);
}

void LwsTransport::on_wait_cancelled() {
  engine_.poll();
  if (stop_requested_.load(std::memory_order_acquire) && !draining_) begin_drain();
}

void LwsTransport::tick_callback(lws_sorted_usec_list_t* sul) {
  auto* timer = reinterpret_cast<TickTimer*>(sul);
  timer->owner->on_tick();
}

void LwsTransport::on_tick() {
  if (!draining_) engine_.tick();
  // Re-arm. While draining the timer also makes run() re-check the drain
  // deadline even when no connection has anything to say.
  lws_sul_schedule(context_, 0, &tick_.sul, &LwsTransport::tick_callback, LWS_US_PER_SEC);
}

void LwsTransport::begin_drain() {
  draining_ = true;
  drain_deadline_ = std::chrono::steady_clock::now() + options_.drain_timeout;
  spdlog::info("drain_start ws_connections={} http_in_flight={} timeout_ms={}", sessions_.size(),
               exchanges_.size(), options_.drain_timeout.count());
  // Commits everything accepted, acks it, closes every session 1001.
  engine_.shutdown();
}

bool LwsTransport::drained() const {
  // An exchange leaves the map once its response is written, so an idle
  // keep-alive connection holds nothing back.
  return sessions_.empty() && exchanges_.empty();
}

// ---- lws callbacks ---------------------------------------------------------------------

int LwsTransport::callback(lws* wsi, lws_callback_reasons reason, void* user, void* in,
                           std::size_t len) {
  auto* self = static_cast<LwsTransport*>(lws_context_user(lws_get_context(wsi)));
  if (!self) return lws_callback_http_dummy(wsi, reason, user, in, len);
  return self->on_event(wsi, reason, user, in, len);
}

int LwsTransport::on_event(lws* wsi, lws_callback_reasons reason, void* user, void* in,
                           std::size_t len) {
  switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
      on_wait_cancelled();
      return 0;

    // ---- HTTP ----
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
      return confirm_upgrade(wsi);

    case LWS_CALLBACK_HTTP:
      return begin_request(wsi);

    case LWS_CALLBACK_HTTP_FILE_COMPLETION:
      // A static file was sent: ready the keep-alive connection for its next
      // request (without this, a request after a file hangs or gets stale headers).
      return lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_HTTP_BODY: {
      auto it = exchanges_.find(wsi);
      if (it != exchanges_.end() && in && len) it->second->append_body(in, len);
      return 0;
    }

    case LWS_CALLBACK_HTTP_BODY_COMPLETION: {
      auto it = exchanges_.find(wsi);
      if (it != exchanges_.end() && !it->second->answered()) dispatch(it->second);
      return 0;
    }

    case LWS_CALLBACK_HTTP_WRITEABLE:
      return write_response(wsi);

    case LWS_CALLBACK_CLOSED_HTTP:
      drop_exchange(wsi);
      return 0;

    // ---- WebSocket ----
    case LWS_CALLBACK_ESTABLISHED:
      return ws_established(wsi);

    case LWS_CALLBACK_RECEIVE:
      return ws_receive(wsi, in, len);

    case LWS_CALLBACK_SERVER_WRITEABLE:
      return ws_writable(wsi);

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
      if (LwsSession* session = session_of(wsi)) session->peer_sent_close();
      return 0;

    case LWS_CALLBACK_CLOSED:
      ws_closed(wsi);
      return 0;

    // ---- both ----
    case LWS_CALLBACK_WSI_DESTROY:
      // The last word on any connection: nothing of ours may outlive it.
      drop_exchange(wsi);
      ws_closed(wsi);
      return 0;

    default:
      // Binding, file serving, TLS housekeeping: lws' defaults.
      return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}

void LwsTransport::drop_exchange(lws* wsi) {
  // The connection is gone; a late response finds the exchange detached.
  auto it = exchanges_.find(wsi);
  if (it == exchanges_.end()) return;
  it->second->detach();
  exchanges_.erase(it);
}

int LwsTransport::confirm_upgrade(lws* wsi) {
  std::string uri = header(wsi, WSI_TOKEN_GET_URI);
  int status = 0;
  if (uri != "/ws") {
    status = HTTP_STATUS_NOT_FOUND;
  } else if (draining_) {
    status = HTTP_STATUS_SERVICE_UNAVAILABLE;
  }
  if (status == 0) return 0;  // accept: lws goes on with the handshake
  metrics_.ws_upgrade_refused();
  metrics_.http_response(status);
  spdlog::info("ws_upgrade_refused path={} status={} peer={}", log_quote(uri), status,
               peer_address(wsi));
  // Headers written: lws finishes the transaction (return 1 = "handled").
  lws_return_http_status(wsi, static_cast<unsigned int>(status), nullptr);
  return 1;
}

int LwsTransport::begin_request(lws* wsi) {
  char* uri_ptr = nullptr;
  int uri_len = 0;
  int method = lws_http_get_uri_and_method(wsi, &uri_ptr, &uri_len);
  if (method < 0 || method >= static_cast<int>(std::size(kMethodNames)) || !uri_ptr) return -1;

  auto exchange = std::make_shared<HttpExchange>(wsi, options_.http_max_body_bytes);
  if (auto old = exchanges_.find(wsi); old != exchanges_.end()) old->second->detach();
  exchanges_[wsi] = exchange;

  HttpRequest& req = exchange->request();
  req.method = kMethodNames[method];
  req.path.assign(uri_ptr, static_cast<std::size_t>(uri_len));
  req.query = rebuild_query(wsi);
  req.authorization = header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);

  // Does a body follow? lws reads one when Content-Length is present and
  // non-zero, and reports an empty one for a POST that says zero.
  std::string length_text = header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
  auto content_length = chatcore::parse_decimal(length_text);
  bool body_method =
      method == LWSHUMETH_POST || method == LWSHUMETH_PUT || method == LWSHUMETH_PATCH;
  if (body_method && !content_length) {
    // No length (or chunked): lws cannot delimit the body, so the
    // connection cannot be reused after answering.
    exchange->set_response(
        json_error(411, Status::invalid_argument("a request body needs a Content-Length")), true);
    return 0;
  }
  if (content_length && *content_length > options_.http_max_body_bytes) {
    // Answered once the body has been read (and dropped); see HttpExchange.
    exchange->mark_too_large();
  }
  bool body_follows = content_length && (*content_length > 0 || method == LWSHUMETH_POST);
  if (!body_follows) dispatch(exchange);

  // A path outside our callback mounts reaches us only as a miss of the
  // "/" file mount. lws leaves such a connection in a state where it sends
  // no writable callback, so answer (a short error page) right here, as
  // lws' own lws_return_http_status() does.
  if (!body_follows && exchange->answered() && !under_callback_mount(req.path)) {
    HttpExchange::WriteStep step;
    do {
      step = exchange->write_some();
    } while (step == HttpExchange::WriteStep::kMore);
    int status = exchange->response()->status;
    finish_exchange(wsi, status);
    if (step == HttpExchange::WriteStep::kClose) return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
  }
  return 0;
}

void LwsTransport::dispatch(const std::shared_ptr<HttpExchange>& exchange) {
  HttpRequest& req = exchange->request();
  if (exchange->body_too_large()) {
    exchange->set_response(
        json_error(413, Status::too_large(fmt::format("request body over {} bytes",
                                                      options_.http_max_body_bytes))));
    return;
  }
  const std::string& path = req.path;
  bool read_only = req.method == "GET" || req.method == "HEAD";

  if (path == "/livez" || path == "/readyz" || path == "/metrics") {
    if (!read_only) {
      exchange->set_response(
          json_error(405, Status::invalid_argument(req.method + " is not allowed here")));
    } else if (path == "/livez") {
      exchange->set_response(text(200, "ok\n"));
    } else if (path == "/readyz") {
      exchange->set_response(draining_ ? text(503, "draining\n") : text(200, "ready\n"));
    } else {
      exchange->set_response(
          HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", render_metrics()});
    }
    return;
  }
  if (path.starts_with(kApiPrefix)) {
    // The respond function may outlive the connection: it holds the
    // exchange weakly and drops the response if the client has gone.
    std::weak_ptr<HttpExchange> weak = exchange;
    api_.handle(req, [weak](HttpResponse response) {
      if (auto ex = weak.lock(); ex && ex->attached()) ex->set_response(std::move(response));
    });
    return;
  }
  if (path == "/ws") {
    exchange->set_response(json_error(
        426, Status::invalid_argument("this is the WebSocket endpoint: send an Upgrade")));
    return;
  }
  exchange->set_response(json_error(404, Status::not_found("no such path: " + path)));
}

int LwsTransport::write_response(lws* wsi) {
  auto it = exchanges_.find(wsi);
  if (it == exchanges_.end() || !it->second->answered()) return 0;
  std::shared_ptr<HttpExchange> exchange = it->second;
  auto step = exchange->write_some();
  if (step == HttpExchange::WriteStep::kMore) return 0;
  int status = exchange->response()->status;
  const HttpRequest& req = exchange->request();
  // Paths are logged (ids only, no secrets); queries may carry search
  // text, so they are not.
  spdlog::log(status >= 500 ? spdlog::level::warn : spdlog::level::debug,
              "http_response method={} path={} status={} bytes={}", req.method, log_quote(req.path),
              status, exchange->response()->body.size());
  finish_exchange(wsi, status);
  if (step == HttpExchange::WriteStep::kClose) return -1;
  return lws_http_transaction_completed(wsi) ? -1 : 0;
}

void LwsTransport::finish_exchange(lws* wsi, int status) {
  metrics_.http_response(status);
  auto it = exchanges_.find(wsi);
  if (it != exchanges_.end()) {
    it->second->detach();
    exchanges_.erase(it);
  }
}

std::string LwsTransport::render_metrics() const {
  TransportGauges g;
  g.ws_connections = sessions_.size();
  for (const auto& [wsi, exchange] : exchanges_) {
    if (!exchange->answered()) ++g.http_in_flight;
  }
  for (const auto& session : sessions_) g.outbound_queued_bytes += session->queued_bytes();
  g.draining = draining_;
  return metrics_.render(engine_.stats(), g);
}

// ---- WebSocket ---------------------------------------------------------------------------

LwsSession* LwsTransport::session_of(lws* wsi) const {
  // HTTP connections share the callback: only WebSocket ones carry a session.
  return static_cast<LwsSession*>(lws_get_opaque_user_data(wsi));
}

int LwsTransport::ws_writable(lws* wsi) {
  LwsSession* found = session_of(wsi);
  if (!found) return 0;
  // Held for the call: whatever lws does inside it, the session outlives it.
  std::shared_ptr<LwsSession> session = sessions_[found->table_index];
  if (!session->write_pending()) return -1;
  // Below the soft limit again: let the engine resume a paused catch-up (it
  // may queue more frames, which asks for another callback).
  if (session->connected() && !session->close_requested() &&
      session->queued_bytes() < engine_.options().limits.outbound_soft_bytes) {
    engine_.on_writable(session->id());
  }
  return 0;
}

int LwsTransport::ws_established(lws* wsi) {
  auto session = std::make_shared<LwsSession>(wsi, session_context_);
  session->table_index = static_cast<std::uint32_t>(sessions_.size());
  sessions_.push_back(session);
  lws_set_opaque_user_data(wsi, session.get());
  metrics_.ws_opened();
  if (draining_) {
    // Raced with the start of a drain (the upgrade was accepted just before).
    session->close(CloseCode::kGoingAway, "server shutting down");
    return 0;
  }
  session->set_id(engine_.connect(session));
  spdlog::info("ws_open session={} peer={}", session->id(), peer_address(wsi));
  return 0;
}

int LwsTransport::ws_receive(lws* wsi, const void* in, std::size_t len) {
  LwsSession* found = session_of(wsi);
  if (!found) return -1;
  std::shared_ptr<LwsSession> session = sessions_[found->table_index];
  std::span<const std::uint8_t> chunk(static_cast<const std::uint8_t*>(in), in ? len : 0);
  std::span<const std::uint8_t> message;
  switch (session->append_fragment(chunk, &message)) {
    case LwsSession::Fragment::kIncomplete:
      return 0;
    case LwsSession::Fragment::kTooLarge: {
      metrics_.ws_frame_too_large();
      spdlog::info("ws_frame_too_large session={} limit={}", session->id(),
                   options_.max_frame_bytes);
      Status st = Status::too_large(fmt::format("frame over {} bytes", options_.max_frame_bytes));
      session->send(chatcore::encode_error(0, st));
      session->close(CloseCode::kFrameTooLarge, st.message());
      return 0;
    }
    case LwsSession::Fragment::kNotBinary: {
      Status st(chatcore::ErrorCode::kMalformedFrame,
                "text message: chatcore frames are binary WebSocket messages");
      session->send(chatcore::encode_error(0, st));
      session->close(CloseCode::kMalformedFrame, st.message());
      return 0;
    }
    case LwsSession::Fragment::kComplete:
      break;
  }
  metrics_.ws_frame_in(message.size());
  if (session->connected()) engine_.on_frame(session->id(), message);
  session->message_consumed();
  return 0;
}

void LwsTransport::ws_closed(lws* wsi) {
  LwsSession* found = session_of(wsi);
  if (!found) return;
  lws_set_opaque_user_data(wsi, nullptr);  // CLOSED, then WSI_DESTROY: once
  // Swap-remove from the table, keeping the session alive for the rest.
  std::shared_ptr<LwsSession> session = std::move(sessions_[found->table_index]);
  if (found->table_index + 1 != sessions_.size()) {
    sessions_[found->table_index] = std::move(sessions_.back());
    sessions_[found->table_index]->table_index = found->table_index;
  }
  sessions_.pop_back();
  bool clean = session->clean_close();
  session->detach();
  metrics_.ws_closed();
  if (session->connected()) engine_.disconnect(session->id(), clean);
  spdlog::info("ws_close session={} clean={} code={}", session->id(), clean,
               session->close_requested() ? static_cast<int>(session->close_code()) : 0);
}

}  // namespace chatcored
