// WsClient: the client side of RFC 6455 over a Stream — glue, not a library.
//
// Why not libwebsockets' client API (which Debian has): its rule of one
// lws_write() per WRITEABLE callback turns N queued frames on a socket into
// N event-loop passes and N syscalls, and its default event loop is poll(2)
// over every descriptor; at 19,000 connections and ~100,000 frames/s on the
// generator's single core that would make the generator, not the server,
// the bottleneck. Boost.Beast is not a project dependency. What is here is
// only what a client needs: the upgrade request, a 101 check, masked
// outgoing frames, and reassembly of (possibly fragmented) incoming
// messages, with ping answered and close reported.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "stream.hpp"

namespace chatcore_bench {

class WsClient : public Stream {
 public:
  WsClient(asio::io_context& io, std::size_t read_chunk, std::string host_header, std::string path,
           std::string subprotocol);

  // Queues one binary message (one frame, masked as a client must).
  void send_binary(std::span<const std::uint8_t> payload);

 protected:
  // The 101 arrived: the socket now carries WebSocket frames.
  virtual void on_open() = 0;
  virtual void on_message(std::span<const std::uint8_t> payload) = 0;
  // A close frame from the server (status code, or 1005 when none).
  virtual void on_ws_close(int code) = 0;

 private:
  void on_connected() final;
  std::size_t on_bytes(std::span<const std::uint8_t> data) final;
  std::size_t parse_frames(std::span<const std::uint8_t> data);
  void send_frame(std::uint8_t opcode, std::span<const std::uint8_t> payload);

  std::string host_header_;
  std::string path_;
  std::string subprotocol_;
  bool upgraded_ = false;
  std::vector<std::uint8_t> fragments_;  // a fragmented message being reassembled
  std::uint64_t mask_state_;
};

}  // namespace chatcore_bench
