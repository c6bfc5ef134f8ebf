// Paced writeback: how an LMDB commit's pages reach the disk without
// pushing the journal's flushes to the back of the queue.
//
// WHY. A checkpoint's LMDB commit writes every page it changed (1-20 MB at
// 27,500 messages/s, much of it single pages scattered over data.mdb) into
// the page cache, then calls fdatasync(). That one call submits all of them
// at once, and the device works through them in order: a journal flush
// issued meanwhile (an ack waiting) queued behind the whole lot, 6-11 ms on
// the benchmark's virtual disk, and made the 50 %-load ack p99.
//
// WHAT. LMDB has no hook between writing a commit's pages and flushing
// them, so the build links LMDB's own object file (from Debian's
// liblmdb.a) with its pwrite, writev and fdatasync calls renamed to the
// three chatcore_lmdb_* functions below (objcopy --redefine-sym; see
// CMakeLists.txt). They forward to the C library, and for a file that
// pace() registered they also remember which byte ranges LMDB wrote; the
// flush then writes those ranges back with sync_file_range(), at most
// kPaceBytes in flight at a time, waiting for each wave before starting
// the next, and calls the real fdatasync() last. A journal flush then
// waits for at most one wave.
//
// DURABILITY is unchanged: LMDB still orders data flush, then meta page;
// the final fdatasync() still flushes everything (whatever was not
// recorded too) and the device cache. sync_file_range() reports a
// writeback error only once per file description, so one seen there is
// returned by the flush as its own failure.
//
// Files that were not registered (the meta page's O_DSYNC descriptor,
// LMDB's lock file, other environments) pass straight through. A file
// written 65,536 times without a flush stops being recorded until its next
// flush, which is then a plain fdatasync(); so is every flush off Linux.
//
// Thread-safety: all functions may be called from any thread.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

// What LMDB's pwrite, writev and fdatasync calls are renamed to. Same
// contracts as the C library's (errno on failure).
extern "C" {
ssize_t chatcore_lmdb_pwrite(int fd, const void* buf, size_t count, off_t offset) noexcept;
ssize_t chatcore_lmdb_writev(int fd, const struct iovec* iov, int iovcnt) noexcept;
int chatcore_lmdb_fdatasync(int fd) noexcept;
}

namespace chatcore::lmdb_internal {

// Most bytes of recorded ranges written back at once during a flush.
inline constexpr std::size_t kPaceBytes = std::size_t{256} << 10;

// Whether this build routes LMDB's writes through the pacer (false when it
// was built against the shared liblmdb, CHATCORE_LMDB_PACED=OFF).
bool pacing_linked();

// Starts recording LMDB's writes to `fd` (mdb_env_get_fd) and pacing its
// flushes. Call stop_pacing(fd) before the descriptor is closed
// (mdb_env_close), or a new file that gets the same number would be paced.
void pace(int fd);
void stop_pacing(int fd);

// Totals for the process since start (for tests and metrics).
struct PacingStats {
  std::uint64_t flushes = 0;  // paced fdatasync() calls (something recorded)
  std::uint64_t waves = 0;    // writeback waves issued by those flushes
  std::uint64_t bytes = 0;    // bytes of recorded ranges written back
};
PacingStats pacing_stats();

}  // namespace chatcore::lmdb_internal
