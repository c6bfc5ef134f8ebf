#include "internal/utf8.hpp"

#include <doctest/doctest.h>

#include <string>

using chatcore::internal::utf8_count;

TEST_CASE("utf8_count counts code points, not bytes") {
  CHECK(utf8_count("").value() == 0);
  CHECK(utf8_count("hello").value() == 5);
  CHECK(utf8_count("h\xC3\xA9llo").value() == 5);          // é: 2 bytes
  CHECK(utf8_count("\xE2\x82\xAC").value() == 1);          // €: 3 bytes
  CHECK(utf8_count("\xF0\x9F\x98\x80").value() == 1);      // 😀: 4 bytes
  CHECK(utf8_count(std::string("a\0b", 3)).value() == 3);  // NUL is a code point
  CHECK(utf8_count("\xF4\x8F\xBF\xBF").value() == 1);      // U+10FFFF, the last one
}

TEST_CASE("utf8_count refuses every kind of malformed UTF-8") {
  CHECK_FALSE(utf8_count("\x80"));              // stray continuation byte
  CHECK_FALSE(utf8_count("\xC3"));              // truncated 2-byte sequence
  CHECK_FALSE(utf8_count("\xE2\x82"));          // truncated 3-byte sequence
  CHECK_FALSE(utf8_count("\xF0\x9F\x98"));      // truncated 4-byte sequence
  CHECK_FALSE(utf8_count("\xC0\xAF"));          // overlong '/'
  CHECK_FALSE(utf8_count("\xE0\x80\xAF"));      // overlong, 3 bytes
  CHECK_FALSE(utf8_count("\xF0\x80\x80\xAF"));  // overlong, 4 bytes
  CHECK_FALSE(utf8_count("\xED\xA0\x80"));      // U+D800, a surrogate
  CHECK_FALSE(utf8_count("\xED\xBF\xBF"));      // U+DFFF, a surrogate
  CHECK_FALSE(utf8_count("\xF4\x90\x80\x80"));  // U+110000, beyond Unicode
  CHECK_FALSE(utf8_count("\xF8\x88\x80\x80\x80"));
  CHECK_FALSE(utf8_count("\xFF"));
  CHECK_FALSE(utf8_count("ok\xC3("));  // bad continuation after a valid prefix
}

TEST_CASE("the 100,000-character limit is in code points: 4-byte characters count once") {
  std::string s;
  for (int i = 0; i < 100'000; ++i) s += "\xF0\x9F\x98\x80";
  CHECK(s.size() == 400'000);
  CHECK(utf8_count(s).value() == 100'000);
}
