#include "stream.hpp"

#include <netinet/in.h>

namespace chatcore_bench {

namespace {
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif
using BindNoPort = asio::detail::socket_option::boolean<IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT>;
}  // namespace

Stream::Stream(asio::io_context& io, std::size_t read_chunk)
    : io_(io), socket_(io), read_chunk_(read_chunk) {}

void Stream::connect(const asio::ip::tcp::endpoint& server, const asio::ip::address& source) {
  std::error_code ec;
  socket_.open(server.protocol(), ec);
  if (!ec && !source.is_unspecified()) {
    socket_.set_option(BindNoPort(true), ec);
    ec.clear();  // an old kernel without the option still works, with fewer ports
    socket_.bind(asio::ip::tcp::endpoint(source, 0), ec);
  }
  if (ec) {
    asio::post(io_, [this, ec] { fail("bind: " + ec.message()); });
    return;
  }
  socket_.async_connect(server, [this](const std::error_code& err) {
    if (ended_) return;
    if (err) return fail("connect: " + err.message());
    open_ = true;
    std::error_code ignored;
    // Frames are small and latency is what we measure: no Nagle delay.
    socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
    on_connected();
    read_more();
  });
}

void Stream::read_more() {
  if (!open_) return;
  if (in_.size() - in_len_ < read_chunk_) in_.resize(in_len_ + read_chunk_);
  socket_.async_read_some(
      asio::buffer(in_.data() + in_len_, in_.size() - in_len_),
      [this](const std::error_code& err, std::size_t n) {
        if (!open_) return;
        if (err) return fail(err == asio::error::eof ? "closed by server" : err.message());
        in_len_ += n;
        const std::size_t used = on_bytes(std::span<const std::uint8_t>(in_.data(), in_len_));
        if (!open_) return;
        if (used > 0) {
          std::copy(in_.begin() + static_cast<std::ptrdiff_t>(used),
                    in_.begin() + static_cast<std::ptrdiff_t>(in_len_), in_.begin());
          in_len_ -= used;
        }
        // An idle connection keeps a small buffer, not the largest it saw.
        if (in_len_ == 0 && in_.size() > 4 * read_chunk_) {
          in_.resize(read_chunk_);
          in_.shrink_to_fit();
        }
        read_more();
      });
}

void Stream::write(std::string_view bytes) {
  out_.append(bytes);
  mark_dirty();
}

void Stream::write(std::span<const std::uint8_t> bytes) {
  out_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  mark_dirty();
}

void Stream::mark_dirty() {
  if (flush_posted_ || writing_ || !open_) return;
  flush_posted_ = true;
  asio::post(io_, [this] {
    flush_posted_ = false;
    flush();
  });
}

void Stream::flush() {
  if (writing_ || out_.empty() || !open_) return;
  writing_ = true;
  inflight_.swap(out_);
  ++write_calls_;
  asio::async_write(socket_, asio::buffer(inflight_),
                    [this](const std::error_code& err, std::size_t) {
                      writing_ = false;
                      inflight_.clear();
                      if (!open_) return;
                      if (err) return fail("write: " + err.message());
                      flush();
                    });
}

void Stream::close() {
  open_ = false;
  ended_ = true;
  std::error_code ignored;
  socket_.close(ignored);
}

void Stream::fail(const std::string& why) {
  if (ended_) return;  // closed by us, or already reported
  ended_ = true;
  open_ = false;
  std::error_code ignored;
  socket_.close(ignored);
  on_closed(why);
}

}  // namespace chatcore_bench
