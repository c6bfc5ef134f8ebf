#include "ws_client.hpp"
#include "base64.hpp"

#include <cstring>
#include <random>

namespace chatcore_bench {

namespace {

constexpr std::size_t kMaxMessageBytes = 1 << 20;  // the server's frames are far smaller

}  // namespace

WsClient::WsClient(asio::io_context& io, std::size_t read_chunk, std::string host_header,
                   std::string path, std::string subprotocol)
    : Stream(io, read_chunk),
      host_header_(std::move(host_header)),
      path_(std::move(path)),
      subprotocol_(std::move(subprotocol)),
      mask_state_(std::random_device{}() | 1) {}

void WsClient::on_connected() {
  std::uint8_t key[16];
  for (auto& b : key) b = static_cast<std::uint8_t>(std::random_device{}());
  std::string req = "GET " + path_ + " HTTP/1.1\r\nHost: " + host_header_ +
                    "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " +
                    base64(std::string_view(reinterpret_cast<const char*>(key), sizeof key)) +
                    "\r\nSec-WebSocket-Version: 13\r\n";
  if (!subprotocol_.empty()) req += "Sec-WebSocket-Protocol: " + subprotocol_ + "\r\n";
  req += "\r\n";
  write(req);
}

std::size_t WsClient::on_bytes(std::span<const std::uint8_t> data) {
  std::size_t used = 0;
  if (!upgraded_) {
    std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
    const auto end = text.find("\r\n\r\n");
    if (end == std::string_view::npos) {
      if (text.size() > 16 * 1024) on_ws_close(1002);
      return 0;
    }
    // The status line is all a load generator needs to check; the accept
    // key only guards against caching proxies, and there are none here.
    if (!text.starts_with("HTTP/1.1 101")) {
      close();
      on_ws_close(-1);  // upgrade refused (e.g. 503 while draining)
      return data.size();
    }
    upgraded_ = true;
    used = end + 4;
    on_open();
    if (!open()) return data.size();
  }
  return used + parse_frames(data.subspan(used));
}

std::size_t WsClient::parse_frames(std::span<const std::uint8_t> data) {
  std::size_t pos = 0;
  while (open()) {
    const std::size_t avail = data.size() - pos;
    if (avail < 2) break;
    const std::uint8_t* p = data.data() + pos;
    const bool fin = (p[0] & 0x80) != 0;
    const std::uint8_t opcode = p[0] & 0x0f;
    const bool masked = (p[1] & 0x80) != 0;
    std::uint64_t len = p[1] & 0x7f;
    std::size_t header = 2;
    if (len == 126) {
      if (avail < 4) break;
      len = (std::uint64_t{p[2]} << 8) | p[3];
      header = 4;
    } else if (len == 127) {
      if (avail < 10) break;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
      header = 10;
    }
    if (len > kMaxMessageBytes) {
      close();
      on_ws_close(1009);
      return data.size();
    }
    const std::size_t mask_at = header;
    if (masked) header += 4;
    if (avail < header + len) break;
    // Servers do not mask, but unmask in place if one does.
    std::uint8_t* payload = const_cast<std::uint8_t*>(p + header);
    if (masked) {
      for (std::uint64_t i = 0; i < len; ++i) payload[i] ^= p[mask_at + (i & 3)];
    }
    std::span<const std::uint8_t> body(payload, static_cast<std::size_t>(len));
    pos += header + static_cast<std::size_t>(len);
    switch (opcode) {
      case 0x0:  // continuation
      case 0x1:
      case 0x2:
        if (fin && fragments_.empty()) {
          on_message(body);
        } else {
          fragments_.insert(fragments_.end(), body.begin(), body.end());
          if (fin) {
            std::vector<std::uint8_t> whole;
            whole.swap(fragments_);
            on_message(whole);
          }
        }
        break;
      case 0x8: {  // close
        const int code = len >= 2 ? (body[0] << 8) | body[1] : 1005;
        close();
        on_ws_close(code);
        return data.size();
      }
      case 0x9:  // ping
        send_frame(0xA, body);
        break;
      default:  // pong, reserved
        break;
    }
  }
  return pos;
}

void WsClient::send_binary(std::span<const std::uint8_t> payload) { send_frame(0x2, payload); }

void WsClient::send_frame(std::uint8_t opcode, std::span<const std::uint8_t> payload) {
  std::string& o = out();
  const std::size_t n = payload.size();
  o.push_back(static_cast<char>(0x80 | opcode));
  if (n < 126) {
    o.push_back(static_cast<char>(0x80 | n));
  } else if (n < 65536) {
    o.push_back(static_cast<char>(0x80 | 126));
    o.push_back(static_cast<char>(n >> 8));
    o.push_back(static_cast<char>(n & 0xff));
  } else {
    o.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i) o.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  }
  // The mask only has to be unpredictable to in-browser attackers; a cheap
  // xorshift is enough for a load generator.
  mask_state_ ^= mask_state_ << 13;
  mask_state_ ^= mask_state_ >> 7;
  mask_state_ ^= mask_state_ << 17;
  std::uint8_t mask[4];
  std::memcpy(mask, &mask_state_, 4);
  o.append(reinterpret_cast<const char*>(mask), 4);
  const std::size_t at = o.size();
  o.resize(at + n);
  char* dst = o.data() + at;
  for (std::size_t i = 0; i < n; ++i) {
    dst[i] = static_cast<char>(payload[i] ^ mask[i & 3]);
  }
  mark_dirty();
}

}  // namespace chatcore_bench
