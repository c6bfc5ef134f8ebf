// Overlay: the messages that are durable in the journal but not yet
// checkpointed into LMDB, indexed the way the Store's reads need them.
//
// Every read of a message table (history, inboxes, dedup keys, a
// conversation's newest message, the direct conversations of a user) looks
// here and in LMDB and merges the two. That merge is simple because of one
// invariant: within each partition (a conversation's messages, a user's
// inbox) the overlay holds a contiguous run of the NEWEST seqs. A commit
// appends at the end of a partition, and a checkpoint applies the oldest
// batches to LMDB and then trims them from the front. So for a partition
// whose overlay run starts at seq F, LMDB answers for seqs below F and the
// overlay for F and above; LMDB may already hold some of the latter too
// (applied, not yet trimmed), and those are simply not read from it.
//
// Consistency with a concurrent checkpoint: a reader opens its LMDB read
// transaction first, then takes the overlay's lock and compares the
// transaction's id with trimmed_txnid, the LMDB transaction of the last
// checkpoint whose batches were trimmed. If the reader's snapshot is older,
// entries it needs may be in neither place, and it starts again (rare: the
// window is one trim). Otherwise everything trimmed is in its snapshot.
//
// Thread-safety: none of its own; LmdbStore guards it with a mutex.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "chatcore/ids.hpp"
#include "chatcore/model.hpp"

namespace chatcore::lmdb_internal {

// One committed message as the journal records it and a checkpoint applies it.
struct JournaledMessage {
  std::shared_ptr<const Message> message;
  // (recipient, inbox seq) for every recipient, sender included.
  std::vector<std::pair<UserId, std::uint64_t>> inbox;
  // The conversation's first message, and the conversation is direct: the
  // checkpoint records it for both participants (user_convs).
  bool first_of_direct = false;
};

// One commit() call's stored messages: one journal record.
struct JournaledBatch {
  std::uint64_t lsn = 0;
  std::vector<JournaledMessage> messages;
  // What the batch costs while unapplied: its journal record plus an
  // estimate of the overlay's index entries. Drives checkpoints and
  // back-pressure.
  std::size_t bytes = 0;
  std::chrono::steady_clock::time_point committed_at;
};

struct DedupKey {
  UserId sender;
  ClientMsgId id;
  friend bool operator==(const DedupKey&, const DedupKey&) = default;
};

// Client ids are chosen by clients: random by the protocol's advice, but a
// client may as well count from 1. So every byte goes into the hash, mixed
// with a seed drawn once per process, and a client cannot line its keys up
// in one bucket (sixteen sequential ids once put a sender's keys in one
// chain and made each lookup a walk along it).
struct DedupKeyHash {
  std::size_t operator()(const DedupKey& k) const;
};

class Overlay {
 public:
  // A batch whose journal record is durable: its messages become visible.
  void add(std::shared_ptr<const JournaledBatch> batch);
  // The oldest `count` batches are applied to LMDB by the write transaction
  // `txnid`, now committed: forget them.
  void trim(std::size_t count, std::size_t txnid);

  // ---- lookups (each names one partition) ------------------------------------
  // The conversation's messages held here, ascending seq (contiguous), or null.
  const std::deque<std::shared_ptr<const Message>>* conversation(ConversationId conv) const;
  // The user's inbox entries held here, ascending inbox seq (contiguous), or null.
  const std::deque<InboxItem>* inbox(UserId user) const;
  std::shared_ptr<const Message> find(const DedupKey& key) const;
  // Direct conversations whose first message is held here, for one user.
  const std::vector<ConversationId>* direct_conversations(UserId user) const;

  // Batches not yet trimmed, oldest first.
  const std::deque<std::shared_ptr<const JournaledBatch>>& batches() const { return batches_; }
  // Sum of JournaledBatch::bytes over batches().
  std::size_t bytes() const { return bytes_; }
  std::size_t trimmed_txnid() const { return trimmed_txnid_; }

 private:
  std::deque<std::shared_ptr<const JournaledBatch>> batches_;
  std::size_t bytes_ = 0;
  std::size_t trimmed_txnid_ = 0;
  std::unordered_map<std::uint64_t, std::deque<std::shared_ptr<const Message>>> conversations_;
  std::unordered_map<std::uint64_t, std::deque<InboxItem>> inboxes_;
  std::unordered_map<DedupKey, std::shared_ptr<const Message>, DedupKeyHash> dedup_;
  std::unordered_map<std::uint64_t, std::vector<ConversationId>> direct_;
};

}  // namespace chatcore::lmdb_internal
