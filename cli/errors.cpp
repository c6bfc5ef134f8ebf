#include "errors.hpp"

namespace chatcore::cli {

void throw_usage(const std::string& message) { throw CliError(kExitUsage, "usage", message); }

int exit_code_for_server_error(const std::string& code) {
  if (code == "unauthenticated") return kExitUnauthenticated;
  // The two codes whose documented meaning is "the same call may succeed
  // later" (docs/protocol.md, retry column). `internal` says "maybe" there,
  // but it is a server bug: a script should see it as a refusal, not loop.
  if (code == "unavailable" || code == "rate_limited") return kExitUnavailable;
  return kExitRefused;
}

}  // namespace chatcore::cli
