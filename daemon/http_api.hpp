// HttpApi: the stateless JSON API under /api/v1/ (accounts, sessions,
// profile, contacts, groups, conversations, history, sends, discover).
//
// Transport-independent: the lws transport turns an HTTP request into an
// HttpRequest and writes back the HttpResponse. Every route, status and
// error code is documented in docs/http-api.md.
//
// Threading: owner thread of the Engine only. `respond` is called exactly
// once per request, either before handle() returns or later from inside
// Engine::poll() (a send is answered only once it is durable).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chatcore/clock.hpp"
#include "chatcore/engine.hpp"
#include "chatcore/store.hpp"

namespace chatcored {

class TokenAuth;

struct HttpRequest {
  std::string method;         // "GET", "POST", "PATCH", "DELETE"
  std::string path;           // "/api/v1/users/me", without the query
  std::string query;          // raw query string without '?', may be empty
  std::string authorization;  // the Authorization header value, may be empty
  std::string body;           // at most HttpApiOptions::max_body_bytes
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // Extra response headers the transport must send as given, e.g.
  // {"Retry-After", "1"} on 429, {"Allow", "GET, POST"} on 405,
  // {"WWW-Authenticate", "Bearer"} on 401.
  std::vector<std::pair<std::string, std::string>> headers;
};

using Respond = std::function<void(HttpResponse)>;

struct HttpApiOptions {
  // Request body cap. A 100,000-character body takes up to 1,200,000 bytes
  // JSON-escaped (an astral character such as an emoji escaped as a
  // surrogate pair, "\ud83d\ude00", is 12 bytes; Python's json.dumps does
  // that by default), plus the envelope: hence 1.2 MB and some headroom.
  std::size_t max_body_bytes = 1'300'000;
  // Threads that run password hashing (Argon2id, ~0.1-0.3 s a call) for
  // signup and login, so the network thread never stalls on it; the reply
  // continues on the owner thread through Engine::post(). 0 runs the hash
  // inline (single-threaded unit tests).
  unsigned kdf_threads = 1;
  // A thread for the store writes behind signup, login (the token), logout,
  // profiles, contacts, groups, direct conversations and read marks, with
  // the reply continuing on the owner thread like the hashing above: a
  // write may wait for LMDB's writer lock, held by a running checkpoint,
  // and on the network thread that wait stalled every session. One thread,
  // so one client's writes keep their order. false writes inline
  // (single-threaded unit tests).
  bool write_thread = true;
  // What /api/v1/discover answers: this node's WebSocket URL.
  std::string public_ws_url = "ws://127.0.0.1:8080/ws";
};

class HttpApi {
 public:
  HttpApi(chatcore::Engine& engine, chatcore::Store& store, TokenAuth& auth,
          const chatcore::Clock& clock, HttpApiOptions options);

  // Joins the hashing and write threads (their replies are posted to the
  // engine, which must still exist: destroy the HttpApi first). With a
  // write thread, the HttpApi also runs `auth`'s deletions of expired
  // tokens there (TokenAuth::set_cleanup_runner) while it exists.
  ~HttpApi();
  HttpApi(const HttpApi&) = delete;
  HttpApi& operator=(const HttpApi&) = delete;

  // Handles a request whose path starts with /api/v1/.
  void handle(HttpRequest request, Respond respond);

  class Worker;

 private:
  chatcore::Engine& engine_;
  chatcore::Store& store_;
  TokenAuth& auth_;
  const chatcore::Clock& clock_;
  HttpApiOptions options_;
  std::unique_ptr<Worker> kdf_;     // null when kdf_threads == 0
  std::unique_ptr<Worker> writes_;  // null unless write_thread
};

}  // namespace chatcored
