#include "terminal.hpp"

#include <sys/random.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <iostream>
#include <iterator>

#include "errors.hpp"

namespace chatcore::cli {
namespace {

void strip_line_end(std::string& s) {
  if (!s.empty() && s.back() == '\n') s.pop_back();
  if (!s.empty() && s.back() == '\r') s.pop_back();
}

// Restores the terminal mode even when reading throws or returns early; a
// shell left with echo off is the classic bug of hand-rolled prompts.
class EchoOff {
 public:
  explicit EchoOff(int fd) : fd_(fd) {
    if (::tcgetattr(fd_, &saved_) == 0) {
      termios quiet = saved_;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      quiet.c_lflag |= ECHONL;  // the user still sees their Enter
      active_ = ::tcsetattr(fd_, TCSAFLUSH, &quiet) == 0;
    }
  }
  ~EchoOff() {
    if (active_) ::tcsetattr(fd_, TCSAFLUSH, &saved_);
  }
  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

std::string prompt_hidden(const char* prompt) {
  std::fputs(prompt, stderr);
  std::fflush(stderr);
  std::string line;
  {
    EchoOff guard(STDIN_FILENO);
    if (!std::getline(std::cin, line)) throw_usage("no password entered");
  }
  strip_line_end(line);
  return line;
}

}  // namespace

std::string read_password(bool from_stdin, bool confirm) {
  if (from_stdin) {
    std::string line;
    if (!std::getline(std::cin, line)) throw_usage("--password-stdin: stdin is empty");
    strip_line_end(line);
    return line;
  }
  if (::isatty(STDIN_FILENO) == 0) {
    throw_usage("stdin is not a terminal: pass the password with --password-stdin");
  }
  std::string password = prompt_hidden("Password: ");
  if (confirm && prompt_hidden("Password (again): ") != password) {
    throw_usage("the passwords do not match");
  }
  return password;
}

std::string read_all_stdin() {
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  if (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

ClientMsgId random_uuid() {
  ClientMsgId id;
  std::size_t got = 0;
  while (got < id.bytes.size()) {
    ssize_t n = ::getrandom(id.bytes.data() + got, id.bytes.size() - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw CliError(kExitUnavailable, "internal", "getrandom failed");
    got += static_cast<std::size_t>(n);
  }
  id.bytes[6] = static_cast<std::uint8_t>((id.bytes[6] & 0x0F) | 0x40);  // version 4
  id.bytes[8] = static_cast<std::uint8_t>((id.bytes[8] & 0x3F) | 0x80);  // RFC 4122 variant
  return id;
}

}  // namespace chatcore::cli
