#include "chatcore/ids.hpp"

#include <doctest/doctest.h>

using namespace chatcore;

TEST_CASE("a direct conversation id is the same for both users and names both") {
  auto ab = ConversationId::direct(UserId(7), UserId(42));
  auto ba = ConversationId::direct(UserId(42), UserId(7));
  CHECK(ab == ba);
  CHECK(ab.is_direct());
  CHECK(ab.low_user() == UserId(7));
  CHECK(ab.high_user() == UserId(42));
  CHECK(ab.peer_of(UserId(7)) == UserId(42));
  CHECK(ab.peer_of(UserId(42)) == UserId(7));
  CHECK((ab.value >> 63) == 0);
}

TEST_CASE("direct and group ids never collide, even at the extremes") {
  auto direct_max = ConversationId::direct(UserId(kMaxUserId - 1), UserId(kMaxUserId));
  auto group_min = ConversationId::group(GroupId(1));
  auto group_max = ConversationId::group(GroupId(kMaxGroupId));
  CHECK(direct_max.is_direct());
  CHECK(group_min.is_group());
  CHECK(direct_max.value < group_min.value);
  CHECK(group_max.group_id() == GroupId(kMaxGroupId));
  CHECK((group_max.value >> 63) == 0);
}

TEST_CASE("direct_checked refuses what direct() cannot represent") {
  CHECK_FALSE(ConversationId::direct_checked(UserId(1), UserId(1)));
  CHECK_FALSE(ConversationId::direct_checked(UserId(0), UserId(1)));
  CHECK_FALSE(ConversationId::direct_checked(UserId(1), UserId(kMaxUserId + 1)));
  CHECK(ConversationId::direct_checked(UserId(2), UserId(1)).value() ==
        ConversationId::direct(UserId(1), UserId(2)));
}

TEST_CASE("from_raw accepts only well-formed ids") {
  CHECK(ConversationId::from_raw(ConversationId::direct(UserId(3), UserId(9)).value));
  CHECK(ConversationId::from_raw(ConversationId::group(GroupId(5)).value));
  CHECK_FALSE(ConversationId::from_raw(0));
  CHECK_FALSE(ConversationId::from_raw(std::uint64_t{1} << 63));
  CHECK_FALSE(ConversationId::from_raw(std::uint64_t{1} << 62));        // group 0
  CHECK_FALSE(ConversationId::from_raw((std::uint64_t{9} << 31) | 3));  // lo > hi
  CHECK_FALSE(ConversationId::from_raw(5));                             // lo == 0
}

TEST_CASE("client message ids round-trip through canonical UUID text") {
  ClientMsgId id;
  for (int i = 0; i < 16; ++i) id.bytes[i] = static_cast<std::uint8_t>(i * 17);
  std::string text = id.to_uuid();
  CHECK(text == "00112233-4455-6677-8899-aabbccddeeff");
  CHECK(ClientMsgId::from_uuid(text).value() == id);
  CHECK(ClientMsgId::from_uuid("00112233-4455-6677-8899-AABBCCDDEEFF").value() == id);
  CHECK_FALSE(ClientMsgId::from_uuid("00112233445566778899aabbccddeeff"));
  CHECK_FALSE(ClientMsgId::from_uuid("00112233-4455-6677-8899-aabbccddeefg"));
  CHECK_FALSE(ClientMsgId::from_uuid("0011223-34455-6677-8899-aabbccddeeff"));
  CHECK_FALSE(ClientMsgId::from_uuid(""));
  CHECK(ClientMsgId().is_zero());
  CHECK_FALSE(id.is_zero());
}

TEST_CASE("decimal ids parse strictly") {
  CHECK(parse_decimal("0").value() == 0);
  CHECK(parse_decimal("18446744073709551615").value() == UINT64_MAX);
  CHECK_FALSE(parse_decimal("18446744073709551616"));
  CHECK_FALSE(parse_decimal("-1"));
  CHECK_FALSE(parse_decimal("+1"));
  CHECK_FALSE(parse_decimal(" 1"));
  CHECK_FALSE(parse_decimal("1a"));
  CHECK_FALSE(parse_decimal(""));
  CHECK(to_decimal(1234567890123456789ULL) == "1234567890123456789");
}
