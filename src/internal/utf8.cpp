#include "internal/utf8.hpp"

#include <cstdint>

namespace chatcore::internal {

std::optional<std::size_t> utf8_count(std::string_view text) noexcept {
  const auto* p = reinterpret_cast<const std::uint8_t*>(text.data());
  const auto* end = p + text.size();
  std::size_t count = 0;
  while (p < end) {
    std::uint8_t b = *p;
    if (b < 0x80) {  // ASCII fast path: the common case for chat text
      ++p;
      ++count;
      continue;
    }
    std::size_t need;
    std::uint32_t cp;
    std::uint32_t min;
    if ((b & 0xE0) == 0xC0) {
      need = 1, cp = b & 0x1F, min = 0x80;
    } else if ((b & 0xF0) == 0xE0) {
      need = 2, cp = b & 0x0F, min = 0x800;
    } else if ((b & 0xF8) == 0xF0) {
      need = 3, cp = b & 0x07, min = 0x10000;
    } else {
      return std::nullopt;  // continuation byte in lead position, or 0xF8..0xFF
    }
    if (static_cast<std::size_t>(end - p) < need + 1) return std::nullopt;  // truncated
    for (std::size_t i = 1; i <= need; ++i) {
      std::uint8_t c = p[i];
      if ((c & 0xC0) != 0x80) return std::nullopt;
      cp = (cp << 6) | (c & 0x3F);
    }
    if (cp < min) return std::nullopt;                      // overlong
    if (cp > 0x10FFFF) return std::nullopt;                 // beyond Unicode
    if (cp >= 0xD800 && cp <= 0xDFFF) return std::nullopt;  // UTF-16 surrogate
    p += need + 1;
    ++count;
  }
  return count;
}

}  // namespace chatcore::internal
