#include "config_store.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "errors.hpp"
#include "terminal.hpp"

namespace chatcore::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kCredentialsFile = "credentials.json";
constexpr const char* kDeviceFile = "device.json";

[[noreturn]] void throw_file_error(const fs::path& path, const std::string& what) {
  throw CliError(kExitUsage, "config_error", fmt::format("{}: {}", path.string(), what));
}

void ensure_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw_file_error(dir, ec.message());
  // Only the directory this program owns; a parent like ~/.config keeps
  // whatever mode the user gave it.
  ::chmod(dir.c_str(), 0700);
}

std::optional<json> read_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return std::nullopt;
    throw_file_error(path, std::strerror(errno));
  }
  std::stringstream text;
  text << in.rdbuf();
  json doc = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) throw_file_error(path, "not a JSON object (delete it and log in again)");
  return doc;
}

// Writes `doc` to `path` atomically with mode 0600: a reader sees the old
// file or the new one, never half of one, and the token is never readable
// by others, not even for the instant between create and chmod.
void write_json(const fs::path& path, const json& doc) {
  ensure_dir(path.parent_path());
  fs::path tmp = path;
  tmp += fmt::format(".tmp.{}", ::getpid());
  std::string text = doc.dump(2) + "\n";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw_file_error(tmp, std::strerror(errno));
  ::fchmod(fd, 0600);  // O_CREAT's mode is masked by the umask; 0600 is a floor, not a wish
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw_file_error(tmp, std::strerror(err));
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw_file_error(path, std::strerror(err));
  }
}

std::string string_field(const json& doc, const char* key) {
  auto it = doc.find(key);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string cursor_key(const std::string& server, const std::string& user_id) {
  return server + " " + user_id;
}

}  // namespace

fs::path config_dir(const std::string& override_dir) {
  if (!override_dir.empty()) return fs::path(override_dir);
  // XDG: a relative XDG_CONFIG_HOME is invalid and must be ignored.
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  if (xdg != nullptr && xdg[0] == '/') return fs::path(xdg) / "chatcore";
  const char* home = std::getenv("HOME");
  if (home == nullptr || home[0] == '\0') {
    const passwd* pw = ::getpwuid(::getuid());
    if (pw == nullptr || pw->pw_dir == nullptr) {
      throw CliError(kExitUsage, "config_error",
                     "cannot find a config directory: set HOME or use --config-dir");
    }
    home = pw->pw_dir;
  }
  return fs::path(home) / ".config" / "chatcore";
}

std::optional<Credentials> load_credentials(const fs::path& dir) {
  auto doc = read_json(dir / kCredentialsFile);
  if (!doc) return std::nullopt;
  Credentials c;
  c.server = string_field(*doc, "server");
  c.name = string_field(*doc, "name");
  c.user_id = string_field(*doc, "user_id");
  c.token = string_field(*doc, "token");
  if (auto it = doc->find("expires_at"); it != doc->end() && it->is_number_integer()) {
    c.expires_at_ms = it->get<std::int64_t>();
  }
  if (c.token.empty() || c.server.empty()) return std::nullopt;
  return c;
}

void save_credentials(const fs::path& dir, const Credentials& c) {
  json doc = {{"server", c.server},
              {"name", c.name},
              {"user_id", c.user_id},
              {"token", c.token},
              {"expires_at", c.expires_at_ms}};
  write_json(dir / kCredentialsFile, doc);
}

bool remove_credentials(const fs::path& dir) {
  std::error_code ec;
  return fs::remove(dir / kCredentialsFile, ec);
}

std::string device_id(const fs::path& dir) {
  fs::path path = dir / kDeviceFile;
  json doc = read_json(path).value_or(json::object());
  std::string id = string_field(doc, "device_id");
  // Hello.device_id is 1..64 bytes; "cli-" + a UUID is 40.
  if (id.empty() || id.size() > 64) {
    id = "cli-" + random_uuid().to_uuid();
    doc["device_id"] = id;
    write_json(path, doc);
  }
  return id;
}

std::optional<std::uint64_t> load_cursor(const fs::path& dir, const std::string& server,
                                         const std::string& user_id) {
  auto doc = read_json(dir / kDeviceFile);
  if (!doc) return std::nullopt;
  auto cursors = doc->find("cursors");
  if (cursors == doc->end() || !cursors->is_object()) return std::nullopt;
  auto it = cursors->find(cursor_key(server, user_id));
  if (it == cursors->end() || !it->is_number_unsigned()) return std::nullopt;
  return it->get<std::uint64_t>();
}

void save_cursor(const fs::path& dir, const std::string& server, const std::string& user_id,
                 std::uint64_t cursor) {
  fs::path path = dir / kDeviceFile;
  json doc = read_json(path).value_or(json::object());
  if (!doc.contains("cursors") || !doc["cursors"].is_object()) doc["cursors"] = json::object();
  doc["cursors"][cursor_key(server, user_id)] = cursor;
  write_json(path, doc);
}

}  // namespace chatcore::cli
