// HttpExchange: one HTTP request and its response, on one lws connection.
//
// Life of an exchange (all on the lws service thread):
//  1. LWS_CALLBACK_HTTP: the transport creates it and copies what it needs
//     out of lws' header table (method, path, query, Authorization), since
//     the header table is not kept for the whole exchange.
//  2. LWS_CALLBACK_HTTP_BODY*: append_body() collects the body up to the
//     cap; beyond it the rest is read and dropped, and the exchange is
//     answered 413 at the end of the body (answering while the client is
//     still sending would make most clients see a reset instead).
//  3. Someone produces the response, now or later (HttpApi may answer from
//     inside Engine::poll(), once a send is durable): set_response() stores
//     it and asks lws for a writable callback.
//  4. LWS_CALLBACK_HTTP_WRITEABLE: write_some() writes the headers, then
//     the body in chunks of kChunkBytes, one lws_write per callback, until
//     the last chunk goes out with LWS_WRITE_HTTP_FINAL.
//
// The connection may close at any point; the transport then calls detach()
// and drops its reference. A late response arrives at a respond function
// that holds only a weak_ptr, finds the exchange gone, and is discarded.
//
// Thread-safety: owner thread only.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "http_api.hpp"

struct lws;

namespace chatcored {

class HttpExchange {
 public:
  // Body bytes written per writable callback.
  static constexpr std::size_t kChunkBytes = 64 * 1024;

  HttpExchange(lws* wsi, std::size_t max_body_bytes) : wsi_(wsi), max_body_bytes_(max_body_bytes) {}

  HttpRequest& request() { return request_; }

  // Appends body bytes, up to the cap. Once over it the body is counted but
  // no longer stored and body_too_large() becomes true.
  void append_body(const void* data, std::size_t len);
  bool body_too_large() const { return too_large_; }
  // The announced Content-Length is already over the cap.
  void mark_too_large() {
    too_large_ = true;
    request_.body.clear();
  }

  // Whether the handler has answered (set_response was called).
  bool answered() const { return response_.has_value(); }
  // Stores the response and requests a writable callback. `close_after`:
  // close the connection once it is written (the request's body cannot be
  // delimited, e.g. no Content-Length). A second call is ignored.
  void set_response(HttpResponse response, bool close_after = false);
  const std::optional<HttpResponse>& response() const { return response_; }

  enum class WriteStep {
    kMore,      // more to write: a writable callback has been requested
    kComplete,  // all written: finish the transaction (keep-alive)
    kClose,     // all written, or a write failed: close the connection
  };
  // On LWS_CALLBACK_HTTP_WRITEABLE.
  WriteStep write_some();

  // The connection is gone: the exchange becomes inert.
  void detach() { wsi_ = nullptr; }
  bool attached() const { return wsi_ != nullptr; }

 private:
  lws* wsi_;
  std::size_t max_body_bytes_;
  HttpRequest request_;
  bool too_large_ = false;

  std::optional<HttpResponse> response_;
  bool close_after_ = false;
  bool headers_sent_ = false;
  std::size_t body_sent_ = 0;
};

}  // namespace chatcored
