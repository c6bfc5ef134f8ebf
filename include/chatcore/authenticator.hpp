// Authenticator: turns the token of a Hello frame into a user.
//
// The engine knows nothing about how tokens are issued or stored; chatcored
// implements this over the Store's hashed tokens, an embedding application
// over its own session system.
//
// Called on the engine's owner thread; should be fast (a store read).
#pragma once

#include <string>
#include <string_view>

#include "chatcore/ids.hpp"
#include "chatcore/status.hpp"

namespace chatcore {

struct Identity {
  UserId user;
  // An opaque key naming the credential used (e.g. the token's hash), so
  // revoking that credential can close exactly the sessions opened with it.
  std::string credential_key;
};

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // kUnauthenticated for an unknown, expired or revoked token.
  virtual Result<Identity> authenticate(std::string_view token) = 0;
};

}  // namespace chatcore
