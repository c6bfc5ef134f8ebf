// Terminal and process glue: password input, stdin, random ids.
#pragma once

#include <string>

#include "chatcore/ids.hpp"

namespace chatcore::cli {

// Reads a password. With `from_stdin`, the first line of stdin (without its
// line ending). Otherwise from the controlling terminal with echo off,
// prompting on stderr; if stdin is not a terminal, that is a usage error
// (a script must say --password-stdin rather than hang on a prompt). With
// `confirm`, a terminal user types it twice.
std::string read_password(bool from_stdin, bool confirm);

// All of stdin, with one trailing newline removed (`echo hi | send bob`).
std::string read_all_stdin();

// A random version-4 UUID from the kernel's CSPRNG (getrandom): client
// message ids must not collide across processes and machines.
ClientMsgId random_uuid();

}  // namespace chatcore::cli
