// A minimal XMPP client adapter (RFC 6120 over plain TCP 5222), enough to
// put ejabberd through the same schedule as chatcore:
//   stream -> SASL PLAIN -> stream restart -> resource bind ->
//   XEP-0198 stream management <enable/> -> <presence/>   (ready)
//   1:1: <message type='chat' id='NONCE-INDEX'><body/></message><r/>
//   group: MUC join (XEP-0045 presence; the room's first occupant accepts
//          the instant-room defaults), <message type='groupchat'>.
// Acks are XEP-0198's: every message is followed by <r/>, and the
// server's <a h='N'/> acknowledges the first N stanzas the client sent
// since <enable/>, so the client keeps (stanza number -> message index)
// and acks every message at or below h. The server's own <r/> is
// answered with the count of stanzas received (ejabberd closes a stream
// whose unacknowledged queue overflows).
// With stream_management off (the Tsung cross-check: Tsung's client does
// not enable XEP-0198) there is no <enable/> and no <r/>: a message counts
// as acknowledged as soon as it is written, so only delivery figures mean
// anything in that mode.
// XML is parsed with expat (the stream is one document; depth-1 children
// are the stanzas), never by hand.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "client.hpp"

namespace chatcore_bench {

struct XmppTarget {
  std::string host = "127.0.0.1";
  std::uint16_t port = 5222;
  std::string domain = "localhost";
  std::string muc_domain = "conference.localhost";
  std::string user_prefix = "u";  // accounts u0, u1, ... created before the run
  std::string password = "bench-password";
  std::uint32_t nonce = 0;
  bool stream_management = true;  // XEP-0198 acks (see the file comment)
};

class XmppAdapter final : public Adapter {
 public:
  explicit XmppAdapter(XmppTarget target);
  std::string name() const override { return "ejabberd"; }
  void setup_users(std::size_t n) override { users_ = n; }
  void setup_groups(const std::vector<std::vector<std::size_t>>& groups) override;
  std::unique_ptr<BenchClient> make_client(asio::io_context& io, Events& events,
                                           const ClientSpec& spec) override;

 private:
  XmppTarget target_;
  asio::ip::tcp::endpoint server_;
  std::size_t users_ = 0;
  std::vector<std::string> rooms_;
};

}  // namespace chatcore_bench
