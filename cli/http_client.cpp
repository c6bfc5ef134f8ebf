#include "http_client.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <memory>

#include "errors.hpp"

namespace chatcore::cli {
namespace {

CURL* handle(void* p) { return static_cast<CURL*>(p); }

std::size_t append_body(char* data, std::size_t size, std::size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

}  // namespace

HttpClient::HttpClient(HttpOptions options)
    : options_(std::move(options)), curl_(curl_easy_init()) {
  if (curl_ == nullptr) throw CliError(kExitUnavailable, "internal", "curl_easy_init failed");
}

HttpClient::~HttpClient() { curl_easy_cleanup(handle(curl_)); }

std::string HttpClient::escape(std::string_view text) {
  char* out = curl_easy_escape(handle(curl_), text.data(), static_cast<int>(text.size()));
  if (out == nullptr) throw CliError(kExitUsage, "usage", "cannot URL-encode argument");
  std::string result(out);
  curl_free(out);
  return result;
}

HttpResponse HttpClient::request(std::string_view method, const std::string& path,
                                 const std::string& body, const std::string& token) {
  CURL* c = handle(curl_);
  // Reset per request: options from the previous call (a POST body, a
  // custom method) must not leak into this one. The connection cache
  // survives a reset, which is the point of reusing the handle.
  curl_easy_reset(c);

  HttpResponse response;
  char error_buffer[CURL_ERROR_SIZE] = {0};
  std::string url = options_.base_url + path;
  std::string method_text(method);

  std::unique_ptr<curl_slist, SlistDeleter> headers;
  auto add_header = [&headers](const std::string& line) {
    curl_slist* next = curl_slist_append(headers.get(), line.c_str());
    if (next == nullptr) throw CliError(kExitUnavailable, "internal", "out of memory");
    static_cast<void>(headers.release());
    headers.reset(next);
  };
  add_header("Accept: application/json");
  if (!token.empty()) add_header("Authorization: Bearer " + token);

  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method_text.c_str());
  // Only the API's own scheme pair; a redirect is never followed (an API
  // answer is never a redirect, and following one would resend the token).
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM for timeouts: `tail` owns signals
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(c, CURLOPT_USERAGENT, "chatcore-cli/" CHATCORE_CLI_VERSION);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response.body);
  if (options_.verbose) curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
  if (!body.empty() || method == "POST" || method == "PATCH") {
    add_header("Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());

  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    std::string detail = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(rc);
    throw CliError(kExitUnavailable, "network_error",
                   fmt::format("{} {}: {}", method, url, detail));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

}  // namespace chatcore::cli
