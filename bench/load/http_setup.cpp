#include "http_setup.hpp"

#include <curl/curl.h>

namespace chatcore_bench {

namespace {
std::size_t collect(char* data, std::size_t size, std::size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}
}  // namespace

HttpJson::HttpJson(std::string base_url) : base_(std::move(base_url)), curl_(curl_easy_init()) {}

HttpJson::~HttpJson() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

HttpReply HttpJson::post(const std::string& path, const nlohmann::json& body,
                         const std::string& bearer_token) {
  return send("POST", path, body, bearer_token);
}

HttpReply HttpJson::send(const std::string& method, const std::string& path,
                         const nlohmann::json& body, const std::string& bearer_token) {
  CURL* c = static_cast<CURL*>(curl_);
  HttpReply reply;
  const std::string url = base_ + path;
  const std::string payload = body.dump();
  std::string received;
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  std::string auth;
  if (!bearer_token.empty()) {
    auth = "Authorization: Bearer " + bearer_token;
    headers = curl_slist_append(headers, auth.c_str());
  }
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  if (method != "POST") curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(payload.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &received);
  // Each signup/login costs the server an Argon2id hash (~0.1 s); a server
  // pinned to one busy core can take a while.
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  const CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    reply.error = curl_easy_strerror(rc);
    return reply;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply.status);
  reply.body = nlohmann::json::parse(received, nullptr, /*allow_exceptions=*/false);
  if (reply.body.is_discarded()) reply.error = "response is not JSON: " + received.substr(0, 200);
  return reply;
}

}  // namespace chatcore_bench
