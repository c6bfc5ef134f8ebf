// The LMDB store's writeback pacer (adapters/lmdb/writeback.hpp): what
// LMDB writes to a registered file is written back in waves of at most
// kPaceBytes before the flush, byte for byte; other files pass through;
// and the store's own commits really go through it (the build renamed
// LMDB's calls).
#include "writeback.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "chatcore/lmdb_store.hpp"
#include "conformance/store_conformance.hpp"

namespace {

namespace fs = std::filesystem;
using namespace chatcore;
using namespace chatcore::conformance;
using lmdb_internal::kPaceBytes;
using lmdb_internal::pacing_stats;

class TempFile {
 public:
  TempFile() {
    std::string pattern = (fs::temp_directory_path() / "chatcore-writeback-XXXXXX").string();
    fd_ = ::mkstemp(pattern.data());
    REQUIRE(fd_ >= 0);
    path_ = pattern;
  }
  ~TempFile() {
    lmdb_internal::stop_pacing(fd_);
    ::close(fd_);
    std::error_code ec;
    fs::remove(path_, ec);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  int fd() const { return fd_; }
  std::string contents() const {
    std::string out(static_cast<std::size_t>(fs::file_size(path_)), '\0');
    REQUIRE(::pread(fd_, out.data(), out.size(), 0) == static_cast<ssize_t>(out.size()));
    return out;
  }

 private:
  int fd_ = -1;
  fs::path path_;
};

}  // namespace

TEST_CASE("writeback pacer: a flush writes back what was recorded, in waves") {
  TempFile f;
  lmdb_internal::pace(f.fd());
  const auto before = pacing_stats();

  // Scattered single pages (LMDB's pwrite) and a long run (its lseek+writev)
  // longer than one wave, overlapping one of the pages.
  const std::string page(4096, 'p');
  std::string expected(3 * kPaceBytes, '\0');
  for (off_t at : {off_t{0}, off_t{40960}, off_t{8192}}) {
    REQUIRE(chatcore_lmdb_pwrite(f.fd(), page.data(), page.size(), at) == 4096);
    expected.replace(static_cast<std::size_t>(at), page.size(), page);
  }
  const std::string run(2 * kPaceBytes, 'r');
  const off_t run_at = 40960;
  REQUIRE(::lseek(f.fd(), run_at, SEEK_SET) == run_at);
  struct iovec iov[2] = {{const_cast<char*>(run.data()), kPaceBytes},
                         {const_cast<char*>(run.data()) + kPaceBytes, kPaceBytes}};
  REQUIRE(chatcore_lmdb_writev(f.fd(), iov, 2) == static_cast<ssize_t>(run.size()));
  expected.replace(static_cast<std::size_t>(run_at), run.size(), run);
  expected.resize(static_cast<std::size_t>(run_at) + run.size());

  REQUIRE(chatcore_lmdb_fdatasync(f.fd()) == 0);
  const auto after = pacing_stats();
  CHECK(f.contents() == expected);
  CHECK(after.flushes == before.flushes + 1);
  // Pages 0 and 8192 (two pieces), then the run from 40960 joined with the
  // page it overlaps, cut at kPaceBytes: 8 KiB + 2 x 256 KiB.
  CHECK(after.bytes - before.bytes == 2 * 4096 + run.size());
  // Waves of at most kPaceBytes: the two pages with nothing else fitting
  // beside them, then each quarter-MiB piece on its own.
  CHECK(after.waves - before.waves == 3);

  // Nothing recorded since: the next flush is a plain one.
  REQUIRE(chatcore_lmdb_fdatasync(f.fd()) == 0);
  CHECK(pacing_stats().bytes == after.bytes);
  CHECK(pacing_stats().flushes == after.flushes);
}

TEST_CASE("writeback pacer: a file written too often between flushes is flushed unpaced") {
  TempFile f;
  lmdb_internal::pace(f.fd());
  const auto before = pacing_stats();
  // One byte at a time, 2^16 + 1 writes: recording stops at the cap.
  std::string expected;
  for (int i = 0; i <= 1 << 16; ++i) {
    const char c = static_cast<char>('a' + i % 26);
    REQUIRE(chatcore_lmdb_pwrite(f.fd(), &c, 1, static_cast<off_t>(i)) == 1);
    expected.push_back(c);
  }
  REQUIRE(chatcore_lmdb_fdatasync(f.fd()) == 0);
  CHECK(f.contents() == expected);
  CHECK(pacing_stats().flushes == before.flushes);
  // Recording starts afresh after that flush.
  REQUIRE(chatcore_lmdb_pwrite(f.fd(), "z", 1, 0) == 1);
  REQUIRE(chatcore_lmdb_fdatasync(f.fd()) == 0);
  CHECK(pacing_stats().flushes == before.flushes + 1);
  CHECK(pacing_stats().bytes == before.bytes + 1);
}

TEST_CASE("writeback pacer: unregistered files pass straight through") {
  TempFile f;
  const auto before = pacing_stats();
  const std::string page(4096, 'x');
  REQUIRE(chatcore_lmdb_pwrite(f.fd(), page.data(), page.size(), 0) == 4096);
  REQUIRE(chatcore_lmdb_fdatasync(f.fd()) == 0);
  CHECK(f.contents() == page);
  CHECK(pacing_stats().flushes == before.flushes);
  CHECK(pacing_stats().bytes == before.bytes);
  // Errors are the C library's.
  errno = 0;
  CHECK(chatcore_lmdb_fdatasync(-1) == -1);
  CHECK(errno == EBADF);
}

TEST_CASE("writeback pacer: an LmdbStore's flushes go through it") {
  if (!lmdb_internal::pacing_linked()) {
    MESSAGE("built with CHATCORE_LMDB_PACED=OFF: LMDB's calls are not routed");
    return;
  }
  std::string pattern = (fs::temp_directory_path() / "chatcore-writeback-XXXXXX").string();
  REQUIRE(::mkdtemp(pattern.data()) != nullptr);
  {
    LmdbOptions options;
    options.path = pattern + "/db";
    auto store = LmdbStore::open(options);
    CC_REQUIRE_OK(store);
    const auto before = pacing_stats();
    MessageMaker make;
    UserId a = add_user(**store, "alice");
    UserId b = add_user(**store, "bob");
    for (int i = 0; i < 20; ++i) commit_one(**store, make(ConversationId::direct(a, b), a, {a, b}));
    CC_REQUIRE_OK((*store)->sync());  // a checkpoint: an LMDB commit, flushed
    const auto after = pacing_stats();
    CHECK(after.flushes > before.flushes);
    CHECK(after.bytes > before.bytes);  // the pages it wrote, written back first
  }
  std::error_code ec;
  fs::remove_all(pattern, ec);
}
