// Notifier: the push hook for members with no online session.
//
// After a message commits, every recipient with no online session (and not
// the sender) is passed to Notifier::on_offline_message once. A daemon wires
// this to a push service or webhook; the default does nothing.
//
// Called on the engine's owner thread; must not block (queue the work) and
// must not call back into the Engine.
#pragma once

#include "chatcore/ids.hpp"
#include "chatcore/model.hpp"

namespace chatcore {

class Notifier {
 public:
  virtual ~Notifier() = default;
  virtual void on_offline_message(UserId recipient, const Message& message) = 0;
};

}  // namespace chatcore
