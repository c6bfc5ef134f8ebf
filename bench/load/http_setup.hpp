// Blocking JSON-over-HTTP calls for set-up (accounts, logins, groups),
// through libcurl: set-up is not measured, and an HTTP client is not
// something to hand-write.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace chatcore_bench {

struct HttpReply {
  long status = 0;  // 0: transport failure (see error)
  nlohmann::json body;
  std::string error;
};

class HttpJson {
 public:
  explicit HttpJson(std::string base_url);  // "http://127.0.0.1:8080"
  ~HttpJson();
  HttpJson(const HttpJson&) = delete;
  HttpJson& operator=(const HttpJson&) = delete;

  HttpReply post(const std::string& path, const nlohmann::json& body,
                 const std::string& bearer_token = {});
  // Any method with a JSON body ("PATCH", "PUT", "POST").
  HttpReply send(const std::string& method, const std::string& path, const nlohmann::json& body,
                 const std::string& bearer_token = {});

 private:
  std::string base_;
  void* curl_;  // CURL*, kept for connection reuse
};

}  // namespace chatcore_bench
