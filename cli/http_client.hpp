// A small blocking HTTP client over libcurl, for the JSON API.
//
// One easy handle per client, reused across requests so that the several
// calls one command makes (look a user up, open the conversation, send)
// share one keep-alive connection.
//
// Failure model: request() returns any HTTP response, whatever its status
// (the caller interprets API errors); it throws CliError(kExitUnavailable,
// "network_error") only when no response arrived at all (refused, reset,
// timed out, DNS failure, bad TLS).
//
// Thread-safety: one HttpClient per thread. curl_global_init() must have
// run first (main() does it).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace chatcore::cli {

struct HttpResponse {
  long status = 0;
  std::string body;
};

struct HttpOptions {
  std::string base_url;  // "http://127.0.0.1:8080", no trailing slash
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds timeout{30000};  // the whole request
  bool verbose = false;                      // curl's own trace on stderr
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // `path` starts with '/' and is appended to base_url as is (callers
  // escape path and query parts with escape()). `body` is sent when non-
  // empty, or always for POST/PATCH. `token` adds a Bearer header when
  // non-empty.
  HttpResponse request(std::string_view method, const std::string& path, const std::string& body,
                       const std::string& token);

  // Percent-encodes one path segment or query value.
  std::string escape(std::string_view text);

  const std::string& base_url() const { return options_.base_url; }

 private:
  HttpOptions options_;
  void* curl_;  // CURL*: kept out of this header so commands need not include curl.h
};

}  // namespace chatcore::cli
