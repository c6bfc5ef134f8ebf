// LwsTransport: chatcored's network side, on libwebsockets 4.1.
//
// ONE PORT, FOUR KINDS OF TRAFFIC (dispatch by path):
//   /ws              WebSocket upgrade, subprotocol "chatcore.v1" (a client
//                    that names no subprotocol is accepted too); every
//                    binary message is one protocol frame for the Engine.
//   /api/v1/...      HttpApi (JSON), body collected up to the configured cap.
//   /livez /readyz   health: 200 while the process runs / 200 while serving,
//                    503 while draining.
//   /metrics         Prometheus text (Metrics::render).
//   anything else    a static file from the web root ("/" is index.html).
// /api, /livez, /readyz and /metrics are lws callback mounts; "/" is an lws
// file mount, whose misses come back to us and are answered 404. A single
// lws protocol ("chatcore.v1", protocols[0]) handles HTTP and WebSocket
// alike: lws binds every new connection to protocols[0], so this is the
// one arrangement where a client with or without a subprotocol, and every
// HTTP request, reaches the same callback.
//
// HTTP responses may be produced later than the request (HttpApi answers a
// send once it is durable): each request is an HttpExchange, answered on
// LWS_CALLBACK_HTTP_WRITEABLE, and dropped if the connection closes first.
//
// THREADING (engine.hpp, THREADING). The thread that calls run() is the
// engine's owner thread: every lws callback, every Engine call and every
// Session call happens on it. The engine's storage thread only ever calls
// the wakeup function, which is lws_cancel_service(); lws answers it with
// LWS_CALLBACK_EVENT_WAIT_CANCELLED on this thread, where we call
// Engine::poll() (acks, deliveries, delayed HTTP responses). A 1 s lws_sul
// timer calls Engine::tick() (presence expiry, silent sessions).
//
// GRACEFUL STOP. request_stop() (from the signal thread) sets a flag and
// wakes the loop; on the service thread we then: mark the transport
// draining (/readyz 503, new WebSocket upgrades refused 503), call
// Engine::shutdown() (every accepted send is committed and acked, then
// every session is closed 1001), and keep servicing until every
// WebSocket connection has closed and every HTTP request has been answered,
// or drain_timeout passes. run() then returns; the destructor destroys the
// context, which drops whatever is left.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <libwebsockets.h>
#include <uv.h>

#include "chatcore/engine.hpp"
#include "chatcore/status.hpp"
#include "config.hpp"
#include "http_api.hpp"
#include "http_exchange.hpp"
#include "metrics.hpp"
#include "ws_session.hpp"

namespace chatcored {

struct TransportOptions {
  ListenAddress listen;
  std::string web_root;
  std::string tls_cert;  // both set: https/wss only
  std::string tls_key;
  std::size_t max_frame_bytes = 512 * 1024;           // inbound reassembly cap (close 4003)
  std::size_t http_max_body_bytes = 1280 * 1024;      // request body cap (413)
  std::size_t outbound_hard_bytes = 8 * 1024 * 1024;  // the engine's slow-consumer limit
  std::chrono::milliseconds drain_timeout{10'000};
  EventLoop event_loop = EventLoop::kEpoll;
};

class LwsTransport {
 public:
  // The WebSocket subprotocol name.
  static constexpr const char* kProtocolName = "chatcore.v1";

  // `engine`, `api` and `metrics` must outlive the transport. Call on the
  // engine's owner thread.
  LwsTransport(TransportOptions options, chatcore::Engine& engine, HttpApi& api, Metrics& metrics);
  // Destroys the lws context (closing any connection left, each reported to
  // the engine with Engine::disconnect) and detaches the engine's wakeup.
  ~LwsTransport();

  LwsTransport(const LwsTransport&) = delete;
  LwsTransport& operator=(const LwsTransport&) = delete;

  // Creates the lws context and starts listening. kUnavailable if the
  // address cannot be bound or TLS cannot be set up (lws logs the detail).
  chatcore::Status start();
  // The port actually listened on (useful when 0 was asked for).
  int port() const;

  // Services connections until a requested stop has drained (see the file
  // comment). Owner thread.
  void run();

  // ANY THREAD, async-signal-unsafe (call from the signal watcher thread):
  // asks run() to drain and return.
  void request_stop();

 private:
  struct TickTimer {
    lws_sorted_usec_list_t sul;  // first member: the callback casts back
    LwsTransport* owner;
  };

  static int callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, std::size_t len);
  static void tick_callback(lws_sorted_usec_list_t* sul);

  int on_event(lws* wsi, lws_callback_reasons reason, void* user, void* in, std::size_t len);

  // HTTP
  int confirm_upgrade(lws* wsi);
  int begin_request(lws* wsi);
  void dispatch(const std::shared_ptr<HttpExchange>& exchange);
  int write_response(lws* wsi);
  void finish_exchange(lws* wsi, int status);
  void drop_exchange(lws* wsi);
  std::string render_metrics() const;

  // WebSocket
  int ws_established(lws* wsi);
  int ws_receive(lws* wsi, const void* in, std::size_t len);
  int ws_writable(lws* wsi);
  void ws_closed(lws* wsi);

  // End of an event-loop pass: writes what the pass queued on each
  // connection, one coalesced write each (LwsSession, OUTBOUND).
  void flush_dirty_sessions();
  void on_wait_cancelled();
  void on_tick();
  // Destroys the lws context (if any) and our libuv loop (if any).
  void destroy_context();
  void begin_drain();
  bool drained() const;

  TransportOptions options_;
  chatcore::Engine& engine_;
  HttpApi& api_;
  Metrics& metrics_;

  // lws keeps pointers to these for the life of the context.
  std::string iface_;
  std::array<lws_protocols, 2> protocols_{};
  std::array<lws_http_mount, 5> mounts_{};
  std::vector<lws_protocol_vhost_options> mimetypes_;

  lws_context* context_ = nullptr;
  TickTimer tick_{};
  // The event loop lws runs on (a "foreign" libuv loop that we own and
  // drive, so run() keeps control between passes). Null when lws runs its
  // own poll(2) loop.
  std::unique_ptr<uv_loop_t> uv_loop_;

  // What the engine's wakeup function holds. It is shared, not part of
  // this object, because the storage thread may run a wakeup it copied just
  // before the transport went away: it then finds a null context, not a
  // destroyed transport.
  struct Waker {
    std::mutex mu;
    lws_context* context = nullptr;  // guarded by mu
    void wake();
  };
  std::shared_ptr<Waker> waker_ = std::make_shared<Waker>();

  std::atomic<bool> stop_requested_{false};
  bool draining_ = false;
  std::chrono::steady_clock::time_point drain_deadline_;

  SessionContext session_context_;
  std::vector<LwsSession*> flushing_;  // flush_dirty_sessions()' working copy
  // Every open WebSocket session, unordered; a session knows its index
  // (LwsSession::table_index) and lws keeps a pointer to it as the wsi's
  // opaque user data, so neither a lookup nor a removal searches. A hash
  // map here cost ~40 bytes per idle connection.
  std::vector<std::shared_ptr<LwsSession>> sessions_;
  LwsSession* session_of(lws* wsi) const;
  std::unordered_map<lws*, std::shared_ptr<HttpExchange>> exchanges_;
};

}  // namespace chatcored
