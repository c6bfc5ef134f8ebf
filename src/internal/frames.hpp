// Server-side frame builders used by the engine (the client-side and shared
// ones are public in chatcore/protocol.hpp). Each returns finished bytes of
// one wire::Frame.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "chatcore/model.hpp"
#include "chatcore/presence.hpp"
#include "chatcore/protocol.hpp"

namespace chatcore::internal {

using Bytes = std::vector<std::uint8_t>;

struct WelcomeInfo {
  UserId user;
  std::uint64_t inbox_head = 0;
  std::uint32_t heartbeat_ms = 0;
  std::uint32_t presence_timeout_ms = 0;
  std::int64_t server_time_ms = 0;
  std::uint32_t max_body_chars = 0;
  std::uint64_t session_id = 0;
};

Bytes encode_welcome(std::uint64_t request_id, const WelcomeInfo& w);
Bytes encode_ack(std::uint64_t request_id, const Message& m, std::uint64_t inbox_seq,
                 bool duplicate);
Bytes encode_sync_batch(std::uint64_t request_id, std::span<const InboxItem> items,
                        std::uint64_t inbox_head);
Bytes encode_history_page(std::uint64_t request_id, ConversationId conv,
                          std::span<const std::shared_ptr<const Message>> messages);
Bytes encode_heartbeat_ack(std::uint64_t request_id, std::int64_t server_time_ms);
Bytes encode_presence(std::uint64_t request_id, const PresenceInfo& p);
Bytes encode_presence_list(std::uint64_t request_id, std::span<const PresenceInfo> items);
Bytes encode_mark_read_ack(std::uint64_t request_id, ConversationId conv, std::uint64_t seq);

}  // namespace chatcore::internal
