// Exit codes and the one error type every command failure travels as.
//
// The CLI is a program, not a library: a failure deep inside a command
// (a refused HTTP call, a lost connection, a bad argument) is thrown as a
// CliError and turned into a message and an exit code once, in main(). The
// exit code is the scripting contract (docs/cli.md), so it is chosen by
// what a script should do next, not by where the failure happened:
//
//   0 ok
//   1 usage: bad command line, or input the CLI refuses before asking anyone
//   2 refused: the server answered with an error (its stable code is printed)
//   3 unavailable: no answer (network, timeout) or a "try again later"
//     answer (unavailable, rate_limited): retrying the same command may work
//   4 unauthenticated: not logged in, wrong password, expired/revoked token
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace chatcore::cli {

enum ExitCode : int {
  kExitOk = 0,
  kExitUsage = 1,
  kExitRefused = 2,
  kExitUnavailable = 3,
  kExitUnauthenticated = 4,
};

class CliError : public std::runtime_error {
 public:
  // `code` is a stable snake_case name: a server error code
  // ("not_found"), or one of the CLI's own ("usage", "network_error").
  CliError(int exit_code, std::string code, const std::string& message, long http_status = 0)
      : std::runtime_error(message),
        exit_code_(exit_code),
        code_(std::move(code)),
        http_status_(http_status) {}

  int exit_code() const { return exit_code_; }
  const std::string& code() const { return code_; }
  long http_status() const { return http_status_; }

 private:
  int exit_code_;
  std::string code_;
  long http_status_;
};

// A usage error (exit 1).
[[noreturn]] void throw_usage(const std::string& message);

// The exit code for a server error code name: unauthenticated -> 4;
// unavailable and rate_limited -> 3 (retryable); anything else -> 2.
int exit_code_for_server_error(const std::string& code);

}  // namespace chatcore::cli
