// The login throttle with a fake clock: lock after the threshold, exponential growth up to the
// cap, expiry, reset on success, per-IP limits, and the memory bound.

#include <gtest/gtest.h>

#include "auth/throttle.hpp"

namespace basalt::auth {
namespace {

using namespace std::chrono_literals;

struct FakeClock {
  std::chrono::steady_clock::time_point now{};
  LoginThrottle::Clock fn() {
    return [this] { return now; };
  }
};

TEST(Throttle, LocksAfterThresholdAndBacksOff) {
  FakeClock clock;
  LoginThrottle t({.account_threshold = 3, .ip_threshold = 1000, .base_lock_s = 10, .max_lock_s = 35}, clock.fn());
  EXPECT_FALSE(t.Failure("a", "ip"));
  EXPECT_FALSE(t.Failure("a", "ip"));
  EXPECT_FALSE(t.RetryAfter("a", "ip"));
  LockedKeys which;
  EXPECT_EQ(t.Failure("a", "ip", &which), 10);
  EXPECT_TRUE(which.account);
  EXPECT_FALSE(which.ip);
  EXPECT_EQ(t.RetryAfter("a", "ip"), 10);
  EXPECT_FALSE(t.RetryAfter("b", "ip"));  // other accounts are unaffected
  clock.now += 4s;
  EXPECT_EQ(t.RetryAfter("a", "ip"), 6);
  clock.now += 6s;
  EXPECT_FALSE(t.RetryAfter("a", "ip"));
  EXPECT_EQ(t.Failure("a", "ip"), 20);  // doubles
  clock.now += 20s;
  EXPECT_EQ(t.Failure("a", "ip"), 35);  // capped
  t.Success("a");
  EXPECT_FALSE(t.RetryAfter("a", "ip"));
  EXPECT_FALSE(t.Failure("a", "ip"));  // counting starts over
}

TEST(Throttle, LocksAnIpAcrossAccounts) {
  FakeClock clock;
  LoginThrottle t({.account_threshold = 100, .ip_threshold = 3, .base_lock_s = 5, .max_lock_s = 60}, clock.fn());
  LockedKeys which{.account = true, .ip = true};
  t.Failure("a", "1.2.3.4", &which);
  EXPECT_FALSE(which.account || which.ip);
  t.Failure("b", "1.2.3.4");
  EXPECT_EQ(t.Failure("c", "1.2.3.4", &which), 5);
  EXPECT_TRUE(which.ip);  // the IP locked, not the account
  EXPECT_FALSE(which.account);
  EXPECT_EQ(t.RetryAfter("d", "1.2.3.4"), 5);
  EXPECT_FALSE(t.RetryAfter("d", "5.6.7.8"));
  t.Success("c");  // a success clears the account, not the IP
  EXPECT_TRUE(t.RetryAfter("c", "1.2.3.4"));
}

TEST(Throttle, ForgetsOldFailuresAndStaysBounded) {
  FakeClock clock;
  LoginThrottle t({.account_threshold = 2, .ip_threshold = 1'000'000, .base_lock_s = 5, .max_lock_s = 60,
                   .forget_after_s = 100, .max_entries = 50},
                  clock.fn());
  t.Failure("a", "ip");
  clock.now += 101s;
  EXPECT_FALSE(t.Failure("a", "ip"));  // the first failure was forgotten
  for (int i = 0; i < 500; ++i) t.Failure("user" + std::to_string(i), "ip" + std::to_string(i));
  // Still answers, and the newest keys are still counted.
  EXPECT_EQ(t.Failure("user499", "ip499"), 5);
}

}  // namespace
}  // namespace basalt::auth
