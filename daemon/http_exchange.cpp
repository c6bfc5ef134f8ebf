#include "http_exchange.hpp"

#include <libwebsockets.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace chatcored {

void HttpExchange::append_body(const void* data, std::size_t len) {
  if (too_large_) return;
  if (request_.body.size() + len > max_body_bytes_) {
    too_large_ = true;
    request_.body.clear();
    request_.body.shrink_to_fit();
    return;
  }
  request_.body.append(static_cast<const char*>(data), len);
}

void HttpExchange::set_response(HttpResponse response, bool close_after) {
  if (!wsi_ || response_) return;
  response_ = std::move(response);
  close_after_ = close_after;
  lws_callback_on_writable(wsi_);
}

HttpExchange::WriteStep HttpExchange::write_some() {
  if (!wsi_ || !response_) return WriteStep::kClose;
  const HttpResponse& r = *response_;

  if (!headers_sent_) {
    std::size_t extra = 0;
    for (const auto& [name, value] : r.headers) extra += name.size() + value.size() + 8;
    std::vector<unsigned char> buf(LWS_PRE + 1024 + extra);
    unsigned char* start = buf.data() + LWS_PRE;
    unsigned char* p = start;
    unsigned char* end = buf.data() + buf.size() - 1;
    if (lws_add_http_common_headers(wsi_, static_cast<unsigned int>(r.status),
                                    r.content_type.c_str(), r.body.size(), &p, end) ||
        // Nothing chatcored generates is cacheable: API answers, health and
        // metrics are all "now".
        lws_add_http_header_by_name(wsi_, reinterpret_cast<const unsigned char*>("cache-control:"),
                                    reinterpret_cast<const unsigned char*>("no-store"), 8, &p,
                                    end) ||
        lws_add_http_header_by_name(
            wsi_, reinterpret_cast<const unsigned char*>("x-content-type-options:"),
            reinterpret_cast<const unsigned char*>("nosniff"), 7, &p, end)) {
      return WriteStep::kClose;
    }
    for (const auto& [name, value] : r.headers) {
      // lws wants the h1 form "name:"; lowercase also suits h2.
      std::string key;
      for (char c : name) key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      key += ':';
      if (lws_add_http_header_by_name(wsi_, reinterpret_cast<const unsigned char*>(key.c_str()),
                                      reinterpret_cast<const unsigned char*>(value.data()),
                                      static_cast<int>(value.size()), &p, end)) {
        return WriteStep::kClose;
      }
    }
    if (lws_finalize_write_http_header(wsi_, start, &p, end)) return WriteStep::kClose;
    headers_sent_ = true;
    // HEAD: the headers of the GET answer (its Content-Length too), no body.
    if (r.body.empty() || request_.method == "HEAD")
      return close_after_ ? WriteStep::kClose : WriteStep::kComplete;
    lws_callback_on_writable(wsi_);
    return WriteStep::kMore;
  }

  std::size_t len = std::min(kChunkBytes, r.body.size() - body_sent_);
  bool last = body_sent_ + len == r.body.size();
  std::vector<unsigned char> chunk(LWS_PRE + len);
  std::memcpy(chunk.data() + LWS_PRE, r.body.data() + body_sent_, len);
  if (lws_write(wsi_, chunk.data() + LWS_PRE, len, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) !=
      static_cast<int>(len)) {
    return WriteStep::kClose;
  }
  body_sent_ += len;
  if (!last) {
    lws_callback_on_writable(wsi_);
    return WriteStep::kMore;
  }
  return close_after_ ? WriteStep::kClose : WriteStep::kComplete;
}

}  // namespace chatcored
