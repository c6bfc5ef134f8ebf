#include "http_writer.hpp"

#include <chrono>
#include <stdexcept>
#include <utility>

#include <fmt/core.h>

#include "http_setup.hpp"

namespace chatcore_bench {

HttpWriter::HttpWriter(std::string base_url, std::string password, std::uint32_t nonce,
                       double per_second)
    : base_url_(std::move(base_url)),
      password_(std::move(password)),
      name_(fmt::format("bw{}", nonce)),
      per_second_(per_second) {}

HttpWriter::~HttpWriter() {
  if (thread_.joinable()) {
    stopping_ = true;
    thread_.join();
  }
}

void HttpWriter::prepare() {
  HttpJson http(base_url_);
  HttpReply made = http.post("/api/v1/users", {{"name", name_}, {"password", password_}});
  if (made.status != 201) {
    throw std::runtime_error(fmt::format("http writer: signup of {} answered {} {}", name_,
                                         made.status, made.error + made.body.dump()));
  }
  HttpReply login = http.post("/api/v1/sessions", {{"name", name_}, {"password", password_}});
  if (login.status != 200 || !login.body.contains("token")) {
    throw std::runtime_error(fmt::format("http writer: login of {} answered {} {}", name_,
                                         login.status, login.error + login.body.dump()));
  }
  token_ = login.body["token"].get<std::string>();
}

void HttpWriter::start() {
  if (per_second_ <= 0 || thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { loop(); });
}

nlohmann::json HttpWriter::stop() {
  if (thread_.joinable()) {
    stopping_ = true;
    thread_.join();
  }
  return {{"kind", "PATCH /api/v1/users/me"},
          {"rate", per_second_},
          {"writes", writes_},
          {"errors", errors_},
          {"error_sample", error_sample_},
          {"latency", latency_.to_json()}};
}

void HttpWriter::loop() {
  using Clock = std::chrono::steady_clock;
  HttpJson http(base_url_);
  const auto began = Clock::now();
  const auto period = std::chrono::duration<double>(1.0 / per_second_);
  for (std::uint64_t k = 0; !stopping_; ++k) {
    const auto due = began + std::chrono::duration_cast<Clock::duration>(period * k);
    // Sleep in short pieces so that stop() is not held up by a long period.
    while (!stopping_ && Clock::now() < due) {
      std::this_thread::sleep_for(
          std::min<Clock::duration>(due - Clock::now(), std::chrono::milliseconds(20)));
    }
    if (stopping_) break;
    HttpReply r =
        http.send("PATCH", "/api/v1/users/me", {{"about", fmt::format("w{}", k)}}, token_);
    latency_.record(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - due).count()));
    ++writes_;
    if (r.status != 200) {
      ++errors_;
      if (error_sample_.empty()) error_sample_ = fmt::format("{} {}", r.status, r.error);
    }
  }
}

}  // namespace chatcore_bench
