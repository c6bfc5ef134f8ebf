#include "xmpp_client.hpp"
#include "base64.hpp"

#include <expat.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>

#include <fmt/format.h>

#include "stream.hpp"

namespace chatcore_bench {

namespace {

const char* attr(const XML_Char** attrs, const char* name) {
  for (int i = 0; attrs[i] != nullptr; i += 2) {
    if (std::strcmp(attrs[i], name) == 0) return attrs[i + 1];
  }
  return nullptr;
}

class XmppClient final : public Stream, public BenchClient {
 public:
  XmppClient(asio::io_context& io, Events& events, const ClientSpec& spec, const XmppTarget& target,
             const asio::ip::tcp::endpoint& server, const std::vector<std::string>& rooms)
      : Stream(io, 4096),
        events_(events),
        spec_(spec),
        target_(target),
        server_(server),
        rooms_(rooms),
        user_(fmt::format("{}{}", target.user_prefix, spec.user)),
        id_prefix_(fmt::format("{:08x}-", target.nonce)),
        // CHATCORE_BENCH_TRACE=1 prints connection 0's incoming XML (debugging).
        trace_(spec.conn == 0 && std::getenv("CHATCORE_BENCH_TRACE") != nullptr) {
    new_parser();
  }
  ~XmppClient() override {
    if (parser_ != nullptr) XML_ParserFree(parser_);
  }

  void start() override { connect(server_, spec_.source); }

  void send_direct(std::size_t peer, std::uint32_t msg) override {
    send_message(fmt::format("{}{}@{}", target_.user_prefix, peer, target_.domain), "chat", msg);
  }
  void send_group(std::size_t group, std::uint32_t msg) override {
    send_message(rooms_.at(group), "groupchat", msg);
  }

  void join(std::size_t group) override {
    if (state_ != State::kReady) {
      events_.on_error(spec_.conn, "join before ready");
      return;
    }
    joining_ = rooms_.at(group);
    // No history on join: the benchmark measures live fan-out only.
    write(
        fmt::format("<presence to='{}/{}-{}'><x xmlns='http://jabber.org/protocol/muc'>"
                    "<history maxstanzas='0'/></x></presence>",
                    joining_, user_, spec_.device));
    ++sent_stanzas_;
  }

  void heartbeat() override {
    // The XMPP counterpart of chatcore's Heartbeat/HeartbeatAck round trip.
    if (state_ != State::kReady) return;
    // Without stream management, a whitespace keepalive (RFC 6120 §4.6.1).
    write(target_.stream_management ? "<r xmlns='urn:xmpp:sm:3'/>" : " ");
  }

  void stop() override { close(); }
  std::uint64_t write_calls() const override { return Stream::write_calls(); }

 private:
  enum class State { kFeatures1, kAuth, kFeatures2, kBind, kEnable, kReady };

  void new_parser() {
    if (parser_ == nullptr) {
      parser_ = XML_ParserCreate("UTF-8");
    } else {
      XML_ParserReset(parser_, "UTF-8");
    }
    XML_SetUserData(parser_, this);
    XML_SetElementHandler(parser_, &XmppClient::start_cb, &XmppClient::end_cb);
    XML_SetCharacterDataHandler(parser_, &XmppClient::text_cb);
    depth_ = 0;
    fed_ = 0;
    call_base_ = 0;
  }

  void open_stream() {
    write(
        fmt::format("<?xml version='1.0'?><stream:stream to='{}' xmlns='jabber:client' "
                    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
                    target_.domain));
  }

  void send_message(const std::string& to, const char* type, std::uint32_t msg) {
    if (state_ != State::kReady) {
      events_.on_send_error(spec_.conn, msg, "not connected");
      return;
    }
    if (!target_.stream_management) {
      write(fmt::format("<message to='{}' type='{}' id='{}{}'><body>{}</body></message>", to, type,
                        id_prefix_, msg, message_body()));
      events_.on_ack(spec_.conn, msg);  // written is all this mode can know
      return;
    }
    // The <r/> rides in the same write: the ack request costs no syscall.
    write(
        fmt::format("<message to='{}' type='{}' id='{}{}'><body>{}</body></message>"
                    "<r xmlns='urn:xmpp:sm:3'/>",
                    to, type, id_prefix_, msg, message_body()));
    ++sent_stanzas_;
    unacked_.emplace_back(sent_stanzas_, msg);
  }

  void on_connected() override { open_stream(); }

  void become_ready() {
    state_ = State::kReady;
    write("<presence/>");
    ++sent_stanzas_;
    events_.on_ready(spec_.conn);
  }

  std::size_t on_bytes(std::span<const std::uint8_t> data) override {
    if (trace_) {
      std::fprintf(stderr, "xmpp[%zu] <- %.*s\n", spec_.conn, static_cast<int>(data.size()),
                   reinterpret_cast<const char*>(data.data()));
    }
    restart_ = false;
    std::size_t done = 0;
    while (done < data.size() && open()) {
      const auto* p = reinterpret_cast<const char*>(data.data() + done);
      const int len = static_cast<int>(data.size() - done);
      call_base_ = fed_;
      fed_ += len;
      if (XML_Parse(parser_, p, len, XML_FALSE) == XML_STATUS_ERROR) {
        if (restart_) {
          // The stream restarted mid-buffer (after <success/>): parse the
          // rest of the bytes with the fresh parser.
          done += static_cast<std::size_t>(restart_offset_);
          finish_restart();
          continue;
        }
        events_.on_error(spec_.conn,
                         fmt::format("XML: {}", XML_ErrorString(XML_GetErrorCode(parser_))));
        close();
        events_.on_closed(spec_.conn, "bad XML");
        return data.size();
      }
      if (restart_) finish_restart();
      break;
    }
    return data.size();
  }

  void finish_restart() {
    restart_ = false;
    new_parser();
  }

  static void XMLCALL start_cb(void* self, const XML_Char* name, const XML_Char** attrs) {
    static_cast<XmppClient*>(self)->on_start(name, attrs);
  }
  static void XMLCALL end_cb(void* self, const XML_Char* name) {
    static_cast<XmppClient*>(self)->on_end(name);
  }
  static void XMLCALL text_cb(void*, const XML_Char*, int) {}

  void on_start(const char* name, const char** attrs) {
    ++depth_;
    if (depth_ == 2) {
      stanza_ = name;
      stanza_id_.clear();
      stanza_type_.clear();
      status_110_ = false;
      status_201_ = false;
      if (const char* v = attr(attrs, "id")) stanza_id_ = v;
      if (const char* v = attr(attrs, "type")) stanza_type_ = v;
      if (const char* v = attr(attrs, "h")) h_ = std::strtoull(v, nullptr, 10);
    } else if (depth_ == 4 && stanza_ == "presence" && std::strcmp(name, "status") == 0) {
      if (const char* code = attr(attrs, "code")) {
        if (std::strcmp(code, "110") == 0) status_110_ = true;
        if (std::strcmp(code, "201") == 0) status_201_ = true;
      }
    }
  }

  void on_end(const char*) {
    if (depth_ == 2) on_stanza();
    --depth_;
  }

  void on_stanza() {
    const std::string& s = stanza_;
    // XEP-0198 counts stanzas from <enabled/> on; the bind result is not one.
    if ((s == "message" || s == "presence" || s == "iq") && state_ == State::kReady) {
      ++received_stanzas_;
    }
    if (s == "stream:features") {
      if (state_ == State::kFeatures1) {
        std::string creds;
        creds.push_back('\0');
        creds += user_;
        creds.push_back('\0');
        creds += target_.password;
        write("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64(creds) +
              "</auth>");
        state_ = State::kAuth;
      } else if (state_ == State::kFeatures2) {
        write(
            fmt::format("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                        "<resource>d{}</resource></bind></iq>",
                        spec_.device));
        state_ = State::kBind;
      }
    } else if (s == "success" && state_ == State::kAuth) {
      state_ = State::kFeatures2;
      // RFC 6120 6.4.6: a new stream after SASL success. Expat cannot be
      // reset from inside a callback: stop it here, reset in on_bytes().
      restart_ = true;
      // Byte index counts from the parser's first byte: make it relative to
      // the buffer being parsed now.
      restart_offset_ = static_cast<int>(XML_GetCurrentByteIndex(parser_) - call_base_) +
                        XML_GetCurrentByteCount(parser_);
      open_stream();
      XML_StopParser(parser_, XML_FALSE);
    } else if (s == "failure" || s == "stream:error") {
      events_.on_error(spec_.conn, fmt::format("{} in state {}", s, static_cast<int>(state_)));
      close();
      events_.on_closed(spec_.conn, s);
    } else if (s == "iq" && state_ == State::kBind && stanza_id_ == "bind") {
      if (stanza_type_ != "result") {
        events_.on_error(spec_.conn, "bind failed");
        return;
      }
      if (target_.stream_management) {
        write("<enable xmlns='urn:xmpp:sm:3'/>");
        state_ = State::kEnable;
      } else {
        become_ready();
      }
    } else if (s == "enabled" && state_ == State::kEnable) {
      become_ready();
    } else if (s == "r") {
      write(fmt::format("<a xmlns='urn:xmpp:sm:3' h='{}'/>", received_stanzas_));
    } else if (s == "a") {
      while (!unacked_.empty() && unacked_.front().first <= h_) {
        const std::uint32_t msg = unacked_.front().second;
        unacked_.pop_front();
        events_.on_ack(spec_.conn, msg);
      }
    } else if (s == "message") {
      if (stanza_type_ == "error") {
        events_.on_error(spec_.conn, "message error " + stanza_id_);
        return;
      }
      if (stanza_id_.starts_with(id_prefix_)) {
        std::uint32_t msg = 0;
        const char* b = stanza_id_.data() + id_prefix_.size();
        const char* e = stanza_id_.data() + stanza_id_.size();
        if (std::from_chars(b, e, msg).ec == std::errc()) events_.on_deliver(spec_.conn, msg);
      }
    } else if (s == "presence" && !joining_.empty() && status_110_) {
      if (status_201_) {
        // We created the room: submit its configuration (XEP-0045 10.1.3),
        // which also unlocks it, with message archiving (MAM) switched on
        // explicitly: every group message is archived, as chatcored stores
        // every group message.
        write(fmt::format(
            "<iq type='set' to='{}' id='cfg'><query xmlns='http://jabber.org/protocol/muc#owner'>"
            "<x xmlns='jabber:x:data' type='submit'>"
            "<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value>"
            "</field><field var='mam'><value>1</value></field></x></query></iq>",
            joining_));
        ++sent_stanzas_;
        return;  // joined once the configuration result arrives
      }
      joining_.clear();
      events_.on_joined(spec_.conn);
    } else if (s == "iq" && stanza_id_ == "cfg" && !joining_.empty()) {
      joining_.clear();
      if (stanza_type_ != "result") events_.on_error(spec_.conn, "room configuration refused");
      events_.on_joined(spec_.conn);
    }
  }

  void on_closed(const std::string& why) override { events_.on_closed(spec_.conn, why); }

  Events& events_;
  ClientSpec spec_;
  const XmppTarget& target_;
  asio::ip::tcp::endpoint server_;
  const std::vector<std::string>& rooms_;
  std::string user_;
  std::string id_prefix_;
  bool trace_ = false;
  XML_Parser parser_ = nullptr;
  State state_ = State::kFeatures1;
  int depth_ = 0;
  bool restart_ = false;
  int restart_offset_ = 0;
  std::int64_t fed_ = 0;        // bytes given to this parser so far
  std::int64_t call_base_ = 0;  // fed_ before the current XML_Parse call
  std::string stanza_;
  std::string stanza_id_;
  std::string stanza_type_;
  bool status_110_ = false;
  bool status_201_ = false;
  std::uint64_t h_ = 0;
  std::uint64_t sent_stanzas_ = 0;      // since <enable/>, as the server counts them
  std::uint64_t received_stanzas_ = 0;  // our answer to the server's <r/>
  std::deque<std::pair<std::uint64_t, std::uint32_t>> unacked_;
  std::string joining_;
};

}  // namespace

XmppAdapter::XmppAdapter(XmppTarget target)
    : target_(std::move(target)), server_(asio::ip::make_address(target_.host), target_.port) {}

void XmppAdapter::setup_groups(const std::vector<std::vector<std::size_t>>& groups) {
  rooms_.clear();
  for (std::size_t g = 0; g < groups.size(); ++g) {
    rooms_.push_back(fmt::format("b{:08x}g{}@{}", target_.nonce, g, target_.muc_domain));
  }
}

std::unique_ptr<BenchClient> XmppAdapter::make_client(asio::io_context& io, Events& events,
                                                      const ClientSpec& spec) {
  return std::make_unique<XmppClient>(io, events, spec, target_, server_, rooms_);
}

}  // namespace chatcore_bench
