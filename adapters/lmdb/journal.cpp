#include "journal.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/core.h>

namespace chatcore::lmdb_internal {

namespace {

constexpr char kMagic[8] = {'c', 'c', 'j', 'r', 'n', 'l', '0', '1'};
constexpr std::size_t kSegmentHeaderBytes = 16;
constexpr std::size_t kRecordHeaderBytes = 16;
// Far above any batch the engine forms (256 bodies of 400 KB); a length
// beyond it can only be garbage.
constexpr std::uint32_t kMaxRecordBytes = std::uint32_t{1} << 30;
constexpr std::string_view kSuffix = ".log";

void put_be32(unsigned char* p, std::uint32_t v) {
  for (int i = 3; i >= 0; --i) {
    p[i] = static_cast<unsigned char>(v & 0xff);
    v >>= 8;
  }
}

void put_be64(unsigned char* p, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<unsigned char>(v & 0xff);
    v >>= 8;
  }
}

std::uint32_t get_be32(const unsigned char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | p[i];
  return v;
}

std::uint64_t get_be64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

// CRC-32 over the record header after the crc field, then the payload.
std::uint32_t record_crc(const unsigned char* header_rest, const unsigned char* payload,
                         std::size_t payload_len) {
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, header_rest, kRecordHeaderBytes - 4);
  // zlib takes lengths as uInt: feed a large payload in pieces.
  while (payload_len > 0) {
    auto n = static_cast<uInt>(std::min<std::size_t>(payload_len, 1u << 30));
    crc = crc32(crc, payload, n);
    payload += n;
    payload_len -= n;
  }
  return static_cast<std::uint32_t>(crc);
}

// Writes all of [data, data+len) at `offset`; false with errno set otherwise.
bool pwrite_all(int fd, const unsigned char* data, std::size_t len, std::uint64_t offset) {
  while (len > 0) {
    ssize_t n = ::pwrite(fd, data, len, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) {
      errno = EIO;
      return false;
    }
    data += n;
    len -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return true;
}

// Reads exactly len bytes at offset: 1 read, 0 end of file first, -1 error.
int pread_exact(int fd, unsigned char* data, std::size_t len, std::uint64_t offset) {
  while (len > 0) {
    ssize_t n = ::pread(fd, data, len, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) return 0;
    data += n;
    len -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return 1;
}

bool parse_segment_name(std::string_view name, std::uint64_t* number) {
  if (name.size() != 16 + kSuffix.size() || !name.ends_with(kSuffix)) return false;
  std::uint64_t n = 0;
  for (char c : name.substr(0, 16)) {
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    n = (n << 4) | static_cast<std::uint64_t>(d);
  }
  *number = n;
  return true;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

}  // namespace

Journal::Journal(std::string dir, bool sync, int lock_fd)
    : dir_(std::move(dir)), sync_(sync), lock_fd_(lock_fd) {}

Journal::~Journal() {
  if (current_.fd >= 0) ::close(current_.fd);
  if (spare_.fd >= 0) {
    // Never written: not a segment anyone needs.
    ::close(spare_.fd);
    ::unlink(path_of(spare_.number).c_str());
  }
  if (dir_fd_ >= 0) ::close(dir_fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

Status Journal::fail(std::string_view what, int err) const {
  return Status::unavailable(fmt::format("journal {}: {}: {}", dir_, what, std::strerror(err)));
}

Result<std::unique_ptr<Journal>> Journal::open(std::string dir, bool sync) {
  std::error_code ec;
  bool created = std::filesystem::create_directories(dir, ec);
  if (ec) {
    return Status::unavailable(
        fmt::format("journal {}: cannot create directory: {}", dir, ec.message()));
  }
  if (created && sync) {
    // The new directory's own entry, in its parent, must be durable before
    // any record in it counts.
    std::string parent = std::filesystem::path(dir).parent_path().string();
    Fd p(::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (p.get() < 0 || ::fsync(p.get()) != 0) {
      return Status::unavailable(
          fmt::format("journal {}: fsync {}: {}", dir, parent, std::strerror(errno)));
    }
  }
  std::string lock_path = dir + "/LOCK";
  Fd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (lock.get() < 0) {
    return Status::unavailable(
        fmt::format("journal {}: open {}: {}", dir, lock_path, std::strerror(errno)));
  }
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    if (err == EWOULDBLOCK) {
      return Status::unavailable(
          fmt::format("journal {}: in use by another process (it holds {})", dir, lock_path));
    }
    return Status::unavailable(fmt::format("journal {}: flock: {}", dir, std::strerror(err)));
  }
  std::unique_ptr<Journal> j(new Journal(std::move(dir), sync, lock.release()));
  j->dir_fd_ = ::open(j->dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (j->dir_fd_ < 0) return j->fail("open directory", errno);
  auto numbers = j->list_segments();
  if (!numbers) return numbers.status();
  if (!numbers->empty()) j->next_number_ = numbers->back() + 1;
  return j;
}

std::string Journal::path_of(std::uint64_t number) const {
  return fmt::format("{}/{:016x}{}", dir_, number, kSuffix);
}

Result<std::vector<std::uint64_t>> Journal::list_segments() const {
  std::vector<std::uint64_t> numbers;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    std::uint64_t n = 0;
    if (parse_segment_name(entry.path().filename().string(), &n)) numbers.push_back(n);
  }
  if (ec) {
    return Status::unavailable(fmt::format("journal {}: list: {}", dir_, ec.message()));
  }
  std::sort(numbers.begin(), numbers.end());
  return numbers;
}

Result<std::uint64_t> Journal::replay(
    std::uint64_t after, const std::function<Status(std::uint64_t, std::string_view)>& fn) {
  auto numbers = list_segments();
  if (!numbers) return numbers.status();
  std::uint64_t expected = 0;  // lsn the next record must carry; 0 = not known yet
  std::uint64_t last = after;
  std::string payload;
  for (std::uint64_t number : *numbers) {
    std::string path = path_of(number);
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return fail("open " + path, errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return fail("stat " + path, errno);
    const auto file_bytes = static_cast<std::uint64_t>(st.st_size);
    unsigned char head[kSegmentHeaderBytes];
    int r = pread_exact(fd.get(), head, sizeof head, 0);
    if (r < 0) return fail("read " + path, errno);
    // Created, header never made it to disk (a crash between create and
    // its flush): empty, or zeros. No record can be in it.
    if (r == 0) continue;
    static constexpr unsigned char kZeros[kSegmentHeaderBytes] = {};
    if (std::memcmp(head, kZeros, sizeof head) == 0) continue;
    if (std::memcmp(head, kMagic, sizeof kMagic) != 0 || get_be64(head + 8) != number) {
      return Status::internal(fmt::format("journal {}: {} is not a journal segment", dir_, path));
    }
    std::uint64_t offset = kSegmentHeaderBytes;
    for (;;) {
      unsigned char rh[kRecordHeaderBytes];
      r = pread_exact(fd.get(), rh, sizeof rh, offset);
      if (r < 0) return fail("read " + path, errno);
      if (r == 0) break;
      const std::uint32_t len = get_be32(rh + 4);
      const std::uint64_t lsn = get_be64(rh + 8);
      // No record has lsn 0: these are a preallocated segment's zeros, past
      // its last record. Anything else that is not a whole record (a write
      // torn by a crash, garbage) fails a check below.
      if (lsn == 0) break;
      if (len > kMaxRecordBytes || len > file_bytes - offset - kRecordHeaderBytes) break;
      payload.resize(len);
      r = pread_exact(fd.get(), reinterpret_cast<unsigned char*>(payload.data()), len,
                      offset + kRecordHeaderBytes);
      if (r < 0) return fail("read " + path, errno);
      if (r == 0) break;
      if (record_crc(rh + 4, reinterpret_cast<const unsigned char*>(payload.data()), len) !=
          get_be32(rh)) {
        break;
      }
      if (expected == 0 && lsn > after + 1) {
        return Status::internal(
            fmt::format("journal {}: its first record is {} but records after {} are needed", dir_,
                        lsn, after));
      }
      if (expected != 0 && lsn != expected) {
        // Only the record the sequence needs may follow, in this segment
        // or at the start of the next. A later one means records went
        // missing in between: acknowledged ones, unless all of them were
        // applied to LMDB already.
        if (lsn > expected && lsn - 1 > after) {
          return Status::internal(
              fmt::format("journal {}: record {} follows record {} in {}: the log has a gap", dir_,
                          lsn, expected - 1, path));
        }
        if (lsn < expected) break;  // an older record: stale bytes past a failed append
      }
      expected = lsn + 1;
      offset += kRecordHeaderBytes + len;
      if (lsn <= after) continue;  // already applied to LMDB
      if (Status s = fn(lsn, payload); !s) return s;
      last = lsn;
    }
    // Whatever stopped this segment (its end, or a torn record), the next
    // one must continue the sequence from here.
  }
  return last;
}

std::uint64_t Journal::prealloc_bytes(std::uint64_t previous_bytes) {
  constexpr std::uint64_t kGranule = std::uint64_t{64} << 10;
  const std::uint64_t want = previous_bytes + previous_bytes / 2;
  const std::uint64_t rounded = (want + kGranule - 1) / kGranule * kGranule;
  return std::clamp(rounded, kMinPreallocBytes, kMaxPreallocBytes);
}

Result<Journal::Segment> Journal::create_segment(std::uint64_t number,
                                                 std::uint64_t expected_bytes) const {
  std::string path = path_of(number);
  Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (fd.get() < 0) return fail("create " + path, errno);
  // Past this point a failure removes the file: preallocated, it may be large.
  auto failed = [&](std::string_view what) {
    Status st = fail(fmt::format("{} {}", what, path), errno);
    ::unlink(path.c_str());
    return st;
  };
  unsigned char head[kSegmentHeaderBytes];
  std::memcpy(head, kMagic, sizeof kMagic);
  put_be64(head + 8, number);
  if (!pwrite_all(fd.get(), head, sizeof head, 0)) return failed("write");
  if (sync_ && expected_bytes > kSegmentHeaderBytes) {
    // Real zeros, not fallocate(): ext4 keeps fallocated blocks "unwritten",
    // and a record's flush would then write the extent change as well.
    const std::vector<unsigned char> zeros(std::size_t{256} << 10);
    for (std::uint64_t at = kSegmentHeaderBytes; at < expected_bytes;) {
      const auto n =
          static_cast<std::size_t>(std::min<std::uint64_t>(zeros.size(), expected_bytes - at));
      if (!pwrite_all(fd.get(), zeros.data(), n, at)) {
        // Only an optimisation (ENOSPC, say): go on without it, as the
        // records' own writes would find the same condition.
        if (::ftruncate(fd.get(), static_cast<off_t>(kSegmentHeaderBytes)) != 0) {
          return failed("truncate");
        }
        break;
      }
#ifdef __linux__
      // One piece in flight at a time: flushed all at once at the end, 8 MB
      // of zeros queued ahead of the current segment's record flushes on
      // the same disk and held their acks for up to ~6 ms.
      // An error seen here is reported once only: the fdatasync below would
      // then succeed, so it fails the segment now.
      if (::sync_file_range(fd.get(), static_cast<off64_t>(at), static_cast<off64_t>(n),
                            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
        return failed("sync_file_range");
      }
#endif
      at += n;
    }
  }
  // The header, the zeros and the directory entry are flushed now, so that
  // later a record's own fdatasync is all a commit needs.
  if (sync_) {
    if (::fdatasync(fd.get()) != 0) return failed("fdatasync");
    if (::fsync(dir_fd_) != 0) return failed("fsync directory for");
  }
  Segment s;
  s.number = number;
  s.fd = fd.release();
  return s;
}

Status Journal::start(std::uint64_t last_lsn) {
  next_lsn_ = last_lsn + 1;
  // The first segment gets the smallest preallocation (nothing is known of
  // the traffic yet); if that fails, rotate() creates a plain one.
  (void)prepare_segment();
  if (Status s = rotate(); !s) return s;
  remove_old_segments();
  return Status::ok();
}

Status Journal::prepare_segment() {
  std::uint64_t number = 0;
  {
    std::lock_guard lock(mu_);
    if (spare_.fd >= 0) return Status::ok();
    number = next_number_++;
  }
  // The current segment holds about one checkpoint interval of traffic by
  // now, so the next one will likely need as much.
  auto seg =
      create_segment(number, prealloc_bytes(published_offset_.load(std::memory_order_relaxed)));
  if (!seg) return seg.status();
  std::lock_guard lock(mu_);
  spare_ = *seg;
  return Status::ok();
}

Status Journal::rotate() {
  // Nothing written to the current segment yet: every record is in an
  // older one already, which is all a rotation promises.
  if (current_.fd >= 0 && offset_ == kSegmentHeaderBytes) return Status::ok();
  Segment next;
  {
    std::lock_guard lock(mu_);
    next = std::exchange(spare_, Segment{});
  }
  if (next.fd < 0) {
    std::uint64_t number = 0;
    {
      std::lock_guard lock(mu_);
      number = next_number_++;
    }
    // Under the caller's commit lock, and after prepare_segment() failed
    // (ENOSPC, say): no preallocation, the header only.
    auto seg = create_segment(number, 0);
    if (!seg) return seg.status();
    next = *seg;
  }
  if (current_.fd >= 0) ::close(current_.fd);
  current_ = next;
  offset_ = kSegmentHeaderBytes;
  published_offset_.store(offset_, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  oldest_live_ = current_.number;
  return Status::ok();
}

void Journal::remove_old_segments() {
  std::lock_guard lock(mu_);
  auto numbers = list_segments();
  if (!numbers) return;  // left for the next checkpoint; replay skips applied records
  for (std::uint64_t n : *numbers) {
    if (n < oldest_live_) ::unlink(path_of(n).c_str());
  }
}

Result<std::uint64_t> Journal::append(std::string_view payload) {
  if (broken_) {
    return Status::unavailable(fmt::format(
        "journal {}: an earlier flush failed; reopen the store to recover the log", dir_));
  }
  if (current_.fd < 0) return Status::internal("journal: append before start()");
  if (payload.size() > kMaxRecordBytes) {
    return Status::invalid_argument(fmt::format(
        "journal record of {} bytes is over the {} byte cap", payload.size(), kMaxRecordBytes));
  }
  const auto len = static_cast<std::uint32_t>(payload.size());
  record_.resize(kRecordHeaderBytes + payload.size());
  auto* p = reinterpret_cast<unsigned char*>(record_.data());
  put_be32(p + 4, len);
  put_be64(p + 8, next_lsn_);
  std::memcpy(p + kRecordHeaderBytes, payload.data(), payload.size());
  put_be32(p, record_crc(p + 4, p + kRecordHeaderBytes, payload.size()));
  if (!pwrite_all(current_.fd, p, record_.size(), offset_)) {
    int err = errno;
    // Not counted. Cut off whatever part landed: left behind a shorter
    // record, its bytes (a message body, chosen by a user) would be read
    // at the next record boundary and could pass for a record. (This also
    // drops the segment's preallocation; later records extend the file.)
    if (::ftruncate(current_.fd, static_cast<off_t>(offset_)) != 0) broken_ = true;
    return fail(fmt::format("write {}", path_of(current_.number)), err);
  }
  if (sync_ && ::fdatasync(current_.fd) != 0) {
    int err = errno;
    broken_ = true;
    return fail(fmt::format("fdatasync {}", path_of(current_.number)), err);
  }
  offset_ += record_.size();
  published_offset_.store(offset_, std::memory_order_relaxed);
  if (record_.capacity() > (std::size_t{1} << 20)) std::string().swap(record_);
  return next_lsn_++;
}

}  // namespace chatcore::lmdb_internal
