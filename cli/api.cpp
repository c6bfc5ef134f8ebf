#include "api.hpp"

#include <fmt/format.h>

#include "errors.hpp"

namespace chatcore::cli {

using nlohmann::json;

Api::Api(HttpOptions options, std::string token)
    : http_(std::move(options)), token_(std::move(token)) {}

json Api::call(std::string_view method, const std::string& path, const json* body,
               long* status_out) {
  std::string request_body = body != nullptr ? body->dump() : std::string();
  HttpResponse r = http_.request(method, "/api/v1" + path, request_body, token_);
  json doc = r.body.empty() ? json() : json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (r.status >= 200 && r.status < 300) {
    if (doc.is_discarded()) {
      throw CliError(kExitRefused, "bad_response",
                     fmt::format("{} {}: the server answered {} with a body that is not JSON",
                                 method, path, r.status),
                     r.status);
    }
    if (status_out != nullptr) *status_out = r.status;
    return doc;
  }
  // An error: the API's {"error": {...}} body, or, from something that is
  // not chatcored (a proxy, a wrong port), a code made of the status.
  std::string code = fmt::format("http_{}", r.status);
  std::string message = fmt::format("HTTP {} from {}", r.status, http_.base_url());
  if (doc.is_object() && doc.contains("error") && doc["error"].is_object()) {
    const json& e = doc["error"];
    if (e.contains("code") && e["code"].is_string()) code = e["code"].get<std::string>();
    if (e.contains("message") && e["message"].is_string()) {
      message = e["message"].get<std::string>();
    }
    if (e.contains("retry_after_ms") && e["retry_after_ms"].is_number()) {
      message += fmt::format(" (retry after {} ms)", e["retry_after_ms"].dump());
    }
  } else if (r.status == 401) {
    code = "unauthenticated";
  } else if (r.status == 502 || r.status == 503 || r.status == 504) {
    code = "unavailable";
  }
  throw CliError(exit_code_for_server_error(code), code, message, r.status);
}

json Api::user_by_name(const std::string& name) {
  json profile = get("/users?name=" + escape(name));
  remember_user(id_field(profile, "user_id"), name);
  return profile;
}

std::string Api::user_name(const std::string& user_id) {
  if (auto it = user_names_.find(user_id); it != user_names_.end()) return it->second;
  std::string name = "user:" + user_id;
  try {
    json profile = get("/users/" + escape(user_id));
    if (profile.contains("name") && profile["name"].is_string()) {
      name = profile["name"].get<std::string>();
    }
  } catch (const CliError& e) {
    // Display only: a failed name look-up must not fail the listing, but a
    // dead server or a dead token is worth failing on.
    if (e.exit_code() == kExitUnavailable || e.exit_code() == kExitUnauthenticated) throw;
  }
  user_names_[user_id] = name;
  return name;
}

std::string Api::group_name(const std::string& group_id) {
  if (auto it = group_names_.find(group_id); it != group_names_.end()) return it->second;
  std::string name = "group:" + group_id;
  try {
    json group = get("/groups/" + escape(group_id));
    if (group.contains("name") && group["name"].is_string()) {
      name = group["name"].get<std::string>();
    }
    // The member list comes with the group: it names every sender of a
    // group history page in one request instead of one per sender.
    if (group.contains("members") && group["members"].is_array()) {
      for (const json& m : group["members"]) {
        if (m.contains("name") && m["name"].is_string()) {
          remember_user(id_field(m, "user_id"), m["name"].get<std::string>());
        }
      }
    }
  } catch (const CliError& e) {
    if (e.exit_code() == kExitUnavailable || e.exit_code() == kExitUnauthenticated) throw;
  }
  group_names_[group_id] = name;
  return name;
}

std::string id_field(const json& object, const char* key) {
  if (!object.is_object()) return {};
  auto it = object.find(key);
  if (it == object.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_unsigned()) return std::to_string(it->get<std::uint64_t>());
  return {};
}

}  // namespace chatcore::cli
