// Protocol: the wire format's entry points.
//
// The schema is schema/wire.fbs; flatc generates chatcore/wire_generated.h
// at build time (never committed). This header adds what the engine and
// every transport share: the verifier gate and frame builders.
//
// Decoding rule: every inbound frame goes through verify_frame() before any
// field is read. A frame that fails it is malformed (ErrorCode::
// kMalformedFrame, CloseCode::kMalformedFrame).
//
// Thread-safety: free functions without shared state.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "chatcore/ids.hpp"
#include "chatcore/model.hpp"
#include "chatcore/status.hpp"
#include "chatcore/wire_generated.h"

namespace chatcore {

inline constexpr std::uint32_t kProtocolVersion = 1;

// The verified root of a frame, or nullptr if the bytes are not a valid
// Frame (the FlatBuffers verifier, with depth and table limits).
const wire::Frame* verify_frame(std::span<const std::uint8_t> bytes);

// Builders for server and client frames. Each returns the finished bytes.
std::vector<std::uint8_t> encode_error(std::uint64_t request_id, const Status& status,
                                       std::uint32_t retry_after_ms = 0);
std::vector<std::uint8_t> encode_hello(std::uint64_t request_id, std::string_view token,
                                       std::string_view device_id, std::uint64_t cursor);
std::vector<std::uint8_t> encode_send(std::uint64_t request_id, ConversationId conv, UserId peer,
                                      const ClientMsgId& client_msg_id, std::string_view body);
std::vector<std::uint8_t> encode_heartbeat(std::uint64_t request_id);
std::vector<std::uint8_t> encode_deliver(std::uint64_t inbox_seq, const Message& message);

// The union member's name ("Send", "Deliver", ...), for logs.
const char* frame_type_name(wire::Body type) noexcept;

}  // namespace chatcore
