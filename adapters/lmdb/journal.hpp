// Journal: the LMDB store's write-ahead log of message commits.
//
// WHY. A durable LMDB commit writes every B-tree page the transaction
// touched and flushes twice (data, then meta). A 1-on-1 message touches
// four leaves in unrelated places (its conversation, two inboxes, the dedup
// key), so a commit of 100 such messages wrote and flushed ~1.5 MiB of
// scattered pages (docs/benchmarks.md). The journal makes the flush carry
// only what changed: a commit appends ONE record (~200 bytes per message)
// to the end of a file and flushes that. LmdbStore applies the records to
// LMDB later, many commits in one transaction (a checkpoint), so a page
// that a thousand messages touch is written once.
//
// FILES. A directory of segments named by a 16-digit hex number, in the
// order they were written (0000000000000001.log, ...). A segment starts
// with a 16-byte header (magic "ccjrnl01", then its number, big-endian)
// and holds records back to back:
//
//   u32 crc    CRC-32 (zlib) of the 12 bytes that follow and the payload
//   u32 len    payload bytes
//   u64 lsn    log sequence number: 1, 2, 3, ... without gaps, across segments
//   payload    opaque to the journal (LmdbStore encodes a commit batch)
//
// All integers are big-endian. A segment is created, given its header and
// flushed, and its directory entry flushed, before any record goes into
// it, so a record's flush is the only flush a commit pays.
//
// PREALLOCATION (sync mode). A new segment is also filled with zeros up to
// the size it is expected to reach, and flushed, before it becomes the
// current one. A record then overwrites blocks the file already has, so
// its fdatasync writes the record and nothing else; appending past the end
// would also write the inode for the new file size, which measured
// 1.4-2x the flush time and 1.3-1.8x its CPU here (docs/benchmarks.md). The
// expected size is 1.5x what the segment being replaced held when its
// successor was prepared (one checkpoint interval of traffic), between
// kMinPreallocBytes and kMaxPreallocBytes. A segment that outgrows it just
// extends the file. The zeros go to the disk 256 KiB at a time, each piece
// waited for (sync_file_range): flushed in one go, megabytes of them queued
// ahead of the current segment's record flushes on the same disk. Zeros read as a record header
// carry lsn 0, which no record has: replay takes them as the segment's end, like a torn tail.
//
// RECOVERY. replay() reads the segments in order and stops a segment at
// its first record that is short, fails its CRC, or does not carry the
// next lsn: that is the torn tail of a write the crash interrupted (never
// acknowledged, since append() returns only after the flush), or bytes
// left by a failed append that the next one did not overwrite. The next
// segment must then continue the lsn sequence exactly; a valid record
// further on after a gap means acknowledged data is missing, which is
// reported as corruption rather than silently skipped.
//
// CHECKPOINTS. The owner rotates to a fresh segment, applies every record
// written so far to LMDB (recording the last applied lsn inside that same
// LMDB transaction), and then removes the older segments.
//
// A lock file (flock) keeps a second process from writing the same journal.
//
// Thread-safety: append(), rotate() and start() must be serialised by the
// caller (LmdbStore holds its commit mutex); prepare_segment() and
// remove_old_segments() may run concurrently with them.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "chatcore/status.hpp"

namespace chatcore::lmdb_internal {

class Journal {
 public:
  // Opens (creating if needed) the journal directory and takes its lock.
  // Reads nothing yet: call replay(), then start(). kUnavailable when the
  // directory cannot be created or another process holds the lock.
  // `sync`: append() flushes each record (fdatasync) before returning.
  static Result<std::unique_ptr<Journal>> open(std::string dir, bool sync);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Calls fn(lsn, payload) for every intact record with lsn > after, in
  // order. Returns the last lsn of the log (`after` if it holds nothing
  // newer). A record fn rejects (non-OK) stops the replay with that status.
  // kInternal when a segment is not a journal segment or the lsn sequence
  // has a gap (see RECOVERY); kUnavailable on an I/O error.
  Result<std::uint64_t> replay(std::uint64_t after,
                               const std::function<Status(std::uint64_t, std::string_view)>& fn);

  // Begins writing after replay: removes every existing segment (their
  // records are applied; see CHECKPOINTS) and opens a fresh one. The next
  // record gets lsn `last_lsn` + 1.
  Status start(std::uint64_t last_lsn);

  // Appends one record and, in sync mode, flushes it. Returns its lsn. On
  // failure nothing of the record counts: the next append overwrites it
  // (kUnavailable). A failed flush leaves the log's state on disk unknown
  // (Linux may drop the dirty pages and report the error only once), so
  // from then on every append fails until the store is reopened and the
  // log replayed.
  Result<std::uint64_t> append(std::string_view payload);

  // Creates the next segment ahead of time (outside the caller's commit
  // lock), so that rotate() only switches files; in sync mode this is also
  // where it is preallocated (see PREALLOCATION). Optional.
  Status prepare_segment();
  // Moves appends to a fresh segment (the prepared one if any).
  Status rotate();

  // Bounds of a segment's preallocation (sync mode only).
  static constexpr std::uint64_t kMinPreallocBytes = std::uint64_t{256} << 10;
  static constexpr std::uint64_t kMaxPreallocBytes = std::uint64_t{64} << 20;
  // Deletes every segment older than the current one: call once a
  // checkpoint has applied everything appended before the last rotate().
  void remove_old_segments();

  std::uint64_t last_lsn() const { return next_lsn_ - 1; }
  // Bytes appended to the current segment (header included).
  std::uint64_t segment_bytes() const { return offset_; }
  const std::string& dir() const { return dir_; }

 private:
  struct Segment {
    std::uint64_t number = 0;
    int fd = -1;
  };
  Journal(std::string dir, bool sync, int lock_fd);
  std::string path_of(std::uint64_t number) const;
  // Lists the segment numbers in the directory, ascending.
  Result<std::vector<std::uint64_t>> list_segments() const;
  // Creates, preallocates (sync mode: zeros up to `expected_bytes`, see
  // PREALLOCATION) and flushes segment `number`.
  Result<Segment> create_segment(std::uint64_t number, std::uint64_t expected_bytes) const;
  // Preallocation for a segment that follows one holding `previous_bytes`.
  static std::uint64_t prealloc_bytes(std::uint64_t previous_bytes);
  Status fail(std::string_view what, int err) const;

  const std::string dir_;
  const bool sync_;
  int lock_fd_;
  int dir_fd_ = -1;

  // Writer state (serialised by the caller).
  Segment current_;
  std::uint64_t offset_ = 0;  // end of the last good record in current_
  // offset_, for prepare_segment() on another thread (sizes only).
  std::atomic<std::uint64_t> published_offset_{0};
  std::uint64_t next_lsn_ = 1;  // lsn of the next record
  bool broken_ = false;         // a flush failed: see append()
  std::string record_;          // reused encode buffer

  std::mutex mu_;                  // guards the fields below
  std::uint64_t next_number_ = 1;  // number of the next segment to create
  Segment spare_;                  // prepared by prepare_segment(), if fd >= 0
  std::uint64_t oldest_live_ = 0;  // segments below this number are removed
};

}  // namespace chatcore::lmdb_internal
