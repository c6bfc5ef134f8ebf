// The protocol-neutral face of one benchmark connection, so that every
// scenario drives chatcore and XMPP through the same schedule and the same
// measurement code.
//
// A message is named by its index in the run's message table (uint32) plus
// the run's random nonce, carried in the protocol's own client-chosen id
// (chatcore: the 16-byte client_msg_id; XMPP: the stanza id). The runner
// keeps each message's intended send time, so adapters report only
// "this index was acked / delivered here".
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <asio.hpp>

namespace chatcore_bench {

// Callbacks from clients to the runner, by connection index.
class Events {
 public:
  virtual ~Events() = default;
  virtual void on_ready(std::size_t conn) = 0;   // authenticated, may send
  virtual void on_joined(std::size_t conn) = 0;  // group joined (XMPP MUC)
  virtual void on_ack(std::size_t conn, std::uint32_t msg) = 0;
  virtual void on_deliver(std::size_t conn, std::uint32_t msg) = 0;
  // A send refused by the server (msg known) or any other protocol error.
  virtual void on_send_error(std::size_t conn, std::uint32_t msg, const std::string& what) = 0;
  virtual void on_error(std::size_t conn, const std::string& what) = 0;
  virtual void on_closed(std::size_t conn, const std::string& why) = 0;
};

class BenchClient {
 public:
  virtual ~BenchClient() = default;
  virtual void start() = 0;
  // 1:1 message to user index `peer` / group message to group index `group`.
  virtual void send_direct(std::size_t peer, std::uint32_t msg) = 0;
  virtual void send_group(std::size_t group, std::uint32_t msg) = 0;
  // XMPP joins the MUC room; chatcore members are members from creation.
  virtual void join(std::size_t group) = 0;
  virtual void heartbeat() = 0;
  virtual void stop() = 0;
  virtual std::uint64_t write_calls() const = 0;
};

struct ClientSpec {
  std::size_t conn = 0;      // index in the runner's connection table
  std::size_t user = 0;      // user index
  std::size_t device = 0;    // device index of that user
  asio::ip::address source;  // local address to bind
};

// Creates users/groups before a run and makes clients for one server.
class Adapter {
 public:
  virtual ~Adapter() = default;
  virtual std::string name() const = 0;
  // Accounts for user indexes 0..n-1 (chatcore: signup + login over HTTP;
  // XMPP: the accounts were created before the server started).
  virtual void setup_users(std::size_t n) = 0;
  // Groups by member user indexes; member 0 is the owner.
  virtual void setup_groups(const std::vector<std::vector<std::size_t>>& groups) = 0;
  virtual std::unique_ptr<BenchClient> make_client(asio::io_context& io, Events& events,
                                                   const ClientSpec& spec) = 0;
};

// The message body: 100 bytes of ASCII for both protocols.
inline const std::string& message_body() {
  static const std::string body = [] {
    std::string b;
    while (b.size() < 100) b += "chatcore-bench 100-byte body ";
    b.resize(100);
    return b;
  }();
  return body;
}

}  // namespace chatcore_bench
