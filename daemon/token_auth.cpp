// TokenAuth over libsodium. See token_auth.hpp for the contract.
//
// Why the token's hash is the store key: a lookup by SHA-256(token) is a
// lookup by a value the attacker cannot steer, so the store's key
// comparisons leak nothing usable through timing, and no constant-time
// compare (sodium_memcmp) is needed on this path. The hash is taken over the
// 32 decoded bytes, so upper- and lower-case hex name the same token.
#include "token_auth.hpp"

#include <array>
#include <cstring>
#include <stdexcept>

#include <sodium.h>

namespace chatcored {

using chatcore::Identity;
using chatcore::Result;
using chatcore::Status;

namespace {

constexpr std::size_t kTokenBytes = 32;

// sodium_init() must run before any other libsodium call; it is idempotent
// and thread-safe, and the static makes it run once per process.
void ensure_sodium() {
  static const int rc = sodium_init();
  if (rc < 0) throw std::runtime_error("libsodium: sodium_init failed");
}

std::string to_hex(const unsigned char* bytes, std::size_t len) {
  std::string hex(len * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), bytes, len);
  hex.resize(len * 2);
  return hex;
}

std::string sha256_hex(const unsigned char* bytes, std::size_t len) {
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), bytes, len);
  return to_hex(digest.data(), digest.size());
}

// The credential key (store key) of a client-supplied token, or nullopt if
// the text is not 64 hex characters.
std::optional<std::string> key_of(std::string_view token) {
  if (token.size() != kTokenBytes * 2) return std::nullopt;
  std::array<unsigned char, kTokenBytes> raw{};
  std::size_t raw_len = 0;
  const char* end = nullptr;
  if (sodium_hex2bin(raw.data(), raw.size(), token.data(), token.size(), nullptr, &raw_len, &end) !=
          0 ||
      raw_len != kTokenBytes || end != token.data() + token.size()) {
    return std::nullopt;
  }
  return sha256_hex(raw.data(), raw.size());
}

bool ascii_iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] - 'A' + 'a') : b[i];
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

TokenAuth::TokenAuth(chatcore::Store& store, const chatcore::Clock& clock,
                     std::int64_t token_ttl_ms)
    : store_(store), clock_(clock), ttl_ms_(token_ttl_ms) {
  ensure_sodium();
}

Result<Identity> TokenAuth::authenticate(std::string_view token) {
  auto key = key_of(token);
  // One message for every kind of bad token: the client can do nothing
  // different for "malformed" versus "unknown", and a uniform answer tells
  // an attacker nothing.
  if (!key) return Status::unauthenticated("invalid, expired or revoked token");
  auto record = store_.get_token(*key);
  if (!record) {
    if (record.status().code() == chatcore::ErrorCode::kNotFound) {
      return Status::unauthenticated("invalid, expired or revoked token");
    }
    return record.status();  // a storage failure is not the client's fault
  }
  if (clock_.now_ms() >= record->expires_at_ms) {
    // Expired tokens are deleted when first seen, so the table does not
    // grow with dead entries; a failure here only delays that cleanup (the
    // next authenticate() of the token tries again).
    // One deletion queued per token: a client retrying an expired token
    // in a loop must not queue a write per attempt.
    {
      std::lock_guard lock(deleting_mu_);
      if (!deleting_.insert(*key).second) {
        return Status::unauthenticated("invalid, expired or revoked token");
      }
    }
    auto remove = [this, key = *key] {
      (void)store_.delete_token(key);
      std::lock_guard lock(deleting_mu_);
      deleting_.erase(key);
    };
    if (cleanup_) {
      cleanup_(std::move(remove));
    } else {
      remove();
    }
    return Status::unauthenticated("invalid, expired or revoked token");
  }
  return Identity{record->user, std::move(*key)};
}

Result<std::string> TokenAuth::hash_password(std::string_view password) {
  std::string out(crypto_pwhash_STRBYTES, '\0');
  if (crypto_pwhash_str(out.data(), password.data(), password.size(),
                        crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    return Status::internal("password hashing failed (out of memory?)");
  }
  out.resize(std::strlen(out.c_str()));
  return out;
}

bool TokenAuth::verify_password(std::string_view hash, std::string_view password) {
  // crypto_pwhash_str_verify reads a NUL-terminated string; the copy
  // guarantees one (an embedded NUL merely shortens it, which fails).
  const std::string terminated(hash);
  return crypto_pwhash_str_verify(terminated.c_str(), password.data(), password.size()) == 0;
}

Result<TokenAuth::Issued> TokenAuth::issue(chatcore::UserId user) {
  std::array<unsigned char, kTokenBytes> raw{};
  randombytes_buf(raw.data(), raw.size());
  Issued issued{to_hex(raw.data(), raw.size()), sha256_hex(raw.data(), raw.size()),
                clock_.now_ms() + ttl_ms_};
  sodium_memzero(raw.data(), raw.size());
  chatcore::TokenRecord record{user, issued.expires_at_ms};
  if (auto st = store_.put_token(issued.credential_key, record); !st) return st;
  return issued;
}

Result<std::string> TokenAuth::revoke(std::string_view token) {
  auto identity = authenticate(token);
  if (!identity) return identity.status();
  if (auto st = store_.delete_token(identity->credential_key); !st) return st;
  return std::move(identity->credential_key);
}

std::optional<std::string_view> TokenAuth::bearer_token(std::string_view authorization) {
  std::string_view value = trim(authorization);
  auto space = value.find_first_of(" \t");
  // RFC 7235: the auth scheme is case-insensitive.
  if (space == std::string_view::npos || !ascii_iequals(value.substr(0, space), "bearer")) {
    return std::nullopt;
  }
  return trim(value.substr(space));
}

Result<Identity> TokenAuth::authenticate_header(std::string_view authorization) {
  auto token = bearer_token(authorization);
  if (!token) return Status::unauthenticated("missing 'Authorization: Bearer <token>' header");
  return authenticate(*token);
}

}  // namespace chatcored
