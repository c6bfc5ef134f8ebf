// The Store conformance suite against MemoryStore.
#include "chatcore/memory_store.hpp"

#include "conformance/store_conformance.hpp"

namespace {

struct MemoryStoreFixture {
  chatcore::MemoryStore memory;
  chatcore::Store& store() { return memory; }
};

}  // namespace

TYPE_TO_STRING(MemoryStoreFixture);
TEST_CASE_TEMPLATE_INVOKE(store_conformance, MemoryStoreFixture);
