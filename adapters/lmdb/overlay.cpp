#include "overlay.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <random>

namespace chatcore::lmdb_internal {

namespace {

// splitmix64's finaliser: every input bit moves every output bit.
std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

const std::uint64_t kHashSeed = [] {
  std::random_device rd;
  return (std::uint64_t{rd()} << 32) ^ rd();
}();

}  // namespace

std::size_t DedupKeyHash::operator()(const DedupKey& k) const {
  std::uint64_t lo = 0;
  std::uint64_t hi = 0;
  std::memcpy(&lo, k.id.bytes.data(), sizeof lo);
  std::memcpy(&hi, k.id.bytes.data() + sizeof lo, sizeof hi);
  return static_cast<std::size_t>(mix(lo ^ mix(hi ^ mix(k.sender.value ^ kHashSeed))));
}

void Overlay::add(std::shared_ptr<const JournaledBatch> batch) {
  for (const JournaledMessage& jm : batch->messages) {
    const auto& m = jm.message;
    conversations_[m->conversation.value].push_back(m);
    for (const auto& [user, inbox_seq] : jm.inbox) {
      inboxes_[user.value].push_back(InboxItem{inbox_seq, m});
    }
    dedup_.emplace(DedupKey{m->sender, m->client_msg_id}, m);
    if (jm.first_of_direct) {
      for (UserId u : {m->conversation.low_user(), m->conversation.high_user()}) {
        direct_[u.value].push_back(m->conversation);
      }
    }
  }
  bytes_ += batch->bytes;
  batches_.push_back(std::move(batch));
}

void Overlay::trim(std::size_t count, std::size_t txnid) {
  count = std::min(count, batches_.size());
  for (std::size_t i = 0; i < count; ++i) {
    const JournaledBatch& batch = *batches_.front();
    for (const JournaledMessage& jm : batch.messages) {
      const auto& m = jm.message;
      // Partitions are trimmed from the front in commit order, so the
      // oldest entry of each is this batch's (see the file comment).
      auto conv = conversations_.find(m->conversation.value);
      assert(conv != conversations_.end() && conv->second.front() == m);
      conv->second.pop_front();
      if (conv->second.empty()) conversations_.erase(conv);
      for (const auto& [user, inbox_seq] : jm.inbox) {
        auto in = inboxes_.find(user.value);
        assert(in != inboxes_.end() && in->second.front().inbox_seq == inbox_seq);
        in->second.pop_front();
        if (in->second.empty()) inboxes_.erase(in);
      }
      dedup_.erase(DedupKey{m->sender, m->client_msg_id});
      if (jm.first_of_direct) {
        for (UserId u : {m->conversation.low_user(), m->conversation.high_user()}) {
          auto d = direct_.find(u.value);
          if (d == direct_.end()) continue;
          std::erase(d->second, m->conversation);
          if (d->second.empty()) direct_.erase(d);
        }
      }
    }
    bytes_ -= batch.bytes;
    batches_.pop_front();
  }
  trimmed_txnid_ = txnid;
}

const std::deque<std::shared_ptr<const Message>>* Overlay::conversation(ConversationId conv) const {
  auto it = conversations_.find(conv.value);
  return it == conversations_.end() ? nullptr : &it->second;
}

const std::deque<InboxItem>* Overlay::inbox(UserId user) const {
  auto it = inboxes_.find(user.value);
  return it == inboxes_.end() ? nullptr : &it->second;
}

std::shared_ptr<const Message> Overlay::find(const DedupKey& key) const {
  auto it = dedup_.find(key);
  return it == dedup_.end() ? nullptr : it->second;
}

const std::vector<ConversationId>* Overlay::direct_conversations(UserId user) const {
  auto it = direct_.find(user.value);
  return it == direct_.end() ? nullptr : &it->second;
}

}  // namespace chatcore::lmdb_internal
