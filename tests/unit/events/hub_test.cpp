// The live-subscriber hub: fan-out by collection, order, and the bounded queue that cuts a slow
// subscriber off instead of growing.

#include "events/hub.hpp"

#include <gtest/gtest.h>

namespace basalt::events {
namespace {

std::shared_ptr<const Event> MakeEvent(std::string collection, std::int64_t seq) {
  auto e = std::make_shared<Event>();
  e->collection = std::move(collection);
  e->position = {0, seq};
  return e;
}

TEST(Hub, FansOutByCollectionInOrderAndWakes) {
  Hub hub;
  int wakes = 0;
  auto a = hub.Subscribe("posts", 10, [&] { ++wakes; });
  auto b = hub.Subscribe("users", 10, [&] { ++wakes; });
  EXPECT_EQ(hub.subscribers(), 2u);
  hub.Publish({MakeEvent("posts", 1), MakeEvent("users", 2), MakeEvent("posts", 3)});
  auto got = a->Take();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0]->position.seq, 1);
  EXPECT_EQ(got[1]->position.seq, 3);
  EXPECT_EQ(b->Take().size(), 1u);
  EXPECT_EQ(wakes, 2);
  EXPECT_TRUE(a->Take().empty());
  hub.Unsubscribe(a);
  hub.Publish({MakeEvent("posts", 4)});
  EXPECT_TRUE(a->Take().empty());
  EXPECT_EQ(hub.subscribers(), 1u);
}

TEST(Hub, ASubscriberThatFallsBehindIsCutOffNotGrown) {
  Hub hub;
  auto slow = hub.Subscribe("posts", 3, [] {});
  auto fast = hub.Subscribe("posts", 3, [] {});
  for (std::int64_t i = 1; i <= 3; ++i) {
    hub.Publish({MakeEvent("posts", i)});
    EXPECT_EQ(fast->Take().size(), 1u);
  }
  EXPECT_FALSE(slow->overflowed());
  hub.Publish({MakeEvent("posts", 4)});
  EXPECT_TRUE(slow->overflowed());
  EXPECT_TRUE(slow->Take().empty()) << "the queue is freed at once";
  EXPECT_FALSE(fast->overflowed());
  EXPECT_EQ(fast->Take().size(), 1u);
  hub.Publish({MakeEvent("posts", 5)});
  EXPECT_TRUE(slow->Take().empty());
  EXPECT_EQ(hub.overflows(), 1u);
}

}  // namespace
}  // namespace basalt::events
