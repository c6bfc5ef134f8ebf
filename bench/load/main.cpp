// chatcore-bench: the end-to-end load generator (docs/benchmarks.md,
// "End-to-end load: chatcore vs ejabberd").
//
//   chatcore-bench --target chatcore --port 8080 --scenario one2one
//       --rates 1000,2000,5000 --json out.json
//
// One scenario per invocation against one running server; the JSON
// document goes to --json (or stdout), a human table to stderr. Exit
// status: 0 when the run completed; 1 on a set-up failure; with --check,
// also 1 when any step had an error or an acked message was not delivered
// (the CI smoke test; timings are never judged).
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>

#include <curl/curl.h>
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "chatcore_client.hpp"
#include "http_writer.hpp"
#include "runner.hpp"
#include "xmpp_client.hpp"

using namespace chatcore_bench;

int main(int argc, char** argv) {
  CLI::App app{"chatcore-bench: open-loop load generator for chatcored and XMPP servers",
               "chatcore-bench"};
  std::string target = "chatcore";
  std::string scenario = "one2one";
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::string json_path;
  std::string label;
  std::string password = "bench-password";
  std::string xmpp_domain = "localhost";
  std::string xmpp_muc = "conference.localhost";
  std::string xmpp_prefix = "u";
  bool check = false;
  unsigned max_seconds = 1800;
  RunOptions opt;
  opt.rates = {1000};
  app.add_option("--target", target, "server protocol: chatcore or xmpp")
      ->check(CLI::IsMember({"chatcore", "xmpp"}));
  app.add_option("--scenario", scenario, "one2one, group or idle")
      ->check(CLI::IsMember({"one2one", "group", "idle"}));
  app.add_option("--host", host, "server address (default 127.0.0.1)");
  app.add_option("--port", port, "server port (default 8080 chatcore, 5222 xmpp)");
  app.add_option("--json", json_path, "write the JSON result here (default stdout)");
  app.add_option("--label", label, "free text stored in the JSON (e.g. 'chatcore sync, run 2')");
  app.add_option("--password", password, "password of every benchmark account");
  app.add_option("--users", opt.users, "one2one: online users, in pairs");
  app.add_option("--groups", opt.groups, "group: number of groups");
  app.add_option("--group-size", opt.group_size, "group: members per group (owner included)");
  app.add_option("--rates", opt.rates, "offered rates to step through, messages/s")->delimiter(',');
  app.add_option("--step-seconds", opt.step_seconds, "sending time of each step");
  app.add_option("--warmup-seconds", opt.warmup_seconds,
                 "unreported warm-up at the first rate before the steps (0: none)");
  app.add_option("--drain-seconds", opt.drain_seconds, "wait for late acks/deliveries per step");
  app.add_option("--p99-limit-ms", opt.p99_limit_ms, "a step fails when a p99 exceeds this");
  app.add_option("--stop-after", opt.stop_after_failures,
                 "stop after this many failed steps in a row (0: never; default 1)");
  bool no_stop = false;
  app.add_flag("--no-stop", no_stop, "run every rate (same as --stop-after 0)");
  app.add_option("--idle-counts", opt.idle_counts, "idle: connection counts to measure at")
      ->delimiter(',');
  app.add_option("--idle-users", opt.idle_users, "idle: accounts the connections log in as");
  app.add_option("--settle-seconds", opt.idle_settle_seconds, "idle: wait before reading RSS");
  app.add_option("--server-pid", opt.server_pid, "server process, for RSS and CPU time");
  app.add_option("--source-ips", opt.source_ips, "bind connections over 127.0.0.2..(1+n)");
  app.add_option("--connect-concurrency", opt.connect_concurrency, "handshakes in flight");
  app.add_option("--connect-timeout", opt.connect_timeout_seconds,
                 "seconds for all connections of a level to come up");
  app.add_option("--heartbeat-seconds", opt.heartbeat_seconds, "heartbeat period per connection");
  app.add_option("--ready-file", opt.ready_file,
                 "touch this file when connected, before the first step");
  app.add_option("--start-delay", opt.start_delay_seconds,
                 "seconds to wait after --ready-file before the first step");
  app.add_option("--xmpp-domain", xmpp_domain, "XMPP host name (accounts user@domain)");
  app.add_option("--xmpp-muc-domain", xmpp_muc, "XMPP MUC service");
  app.add_option("--xmpp-user-prefix", xmpp_prefix, "XMPP accounts are <prefix>0, <prefix>1...");
  bool xmpp_no_sm = false;
  app.add_flag("--xmpp-no-stream-management", xmpp_no_sm,
               "XMPP without XEP-0198: no server acks (a message counts as acked once written; "
               "delivery figures only), as Tsung's client (the cross-check)");
  double http_writes = 0;
  app.add_option("--http-writes-per-second", http_writes,
                 "chatcore: meanwhile, one account edits its profile over HTTP at this rate "
                 "(a side load of non-message writes; reported as side_load)");
  app.add_option("--max-seconds", max_seconds, "hard bound on the whole run (SIGALRM)");
  app.add_flag("--check", check, "exit 1 unless every step was error-free and fully delivered");
  CLI11_PARSE(app, argc, argv);
  if (no_stop) opt.stop_after_failures = 0;

  // Whatever happens, the run is bounded in time.
  alarm(max_seconds);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const std::uint32_t nonce = std::random_device{}() | 1u;

  std::unique_ptr<Adapter> adapter;
  if (target == "chatcore") {
    ChatcoreTarget t;
    t.host = host;
    t.port = port != 0 ? port : 8080;
    t.password = password;
    t.nonce = nonce;
    adapter = std::make_unique<ChatcoreAdapter>(t);
    opt.direct_echo = true;  // the sender's own sessions get a Deliver too
  } else {
    XmppTarget t;
    t.host = host;
    t.port = port != 0 ? port : 5222;
    t.domain = xmpp_domain;
    t.muc_domain = xmpp_muc;
    t.user_prefix = xmpp_prefix;
    t.password = password;
    t.nonce = nonce;
    t.stream_management = !xmpp_no_sm;
    adapter = std::make_unique<XmppAdapter>(t);
    opt.direct_echo = false;  // no carbons: the peer's copy only
  }

  std::unique_ptr<HttpWriter> writer;
  if (http_writes > 0) {
    if (target != "chatcore" || scenario == "idle") {
      std::fprintf(stderr,
                   "chatcore-bench: --http-writes-per-second needs --target chatcore "
                   "and a stepped scenario\n");
      return 2;
    }
    writer = std::make_unique<HttpWriter>(
        fmt::format("http://{}:{}", host, port != 0 ? port : 8080), password, nonce, http_writes);
    opt.side_load = writer.get();
  }

  nlohmann::json result;
  try {
    if (writer) writer->prepare();
    Runner runner(*adapter, opt);
    if (scenario == "one2one") {
      result = runner.run_one2one();
    } else if (scenario == "group") {
      result = runner.run_group();
    } else {
      result = runner.run_idle();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chatcore-bench: %s\n", e.what());
    return 1;
  }
  result["label"] = label;
  result["target"] = target;
  result["options"] = {{"rates", opt.rates},
                       {"step_seconds", opt.step_seconds},
                       {"drain_seconds", opt.drain_seconds},
                       {"warmup_seconds", opt.warmup_seconds},
                       {"p99_limit_ms", opt.p99_limit_ms},
                       {"body_bytes", message_body().size()},
                       {"heartbeat_seconds", opt.heartbeat_seconds}};
  std::string command;
  for (int i = 0; i < argc; ++i) command += (i ? " " : "") + std::string(argv[i]);
  result["command"] = command;
  const std::string text = result.dump(2);
  if (result.contains("side_load")) {
    const auto& w = result["side_load"];
    const auto& l = w["latency"];
    std::fprintf(
        stderr,
        "side load   %s at %.0f/s: %llu writes, %llu errors | p50 %.2f p99 %.2f max %.2f ms\n",
        w.value("kind", "").c_str(), w.value("rate", 0.0),
        static_cast<unsigned long long>(w.value("writes", 0ULL)),
        static_cast<unsigned long long>(w.value("errors", 0ULL)), l.value("p50_us", 0.0) / 1000,
        l.value("p99_us", 0.0) / 1000, l.value("max_us", 0.0) / 1000);
  }
  if (json_path.empty()) {
    std::cout << text << "\n";
  } else {
    std::ofstream(json_path) << text << "\n";
  }
  curl_global_cleanup();
  if (check && result.contains("side_load") &&
      (result["side_load"].value("errors", 1ULL) != 0 ||
       result["side_load"].value("writes", 0ULL) == 0)) {
    std::fprintf(stderr, "chatcore-bench: --check: the HTTP side load failed or did nothing\n");
    return 1;
  }
  if (check && !result["summary"].value("clean", false)) {
    std::fprintf(stderr, "chatcore-bench: --check: errors or undelivered messages (see JSON)\n");
    return 1;
  }
  return 0;
}
