// The chatcore adapter: accounts and groups over the HTTP API (libcurl),
// chat over /ws with the FlatBuffers protocol (docs/protocol.md).
//
// One connection: WebSocket upgrade (subprotocol chatcore.v1) -> Hello
// {token, device_id, cursor 0} -> Welcome (ready). A send is a Send frame
// whose request_id is kSendIdBase + message index, so the Ack (sent only
// after the durable commit) names the message; its client_msg_id carries
// the run nonce and the index, so every Deliver names it too.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "client.hpp"

namespace chatcore_bench {

struct ChatcoreTarget {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::string password = "bench-password";
  std::uint32_t nonce = 0;  // makes names and client ids unique per run
};

class ChatcoreAdapter final : public Adapter {
 public:
  explicit ChatcoreAdapter(ChatcoreTarget target);
  std::string name() const override { return "chatcore"; }
  void setup_users(std::size_t n) override;
  void setup_groups(const std::vector<std::vector<std::size_t>>& groups) override;
  std::unique_ptr<BenchClient> make_client(asio::io_context& io, Events& events,
                                           const ClientSpec& spec) override;

  struct Directory {
    std::vector<std::uint64_t> user_ids;
    std::vector<std::string> tokens;
    std::vector<std::uint64_t> group_conversations;
  };

 private:
  ChatcoreTarget target_;
  asio::ip::tcp::endpoint server_;
  Directory dir_;
};

}  // namespace chatcore_bench
