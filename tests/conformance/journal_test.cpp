// The LMDB store's journal on its own (adapters/lmdb/journal.hpp): records
// survive a reopen in order, across segments; a torn or garbage tail is
// dropped; a missing record in the middle is refused; one writer at a time.
#include "journal.hpp"

#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "conformance/store_conformance.hpp"

namespace {

using chatcore::ErrorCode;
using chatcore::lmdb_internal::Journal;
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "chatcore-journal-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string dir() const { return (path_ / "journal").string(); }

 private:
  fs::path path_;
};

std::unique_ptr<Journal> open_journal(const std::string& dir) {
  auto j = Journal::open(dir, /*sync=*/true);
  CC_REQUIRE_OK(j);
  return std::move(*j);
}

using Records = std::vector<std::pair<std::uint64_t, std::string>>;

// Every record after `after`, or the replay's error.
chatcore::Result<Records> replay(Journal& j, std::uint64_t after) {
  Records out;
  auto last = j.replay(after, [&](std::uint64_t lsn, std::string_view payload) {
    out.emplace_back(lsn, std::string(payload));
    return chatcore::Status::ok();
  });
  if (!last) return last.status();
  if (!out.empty()) CHECK(*last == out.back().first);
  return out;
}

std::vector<fs::path> segments(const std::string& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".log") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string payload(int i) { return "record " + std::to_string(i) + std::string(i * 10, '.'); }

// Where records 1..n end in a segment that holds exactly them (the file may
// be longer: preallocated zeros).
std::uint64_t end_of_records(int first, int last) {
  std::uint64_t end = 16;
  for (int i = first; i <= last; ++i) end += 16 + payload(i).size();
  return end;
}

// Overwrites `bytes` at `offset` of the file.
void overwrite(const fs::path& file, std::uint64_t offset, const std::string& bytes) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Writes records 1..n (rotating after every `per_segment`) and closes.
void write_records(const std::string& dir, int n, int per_segment) {
  auto j = open_journal(dir);
  REQUIRE(replay(*j, 0)->empty());
  CC_REQUIRE_OK(j->start(0));
  for (int i = 1; i <= n; ++i) {
    auto lsn = j->append(payload(i));
    CC_REQUIRE_OK(lsn);
    CHECK(*lsn == static_cast<std::uint64_t>(i));
    if (i % per_segment == 0 && i < n) CC_REQUIRE_OK(j->rotate());
  }
}

}  // namespace

TEST_CASE("Journal: records come back in order across segments and reopens") {
  TempDir t;
  write_records(t.dir(), 7, 3);
  CHECK(segments(t.dir()).size() == 3);
  auto j = open_journal(t.dir());
  auto all = replay(*j, 0);
  CC_REQUIRE_OK(all);
  REQUIRE(all->size() == 7);
  for (int i = 1; i <= 7; ++i) {
    CHECK((*all)[i - 1].first == static_cast<std::uint64_t>(i));
    CHECK((*all)[i - 1].second == payload(i));
  }
  // Records up to `after` are already applied: skipped, not refused.
  auto newer = replay(*j, 5);
  CC_REQUIRE_OK(newer);
  REQUIRE(newer->size() == 2);
  CHECK(newer->front().first == 6);
  // start() continues the numbering in a fresh segment and removes the
  // replayed ones.
  CC_REQUIRE_OK(j->start(7));
  CHECK(segments(t.dir()).size() == 1);
  CHECK(*j->append("eight") == 8);
  j.reset();
  auto again = open_journal(t.dir());
  auto rest = replay(*again, 7);
  CC_REQUIRE_OK(rest);
  REQUIRE(rest->size() == 1);
  CHECK(rest->front() == std::make_pair(std::uint64_t{8}, std::string("eight")));
}

TEST_CASE("Journal: a checkpoint's rotation lets older segments go") {
  TempDir t;
  auto j = open_journal(t.dir());
  CC_REQUIRE_OK(j->start(0));
  CC_REQUIRE_OK(j->append("a"));
  CC_REQUIRE_OK(j->append("b"));
  CC_REQUIRE_OK(j->prepare_segment());
  CHECK(segments(t.dir()).size() == 2);  // the current one and the spare
  CC_REQUIRE_OK(j->rotate());
  CC_REQUIRE_OK(j->append("c"));
  j->remove_old_segments();
  CHECK(segments(t.dir()).size() == 1);
  j.reset();
  auto again = open_journal(t.dir());
  auto rest = replay(*again, 2);
  CC_REQUIRE_OK(rest);
  REQUIRE(rest->size() == 1);
  CHECK(rest->front().second == "c");
}

TEST_CASE("Journal: a torn or garbage tail is dropped, the records before it kept") {
  TempDir t;
  write_records(t.dir(), 4, 100);
  auto seg = segments(t.dir()).back();
  const std::uint64_t end = end_of_records(1, 4);
  REQUIRE(fs::file_size(seg) >= end);
  bool last_lost = true;

  SUBCASE("the last record cut short, the file extended by it (a crash during its write)") {
    fs::resize_file(seg, end - 5);
  }
  SUBCASE("the last record cut short inside the preallocation") {
    overwrite(seg, end - 5, std::string(5, '\0'));
  }
  SUBCASE("garbage after the last record") {
    overwrite(seg, end, std::string(40, '\x7f'));
    last_lost = false;
  }
  SUBCASE("garbage after the last record, at the end of the file") {
    fs::resize_file(seg, end);
    std::ofstream(seg, std::ios::app | std::ios::binary) << std::string(40, '\x7f');
    last_lost = false;
  }
  SUBCASE("the last record's header zeroed (its lsn reads as 0, as zeros past the end do)") {
    overwrite(seg, end_of_records(1, 3), std::string(16, '\0'));
  }
  SUBCASE("the last record's payload damaged") { overwrite(seg, end - 3, "X"); }
  auto j = open_journal(t.dir());
  auto all = replay(*j, 0);
  CC_REQUIRE_OK(all);
  CHECK(all->size() == (last_lost ? 3u : 4u));
  // Appending after recovery continues right after what survived.
  CC_REQUIRE_OK(j->start(all->back().first));
  CHECK(*j->append("next") == all->back().first + 1);
}

TEST_CASE("Journal: sync segments are preallocated; the zeros read as their end") {
  TempDir t;
  auto j = open_journal(t.dir());
  CC_REQUIRE_OK(j->start(0));
  auto first = segments(t.dir()).back();
  // Records go into blocks the file already has: its size does not move,
  // and the blocks are really there (zeros written, not a sparse file).
  CHECK(fs::file_size(first) == Journal::kMinPreallocBytes);
  struct stat st {};
  REQUIRE(::stat(first.c_str(), &st) == 0);
  CHECK(static_cast<std::uint64_t>(st.st_blocks) * 512 >= Journal::kMinPreallocBytes);
  const std::string big(100'000, 'b');
  for (int i = 0; i < 2; ++i) CC_REQUIRE_OK(j->append(big));
  CHECK(fs::file_size(first) == Journal::kMinPreallocBytes);
  // Outgrowing the preallocation extends the file.
  for (int i = 0; i < 3; ++i) CC_REQUIRE_OK(j->append(big));
  const std::uint64_t used = j->segment_bytes();
  CHECK(used > Journal::kMinPreallocBytes);
  CHECK(fs::file_size(first) == used);
  // The next segment is sized for 1.5x what this one holds.
  CC_REQUIRE_OK(j->prepare_segment());
  auto spare = segments(t.dir()).back();
  CHECK(spare != first);
  CHECK(fs::file_size(spare) >= used + used / 2);
  CHECK(fs::file_size(spare) <= used + used / 2 + (64 << 10));
  CC_REQUIRE_OK(j->rotate());
  CC_REQUIRE_OK(j->append("six"));
  j.reset();
  auto again = open_journal(t.dir());
  auto all = replay(*again, 0);
  CC_REQUIRE_OK(all);
  REQUIRE(all->size() == 6);
  CHECK(all->back() == std::make_pair(std::uint64_t{6}, std::string("six")));
}

TEST_CASE("Journal: nosync segments are not preallocated") {
  TempDir t;
  auto opened = Journal::open(t.dir(), /*sync=*/false);
  CC_REQUIRE_OK(opened);
  auto& j = *opened;
  CC_REQUIRE_OK(j->start(0));
  CC_REQUIRE_OK(j->append("one"));
  CHECK(fs::file_size(segments(t.dir()).back()) == j->segment_bytes());
}

TEST_CASE("Journal: a record missing in the middle is refused, not skipped") {
  TempDir t;
  write_records(t.dir(), 6, 3);  // segments: [1 2 3] [4 5 6]
  auto first = segments(t.dir()).front();
  // Damage record 2: segment 1 now ends after record 1, and segment 2
  // starts at 4. Records 2 and 3 were acknowledged: that is corruption.
  overwrite(first, end_of_records(1, 1) + 20, "X");
  auto j = open_journal(t.dir());
  auto r = replay(*j, 0);
  REQUIRE_FALSE(r);
  CHECK(r.status().code() == ErrorCode::kInternal);
  CHECK(r.status().message().find("gap") != std::string::npos);
  // With records up to 3 applied already, nothing needed is missing.
  auto after = replay(*j, 3);
  CC_REQUIRE_OK(after);
  CHECK(after->size() == 3);
}

TEST_CASE("Journal: a file that is not a segment is refused") {
  TempDir t;
  write_records(t.dir(), 2, 100);
  std::ofstream(t.dir() + "/00000000000000ff.log") << "not a journal segment at all";
  auto j = open_journal(t.dir());
  auto r = replay(*j, 0);
  REQUIRE_FALSE(r);
  CHECK(r.status().code() == ErrorCode::kInternal);
  CHECK(r.status().message().find("is not a journal segment") != std::string::npos);
}

TEST_CASE("Journal: one writer at a time") {
  TempDir t;
  auto j = open_journal(t.dir());
  auto second = Journal::open(t.dir(), true);
  REQUIRE_FALSE(second);
  CHECK(second.status().code() == ErrorCode::kUnavailable);
  CHECK(second.status().message().find("in use") != std::string::npos);
  j.reset();
  CC_CHECK_OK(Journal::open(t.dir(), true));
}
