// TokenAuth: passwords and bearer tokens for chatcored.
//
// Passwords are hashed with libsodium's crypto_pwhash_str (Argon2id, a
// memory-hard KDF). Tokens are 32 random bytes (randombytes_buf), handed to
// the client as 64 hex characters; only their SHA-256 (crypto_hash_sha256)
// is stored, so a leaked database holds no usable token. Tokens expire
// (token_ttl_ms) and are revocable (logout).
//
// Implements chatcore::Authenticator for the WebSocket Hello; the
// credential_key it reports is the token's hash, so revocation can close
// the sessions opened with that token (Engine::revoke_credential).
//
// Threading: any thread; it calls the Store, which is thread-safe.
// chatcored calls issue() and revoke() on its HTTP write thread,
// authenticate() on the owner thread (a Hello, each HTTP request). A token
// authenticate() finds expired is deleted through set_cleanup_runner():
// chatcored hands that write to the HTTP write thread, because on the owner
// thread a store write may wait for LMDB's writer lock (a running
// checkpoint holds it for up to tens of milliseconds) and stall every
// session meanwhile. State: that runner, set before use, and the set of
// tokens whose deletion is queued (under a mutex).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

#include "chatcore/authenticator.hpp"
#include "chatcore/clock.hpp"
#include "chatcore/store.hpp"

namespace chatcored {

class TokenAuth final : public chatcore::Authenticator {
 public:
  TokenAuth(chatcore::Store& store, const chatcore::Clock& clock, std::int64_t token_ttl_ms);

  // chatcore::Authenticator: kUnauthenticated for unknown/expired/revoked.
  // An expired token is also deleted, through the cleanup runner.
  chatcore::Result<chatcore::Identity> authenticate(std::string_view token) override;

  // Runs (or queues) a store write that nobody waits for.
  using CleanupRunner = std::function<void(std::function<void()>)>;
  // Where authenticate() deletes expired tokens; empty (the default): at
  // once, on the calling thread. Not thread-safe: set it while nothing
  // authenticates, and reset it before the runner goes away.
  void set_cleanup_runner(CleanupRunner run) { cleanup_ = std::move(run); }

  // Argon2id hash string of a password (kInternal if libsodium fails, e.g.
  // out of memory).
  chatcore::Result<std::string> hash_password(std::string_view password);
  bool verify_password(std::string_view hash, std::string_view password);

  struct Issued {
    std::string token;               // give to the client; never stored
    std::string credential_key;      // hex SHA-256 of the token's 32 bytes
    std::int64_t expires_at_ms = 0;  // Unix ms from which on the token is refused
  };
  // A fresh token for `user`, stored hashed with its expiry.
  chatcore::Result<Issued> issue(chatcore::UserId user);
  // Deletes the token; returns its credential_key (for
  // Engine::revoke_credential). kUnauthenticated if it was not valid.
  chatcore::Result<std::string> revoke(std::string_view token);

  // "Bearer <token>" -> identity, the HTTP form of authenticate().
  chatcore::Result<chatcore::Identity> authenticate_header(std::string_view authorization);
  // The token of a "Bearer <token>" header value (scheme case-insensitive,
  // surrounding blanks ignored), or nullopt for any other form.
  static std::optional<std::string_view> bearer_token(std::string_view authorization);

 private:
  chatcore::Store& store_;
  const chatcore::Clock& clock_;
  std::int64_t ttl_ms_;
  CleanupRunner cleanup_;
  std::mutex deleting_mu_;
  std::unordered_set<std::string> deleting_;  // expired tokens with a deletion queued
};

}  // namespace chatcored
