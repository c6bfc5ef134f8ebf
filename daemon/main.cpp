// chatcored: the chatcore reference daemon.
//
// This file only wires things together: flags and config (config.hpp),
// logging (log.hpp), signals (signals.hpp), then the LMDB store, the
// token authenticator, the engine, the HTTP API and the lws transport, in
// that order, so that each outlives everything that uses it (destruction
// runs in reverse: the transport first, the store last).
//
// Exit status: 0 after a graceful stop (SIGTERM/SIGINT), 2 for a bad
// command line or configuration, 1 when the server cannot start or its
// event loop fails.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include <fmt/format.h>
#include <libwebsockets.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "chatcore/clock.hpp"
#include "chatcore/engine.hpp"
#include "chatcore/lmdb_store.hpp"
#include "config.hpp"
#include "http_api.hpp"
#include "log.hpp"
#include "lws_transport.hpp"
#include "metrics.hpp"
#include "signals.hpp"
#include "token_auth.hpp"

namespace {

using chatcored::Config;
using chatcored::LwsTransport;

// Carries a stop signal to the transport, which may not exist yet when the
// signal arrives (a SIGTERM during start-up is kept and applied as soon as
// the transport runs). A second signal while draining exits at once:
// everything acknowledged is already durable, only the courtesy of a clean
// close is lost.
class StopRelay {
 public:
  void on_signal(int sig) {
    std::lock_guard lock(mu_);
    ++signals_;
    spdlog::info("signal name={} count={}", sig == SIGINT ? "SIGINT" : "SIGTERM", signals_);
    if (signals_ > 1) {
      spdlog::warn("exit_now reason=second_signal");
      spdlog::shutdown();
      std::_Exit(1);
    }
    if (target_) target_->request_stop();
  }
  void attach(LwsTransport* transport) {
    std::lock_guard lock(mu_);
    target_ = transport;
    if (signals_ > 0) target_->request_stop();
  }
  void detach() {
    std::lock_guard lock(mu_);
    target_ = nullptr;
  }

 private:
  std::mutex mu_;
  LwsTransport* target_ = nullptr;
  int signals_ = 0;
};

std::string version_text() {
  return fmt::format("chatcored {} (libwebsockets {}, protocol {})", CHATCORED_VERSION,
                     lws_get_library_version(), LwsTransport::kProtocolName);
}

int serve(const Config& config, StopRelay& relay) {
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) {
    spdlog::critical("data_dir_failed path={} error={}", chatcored::log_quote(config.data_dir),
                     chatcored::log_quote(ec.message()));
    return 1;
  }

  chatcore::LmdbOptions store_options;
  store_options.path = config.data_dir;
  store_options.durability = config.durability == chatcored::StorageDurability::kSync
                                 ? chatcore::Durability::kSync
                                 : chatcore::Durability::kNoSync;
  store_options.initial_map_bytes = static_cast<std::size_t>(config.map_size);
  store_options.checkpoint_bytes = static_cast<std::size_t>(config.checkpoint_bytes);
  store_options.checkpoint_interval_ms = config.checkpoint_interval_ms;
  store_options.max_unapplied_bytes = static_cast<std::size_t>(config.max_unapplied_bytes);
  auto opened = chatcore::LmdbStore::open(store_options);
  if (!opened.is_ok()) {
    spdlog::critical("store_open_failed path={} error={}", chatcored::log_quote(config.data_dir),
                     chatcored::log_quote(opened.status().to_string()));
    return 1;
  }
  std::unique_ptr<chatcore::LmdbStore> store = std::move(opened).value();

  const chatcore::Clock& clock = chatcore::SystemClock::instance();
  chatcored::TokenAuth auth(*store, clock, config.token_ttl_seconds * 1000);
  // The engine's owner thread is this one: it runs the lws service loop.
  chatcore::Engine engine(config.engine_options(), *store, auth, clock);

  chatcored::HttpApiOptions api_options;
  api_options.max_body_bytes = config.http_max_body_bytes;
  api_options.public_ws_url = config.effective_public_ws_url();
  chatcored::HttpApi api(engine, *store, auth, clock, api_options);
  chatcored::Metrics metrics;
  metrics.set_journal_source([&store] { return store->journal_stats(); });

  chatcored::TransportOptions transport_options;
  transport_options.listen = config.listen;
  transport_options.web_root = config.web_root;
  transport_options.tls_cert = config.tls_cert;
  transport_options.tls_key = config.tls_key;
  transport_options.max_frame_bytes = config.limits.max_frame_bytes;
  transport_options.http_max_body_bytes = config.http_max_body_bytes;
  transport_options.outbound_hard_bytes = config.limits.outbound_hard_bytes;
  transport_options.drain_timeout = config.drain_timeout;
  transport_options.event_loop = config.event_loop;
  LwsTransport transport(transport_options, engine, api, metrics);

  if (auto st = transport.start(); !st.is_ok()) {
    spdlog::critical("start_failed error={}", chatcored::log_quote(st.to_string()));
    return 1;
  }
  spdlog::info("ready ws_url={} pid={}", api_options.public_ws_url, ::getpid());
  relay.attach(&transport);
  transport.run();
  relay.detach();
  // Normally done by the drain; after a failed event loop it still commits
  // what was accepted (the acks cannot be delivered any more).
  engine.shutdown();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "chatcored: the chatcore chat server. WebSocket chat (/ws), the HTTP API (/api/v1), "
      "health (/livez, /readyz), metrics (/metrics) and the web client (/) on one port, "
      "with an embedded LMDB store.",
      "chatcored"};
  app.set_version_flag("--version", version_text());
  std::string config_file;
  std::string listen;
  std::string data_dir;
  std::string web_root;
  std::string log_level;
  bool check_only = false;
  app.add_option("--config", config_file, "TOML config file (see chatcored.conf.example)");
  auto* listen_opt =
      app.add_option("--listen", listen, "host:port to serve on (default 127.0.0.1:8080)");
  auto* data_dir_opt =
      app.add_option("--data-dir", data_dir, "LMDB data directory (default ./chatcore-data)");
  auto* web_root_opt = app.add_option("--web-root", web_root, "directory of static files for /");
  auto* log_level_opt = app.add_option(
      "--log-level", log_level, "trace, debug, info, warn, error, critical or off (default info)");
  app.add_flag("--check-config", check_only,
               "validate the configuration and exit: 0 if valid, 2 if not");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);  // prints help, version or the error
    return code == 0 ? 0 : chatcored::kConfigErrorExit;
  }

  chatcored::ConfigOverrides overrides;
  if (listen_opt->count()) overrides.listen = listen;
  if (data_dir_opt->count()) overrides.data_dir = data_dir;
  if (web_root_opt->count()) overrides.web_root = web_root;
  if (log_level_opt->count()) overrides.log_level = log_level;

  auto loaded = chatcored::load_config(config_file, overrides);
  if (!loaded.is_ok()) {
    std::fprintf(stderr, "chatcored: configuration error: %s\n", loaded.status().message().c_str());
    return chatcored::kConfigErrorExit;
  }
  const Config& config = *loaded;
  if (check_only) {
    std::printf("chatcored: configuration OK (listen %s, data_dir %s, durability %s, tls %s)\n",
                config.listen.to_string().c_str(), config.data_dir.c_str(),
                config.durability == chatcored::StorageDurability::kSync ? "sync" : "nosync",
                config.tls_enabled() ? "on" : "off");
    return 0;
  }

  chatcored::init_logging(config.log_level);
  // Before any other thread exists (the engine's storage thread), so that
  // every thread inherits the blocked SIGTERM/SIGINT.
  StopRelay relay;
  chatcored::SignalWatcher signals([&relay](int sig) { relay.on_signal(sig); });

  spdlog::info("start version={} listen={} data_dir={} durability={} tls={} config={}",
               CHATCORED_VERSION, config.listen.to_string(), chatcored::log_quote(config.data_dir),
               config.durability == chatcored::StorageDurability::kSync ? "sync" : "nosync",
               config.tls_enabled() ? "on" : "off",
               config_file.empty() ? "none" : chatcored::log_quote(config_file));
  if (config.durability == chatcored::StorageDurability::kNoSync) {
    spdlog::warn("durability_nosync note={}",
                 chatcored::log_quote("acked messages survive a crash of chatcored, not of the "
                                      "machine"));
  }
  return serve(config, relay);
}
