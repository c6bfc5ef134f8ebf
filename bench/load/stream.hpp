// Stream: one client TCP connection of the load generator, on Asio.
//
// Everything runs on the generator's single io_context thread, so there
// are no locks. Two properties matter for a load generator:
//  * Writes are coalesced: bytes appended during one pass of the event loop
//    go out in one write() when the posted flush runs, so the generator's
//    own syscalls do not grow with the frame count and cannot become the
//    bottleneck it is measuring in the server.
//  * The local end binds to a chosen 127.0.0.x address (with
//    IP_BIND_ADDRESS_NO_PORT, the port is picked at connect time per
//    4-tuple), so 19,000 connections to one server port never run out of
//    ephemeral ports, even with earlier runs' sockets in TIME_WAIT.
//
// Subclasses implement the protocol: on_connected(), on_bytes() (returns
// how many bytes it consumed; the rest is kept for the next read) and
// on_closed().
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <asio.hpp>

namespace chatcore_bench {

class Stream {
 public:
  Stream(asio::io_context& io, std::size_t read_chunk);
  virtual ~Stream() = default;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Binds to `source` (port 0) and connects to `server`.
  void connect(const asio::ip::tcp::endpoint& server, const asio::ip::address& source);
  // Queues bytes; they are written at the end of this event-loop pass.
  void write(std::string_view bytes);
  void write(std::span<const std::uint8_t> bytes);
  // Direct access for encoders that build in place; call mark_dirty() after.
  std::string& out() { return out_; }
  void mark_dirty();
  // Closes the socket at once (pending output is dropped).
  void close();
  bool open() const { return open_; }
  std::uint64_t write_calls() const { return write_calls_; }

 protected:
  virtual void on_connected() = 0;
  virtual std::size_t on_bytes(std::span<const std::uint8_t> data) = 0;
  // Called once, when the connection fails or ends (never after close()).
  virtual void on_closed(const std::string& why) = 0;

  asio::io_context& io_;

 private:
  void read_more();
  void flush();
  void fail(const std::string& why);

  asio::ip::tcp::socket socket_;
  std::vector<std::uint8_t> in_;
  std::size_t in_len_ = 0;
  std::size_t read_chunk_;
  std::string out_;       // appended to during a loop pass
  std::string inflight_;  // being written
  bool writing_ = false;
  bool flush_posted_ = false;
  bool open_ = false;
  bool ended_ = false;  // close() called or on_closed() reported
  std::uint64_t write_calls_ = 0;
};

}  // namespace chatcore_bench
