// UTF-8 validation and code point counting for message bodies.
//
// A body is valid when it is well-formed UTF-8 per RFC 3629 / Unicode §3.9:
// no overlong encodings, no surrogates (U+D800..U+DFFF), nothing above
// U+10FFFF, no truncated sequences. NUL is allowed (it is a code point).
// Limits are in code points, the unit a person counts ("characters"), so
// 100,000 characters may take up to 400,000 bytes.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace chatcore::internal {

// The number of code points in `text`, or nullopt if it is not valid UTF-8.
std::optional<std::size_t> utf8_count(std::string_view text) noexcept;

}  // namespace chatcore::internal
