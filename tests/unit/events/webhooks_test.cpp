// Webhook helpers: the Standard Webhooks signature (the specification's published example), event
// name rules and matching, breaker destinations, secrets.

#include "events/webhooks.hpp"

#include <gtest/gtest.h>

namespace basalt::events {
namespace {

TEST(WebhookSignature, MatchesTheStandardWebhooksExample) {
  EXPECT_EQ(Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                 R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  // Any change to id, timestamp or body changes it.
  const std::string s = Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331,
                             R"({"test": 2432232314})");
  EXPECT_NE(s, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(WebhookSecret, IsWhsecWithThirtyTwoRandomBytes) {
  const std::string a = NewSecret(), b = NewSecret();
  EXPECT_TRUE(a.starts_with("whsec_"));
  EXPECT_EQ(a.size(), 6u + 44u);  // base64 of 32 bytes
  EXPECT_NE(a, b);
}

TEST(WebhookEvents, NamesAreValidatedAndMatched) {
  EXPECT_TRUE(ValidateEventNames({"posts.created", "posts.updated", "users.*"}));
  EXPECT_TRUE(ValidateEventNames({"*"}));
  for (const std::vector<std::string>& bad :
       std::vector<std::vector<std::string>>{{}, {"posts"}, {"posts.made"}, {"Posts.created"}, {".created"},
                                             {"posts.created", "posts.created"}, {"a-b.created"}}) {
    EXPECT_FALSE(ValidateEventNames(bad)) << (bad.empty() ? "(empty)" : bad[0]);
  }
  EXPECT_TRUE(Matches({"posts.created"}, "posts", "created"));
  EXPECT_FALSE(Matches({"posts.created"}, "posts", "updated"));
  EXPECT_FALSE(Matches({"posts.created"}, "posts2", "created"));
  EXPECT_FALSE(Matches({"posts.created"}, "post", "created"));
  EXPECT_TRUE(Matches({"posts.*"}, "posts", "deleted"));
  EXPECT_FALSE(Matches({"posts.*"}, "postsx", "deleted"));
  EXPECT_TRUE(Matches({"*"}, "anything", "updated"));
}

TEST(WebhookDestination, IsSchemeHostAndPort) {
  EXPECT_EQ(DestinationOf("https://Example.com/hook?x=1"), "https://example.com:443");
  EXPECT_EQ(DestinationOf("http://example.com/hook"), "http://example.com:80");
  EXPECT_EQ(DestinationOf("http://127.0.0.1:8080/a"), "http://127.0.0.1:8080");
  EXPECT_EQ(DestinationOf("http://[::1]/a"), "http://[::1]:80");
  EXPECT_EQ(DestinationOf("http://[::1]:9/a"), "http://[::1]:9");
}

}  // namespace
}  // namespace basalt::events
