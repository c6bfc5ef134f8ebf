#include "output.hpp"

#include <cstdio>
#include <ctime>

#include <fmt/format.h>

namespace chatcore::cli {

bool print_line(const std::string& line) {
  if (std::fwrite(line.data(), 1, line.size(), stdout) != line.size()) return false;
  if (std::fputc('\n', stdout) == EOF) return false;
  return std::fflush(stdout) == 0;
}

std::string to_json_text(const nlohmann::json& value) {
  return value.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

std::string format_time(std::int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm local{};
  if (localtime_r(&seconds, &local) == nullptr) return "-";
  char text[32];
  std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &local);
  return std::string(text, n);
}

void print_error(const CliError& error, bool json) {
  std::fflush(stdout);  // keep any partial result ahead of the error
  if (json) {
    nlohmann::json e = {
        {"code", error.code()}, {"message", error.what()}, {"exit_code", error.exit_code()}};
    if (error.http_status() != 0) e["http_status"] = error.http_status();
    std::fprintf(stderr, "%s\n", to_json_text({{"error", e}}).c_str());
  } else {
    std::fprintf(stderr, "chatcore-cli: error: %s: %s\n", error.code().c_str(), error.what());
  }
}

void print_note(const std::string& text) {
  std::fprintf(stderr, "chatcore-cli: %s\n", text.c_str());
}

}  // namespace chatcore::cli
