// Paced writeback of LMDB's data file. See writeback.hpp.
#include "writeback.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <exception>
#include <mutex>
#include <new>
#include <unordered_map>
#include <utility>
#include <vector>

namespace chatcore::lmdb_internal {

namespace {

struct Range {
  off_t offset;
  off_t length;
};

// Ranges recorded per file between two flushes, at most. Past that (a
// writer that never flushes, or no memory), recording stops and the next
// flush is a plain fdatasync().
constexpr std::size_t kMaxRanges = std::size_t{1} << 16;

struct Written {
  std::vector<Range> ranges;
  bool overflowed = false;  // ranges incomplete: flush unpaced
};

// The registered files and the ranges written to each since its last
// flush. One lock for all: LMDB writes from one writer per environment, so
// it is taken by at most a few threads, for a few instructions each.
struct Registry {
  std::mutex mu;
  std::unordered_map<int, Written> written;
  std::atomic<std::uint64_t> flushes{0};
  std::atomic<std::uint64_t> waves{0};
  std::atomic<std::uint64_t> bytes{0};
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: LMDB may flush during exit
  return *r;
}

// Called from LMDB's C code: must not throw.
void record(int fd, off_t offset, ssize_t length) noexcept {
  if (length <= 0) return;
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  auto it = r.written.find(fd);
  if (it == r.written.end() || it->second.overflowed) return;
  Written& w = it->second;
  if (w.ranges.size() < kMaxRanges) {
    try {
      w.ranges.push_back(Range{offset, static_cast<off_t>(length)});
      return;
    } catch (const std::bad_alloc&) {
    }
  }
  w.overflowed = true;
  std::vector<Range>().swap(w.ranges);
}

// Sorted, with overlapping and adjacent ranges joined, then cut into pieces
// of at most kPaceBytes (a long run of appended pages is one range).
std::vector<Range> pieces_of(std::vector<Range> ranges) {
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.offset < b.offset; });
  std::vector<Range> joined;
  for (const Range& r : ranges) {
    if (!joined.empty() && joined.back().offset + joined.back().length >= r.offset) {
      Range& last = joined.back();
      last.length = std::max(last.offset + last.length, r.offset + r.length) - last.offset;
    } else {
      joined.push_back(r);
    }
  }
  std::vector<Range> pieces;
  const auto most = static_cast<off_t>(kPaceBytes);
  for (const Range& r : joined) {
    for (off_t at = r.offset; at < r.offset + r.length; at += most) {
      pieces.push_back(Range{at, std::min(most, r.offset + r.length - at)});
    }
  }
  return pieces;
}

// Writes the pieces back in waves of at most kPaceBytes, each waited for
// before the next starts. Returns 0, or the first error (an errno value).
int write_back(int fd, const std::vector<Range>& pieces) {
#ifndef __linux__
  (void)fd;
  (void)pieces;
  return 0;  // no sync_file_range(): the flush is one fdatasync()
#else
  Registry& r = registry();
  int error = 0;
  std::size_t i = 0;
  while (i < pieces.size()) {
    std::size_t end = i;
    off_t bytes = 0;
    while (end < pieces.size() &&
           (end == i || bytes + pieces[end].length <= static_cast<off_t>(kPaceBytes))) {
      bytes += pieces[end++].length;
    }
    for (std::size_t j = i; j < end; ++j) {
      if (::sync_file_range(fd, pieces[j].offset, pieces[j].length, SYNC_FILE_RANGE_WRITE) != 0 &&
          error == 0) {
        error = errno;
      }
    }
    for (std::size_t j = i; j < end; ++j) {
      if (::sync_file_range(fd, pieces[j].offset, pieces[j].length,
                            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WAIT_AFTER) != 0 &&
          error == 0) {
        error = errno;
      }
    }
    r.waves.fetch_add(1, std::memory_order_relaxed);
    r.bytes.fetch_add(static_cast<std::uint64_t>(bytes), std::memory_order_relaxed);
    i = end;
  }
  return error;
#endif
}

}  // namespace

bool pacing_linked() {
#ifdef CHATCORE_LMDB_PACED
  return true;
#else
  return false;
#endif
}

void pace(int fd) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  r.written[fd] = Written{};
}

void stop_pacing(int fd) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  r.written.erase(fd);
}

PacingStats pacing_stats() {
  Registry& r = registry();
  return PacingStats{r.flushes.load(std::memory_order_relaxed),
                     r.waves.load(std::memory_order_relaxed),
                     r.bytes.load(std::memory_order_relaxed)};
}

}  // namespace chatcore::lmdb_internal

using chatcore::lmdb_internal::Range;
using chatcore::lmdb_internal::registry;

extern "C" ssize_t chatcore_lmdb_pwrite(int fd, const void* buf, size_t count,
                                        off_t offset) noexcept {
  const ssize_t n = ::pwrite(fd, buf, count, offset);
  const int saved = errno;
  chatcore::lmdb_internal::record(fd, offset, n);
  errno = saved;
  return n;
}

extern "C" ssize_t chatcore_lmdb_writev(int fd, const struct iovec* iov, int iovcnt) noexcept {
  // LMDB seeks, then writes: where it seeked to is where this lands.
  const off_t at = ::lseek(fd, 0, SEEK_CUR);
  const ssize_t n = ::writev(fd, iov, iovcnt);
  const int saved = errno;
  if (at >= 0) chatcore::lmdb_internal::record(fd, at, n);
  errno = saved;
  return n;
}

extern "C" int chatcore_lmdb_fdatasync(int fd) noexcept {
  auto& r = registry();
  std::vector<Range> written;
  bool paced = false;
  {
    std::lock_guard lock(r.mu);
    if (auto it = r.written.find(fd); it != r.written.end()) {
      paced = !it->second.overflowed;
      written.swap(it->second.ranges);
      it->second.overflowed = false;  // recording starts afresh
    }
  }
  int error = 0;
  if (paced && !written.empty()) {
    r.flushes.fetch_add(1, std::memory_order_relaxed);
    try {
      error = chatcore::lmdb_internal::write_back(
          fd, chatcore::lmdb_internal::pieces_of(std::move(written)));
    } catch (const std::exception&) {
      // No memory to sort the ranges: the plain flush below does it all.
    }
  }
  if (::fdatasync(fd) != 0) return -1;
  if (error != 0) {
    errno = error;
    return -1;
  }
  return 0;
}
