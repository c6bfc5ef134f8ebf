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
#include <string>

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
};

using Respond = std::function<void(HttpResponse)>;

struct HttpApiOptions {
  // Request body cap: fits a 100,000-character body even JSON-escaped.
  std::size_t max_body_bytes = 1'200'000;
  // What /api/v1/discover answers: this node's WebSocket URL.
  std::string public_ws_url = "ws://127.0.0.1:8080/ws";
};

class HttpApi {
 public:
  HttpApi(chatcore::Engine& engine, chatcore::Store& store, TokenAuth& auth,
          const chatcore::Clock& clock, HttpApiOptions options);

  // Handles a request whose path starts with /api/v1/.
  void handle(HttpRequest request, Respond respond);

 private:
  chatcore::Engine& engine_;
  chatcore::Store& store_;
  TokenAuth& auth_;
  const chatcore::Clock& clock_;
  HttpApiOptions options_;
};

}  // namespace chatcored
