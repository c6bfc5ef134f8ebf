// The chatcored HTTP API (docs/http-api.md) as JSON calls, plus the
// look-ups the commands share (user and group names), cached for the life
// of one command.
//
// Every non-2xx answer becomes a CliError carrying the server's stable
// error code and message ({"error": {"code", "message"}}), with the exit
// code exit_code_for_server_error() gives it. Network failures come from
// HttpClient (exit 3).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "http_client.hpp"

namespace chatcore::cli {

class Api {
 public:
  // `token` empty: calls without authentication (signup, login).
  Api(HttpOptions options, std::string token);

  // One request. Returns the parsed body, or null for an empty one (204).
  // `status_out`, when given, receives the HTTP status of a success (the
  // send route answers 201 new / 200 duplicate).
  nlohmann::json call(std::string_view method, const std::string& path,
                      const nlohmann::json* body = nullptr, long* status_out = nullptr);
  nlohmann::json get(const std::string& path) { return call("GET", path); }
  nlohmann::json post(const std::string& path, const nlohmann::json& body,
                      long* status_out = nullptr) {
    return call("POST", path, &body, status_out);
  }

  std::string escape(std::string_view text) { return http_.escape(text); }

  // The public profile of a login name (GET /users?name=); not_found (exit
  // 2) if there is none.
  nlohmann::json user_by_name(const std::string& name);
  // A user id's login name, for display. Falls back to "user:<id>" when the
  // profile cannot be read, so one unknown sender never fails a listing.
  std::string user_name(const std::string& user_id);
  // A group's name, for display; "group:<id>" when it cannot be read.
  std::string group_name(const std::string& group_id);
  void remember_user(const std::string& user_id, const std::string& name) {
    user_names_[user_id] = name;
  }
  void remember_group(const std::string& group_id, const std::string& name) {
    group_names_[group_id] = name;
  }

  const std::string& server() const { return http_.base_url(); }

 private:
  HttpClient http_;
  std::string token_;
  std::map<std::string, std::string> user_names_;
  std::map<std::string, std::string> group_names_;
};

// A JSON id field as a string (the API sends ids as decimal strings; the
// CLI tolerates a number too), or "" when absent.
std::string id_field(const nlohmann::json& object, const char* key);

}  // namespace chatcore::cli
