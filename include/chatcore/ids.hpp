// Identifiers: users, groups, conversations, messages, client message ids.
//
// Every id is a distinct strong type over a 64-bit integer so a UserId can
// never be passed where a GroupId is expected. Ids are plain values: cheap to
// copy, hashable, totally ordered, safe to use from any thread.
//
// Layout decisions (see docs/architecture.md, "Identifiers"):
//  * Bit 63 of every id is always 0, so each id also fits a signed 64-bit
//    column (PostgreSQL BIGINT) and a JSON decimal string round-trips.
//  * UserId: assigned densely by the Store, 1 .. kMaxUserId (2^31 - 1). The
//    31-bit cap is what lets a 1-on-1 conversation id hold both users.
//  * GroupId: 1 .. kMaxGroupId (2^62 - 1), assigned by the Store.
//  * ConversationId: bit 62 is the kind (0 = direct, 1 = group), so the two
//    kinds can never collide.
//      direct: bits 61..31 = the smaller user id, bits 30..0 = the larger.
//      group:  bits 61..0  = the group id.
//    Both users of a 1-on-1 chat therefore compute the same id, and the
//    participants are recoverable from the id alone.
//  * MessageId: a Snowflake (see snowflake.hpp).
//  * ClientMsgId: 16 opaque bytes chosen by the client (a UUID), the key of
//    idempotent sends.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace chatcore {

template <typename Tag>
struct Id {
  std::uint64_t value = 0;

  constexpr Id() = default;
  constexpr explicit Id(std::uint64_t v) : value(v) {}
  constexpr bool valid() const { return value != 0; }
  friend constexpr auto operator<=>(Id, Id) = default;
};

struct UserTag;
struct GroupTag;
struct MessageTag;
using UserId = Id<UserTag>;
using GroupId = Id<GroupTag>;
using MessageId = Id<MessageTag>;

inline constexpr std::uint64_t kMaxUserId = (std::uint64_t{1} << 31) - 1;
inline constexpr std::uint64_t kMaxGroupId = (std::uint64_t{1} << 62) - 1;

enum class ConversationKind : std::uint8_t { kDirect = 0, kGroup = 1 };

class ConversationId {
 public:
  constexpr ConversationId() = default;
  constexpr explicit ConversationId(std::uint64_t raw) : value(raw) {}

  // The 1-on-1 conversation between a and b (order does not matter).
  // Precondition: both ids valid and <= kMaxUserId, a != b (use
  // make_direct_checked for untrusted input).
  static constexpr ConversationId direct(UserId a, UserId b) {
    auto lo = a.value < b.value ? a.value : b.value;
    auto hi = a.value < b.value ? b.value : a.value;
    return ConversationId((lo << 31) | hi);
  }
  // Like direct(), but returns nullopt instead of a meaningless id.
  static std::optional<ConversationId> direct_checked(UserId a, UserId b);

  static constexpr ConversationId group(GroupId g) {
    return ConversationId((std::uint64_t{1} << 62) | g.value);
  }

  // Parses a raw id from untrusted input: nullopt unless it is a well-formed
  // direct or group id (bit 63 clear, non-zero parts, direct parts ordered).
  static std::optional<ConversationId> from_raw(std::uint64_t raw);

  constexpr ConversationKind kind() const {
    return (value >> 62) & 1 ? ConversationKind::kGroup : ConversationKind::kDirect;
  }
  constexpr bool is_group() const { return kind() == ConversationKind::kGroup; }
  constexpr bool is_direct() const { return kind() == ConversationKind::kDirect; }
  // For group conversations only.
  constexpr GroupId group_id() const { return GroupId(value & kMaxGroupId); }
  // For direct conversations only: the smaller and the larger user id.
  constexpr UserId low_user() const { return UserId((value >> 31) & kMaxUserId); }
  constexpr UserId high_user() const { return UserId(value & kMaxUserId); }
  // For direct conversations only: the participant that is not `self`.
  constexpr UserId peer_of(UserId self) const {
    return low_user() == self ? high_user() : low_user();
  }
  constexpr bool valid() const { return value != 0; }

  friend constexpr auto operator<=>(ConversationId, ConversationId) = default;

  std::uint64_t value = 0;
};

// 16 client-chosen bytes identifying one send attempt (usually a UUIDv4).
struct ClientMsgId {
  std::array<std::uint8_t, 16> bytes{};

  friend constexpr auto operator<=>(const ClientMsgId&, const ClientMsgId&) = default;
  bool is_zero() const;

  // Canonical UUID text "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (lowercase).
  std::string to_uuid() const;
  // Accepts canonical UUID text (either case); nullopt otherwise.
  static std::optional<ClientMsgId> from_uuid(std::string_view text);
};

// Decimal text of an id, as used in JSON ("every 64-bit id is a string").
std::string to_decimal(std::uint64_t v);
// Parses a decimal u64 with no sign, no spaces, no overflow; nullopt otherwise.
std::optional<std::uint64_t> parse_decimal(std::string_view text);

}  // namespace chatcore

template <typename Tag>
struct std::hash<chatcore::Id<Tag>> {
  std::size_t operator()(chatcore::Id<Tag> id) const noexcept {
    return std::hash<std::uint64_t>()(id.value);
  }
};
template <>
struct std::hash<chatcore::ConversationId> {
  std::size_t operator()(chatcore::ConversationId id) const noexcept {
    return std::hash<std::uint64_t>()(id.value);
  }
};
