#include "auth/scopes.hpp"

#include <gtest/gtest.h>

#include "auth/access_store.hpp"

namespace basalt::auth {
namespace {

TEST(Scopes, Vocabulary) {
  for (const auto& s : KnownScopes()) EXPECT_TRUE(IsValidScope(s)) << s;
  EXPECT_TRUE(IsValidScope("records:read:posts"));
  EXPECT_TRUE(IsValidScope("records:write:_x9"));
  for (const char* bad : {"", "records", "records:read:", "records:read:9x", "records:read:a-b", "collections:manage:x",
                          "admin ", "ADMIN", "records:delete", "records:read:posts:x"}) {
    EXPECT_FALSE(IsValidScope(bad)) << bad;
  }
}

TEST(Scopes, Covers) {
  const std::vector<std::string> read{"records:read"};
  EXPECT_TRUE(Covers(read, kRecordsRead));
  EXPECT_TRUE(Covers(read, kRecordsRead, "posts"));
  EXPECT_FALSE(Covers(read, kRecordsWrite, "posts"));
  const std::vector<std::string> one{"records:write:posts"};
  EXPECT_TRUE(Covers(one, kRecordsWrite, "posts"));
  EXPECT_FALSE(Covers(one, kRecordsWrite, "post"));
  EXPECT_FALSE(Covers(one, kRecordsWrite, "postsx"));
  EXPECT_FALSE(Covers(one, kRecordsWrite));
  EXPECT_TRUE(Covers({"admin"}, kCollectionsManage));
  EXPECT_FALSE(Covers({}, kRecordsRead));
}

TEST(Scopes, CoversAllIsASubsetCheck) {
  EXPECT_TRUE(CoversAll({"admin"}, {"records:read", "roles:manage", "records:write:x"}));
  EXPECT_TRUE(CoversAll({"records:read"}, {"records:read:posts"}));
  EXPECT_TRUE(CoversAll({"records:read:posts"}, {"records:read:posts"}));
  EXPECT_FALSE(CoversAll({"records:read:posts"}, {"records:read"}));
  EXPECT_FALSE(CoversAll({"records:read"}, {"admin"}));
  EXPECT_FALSE(CoversAll({"roles:manage"}, {"roles:manage", "api_keys:manage"}));
  EXPECT_TRUE(CoversAll({}, {}));
}

TEST(Scopes, PerQueueForms) {
  for (const char* good : {"queues:admin", "webhooks:manage", "queues:produce:orders", "queues:consume:a.b-c_9",
                           "queues:admin:9lives", "queues:produce:basalt.webhooks"}) {
    EXPECT_TRUE(IsValidScope(good)) << good;
  }
  const std::string long_name(129, 'q');
  for (const std::string& bad : {std::string("queues:produce:"), std::string("queues:produce:.x"),
                                std::string("queues:produce:a b"), std::string("queues:consume:a:b"),
                                std::string("queues:produce:") + long_name, std::string("queues:purge:x"),
                                std::string("webhooks:manage:x"), std::string("queues:admin:-x")}) {
    EXPECT_FALSE(IsValidScope(bad)) << bad;
  }
  EXPECT_TRUE(IsValidScope("queues:produce:" + std::string(128, 'q')));
  const std::vector<std::string> one{"queues:produce:orders"};
  EXPECT_TRUE(Covers(one, kQueuesProduce, "orders"));
  EXPECT_FALSE(Covers(one, kQueuesProduce, "orders2"));
  EXPECT_FALSE(Covers(one, kQueuesConsume, "orders"));
  EXPECT_FALSE(Covers(one, kQueuesProduce));  // not every queue
  EXPECT_TRUE(Covers({"queues:admin"}, kQueuesAdmin, "any"));
  EXPECT_FALSE(Covers({"queues:admin"}, kQueuesProduce, "any"));  // administering is not producing
  EXPECT_TRUE(CoversAll({"queues:consume"}, {"queues:consume:jobs"}));
  EXPECT_FALSE(CoversAll({"queues:consume:jobs"}, {"queues:consume"}));
  EXPECT_FALSE(CoversAll({"queues:consume:jobs"}, {"queues:consume:other"}));
  EXPECT_TRUE(CoversAll({"admin"}, {"queues:admin:jobs", "webhooks:manage"}));
}

TEST(Scopes, SplitAndJoin) {
  EXPECT_EQ(SplitScopes("  a b  a c "), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(SplitScopes("").empty());
  EXPECT_EQ(JoinScopes({"a", "b"}), "a b");
}

TEST(Roles, BuiltinsAndNames) {
  EXPECT_EQ(BuiltinRolePermissions("admin"), (std::vector<std::string>{"admin"}));
  EXPECT_EQ(BuiltinRolePermissions("user"), (std::vector<std::string>{"records:read", "records:write"}));
  EXPECT_TRUE(BuiltinRolePermissions("editor").empty());
  EXPECT_TRUE(IsValidRoleName("editor-2"));
  for (const char* bad : {"", "Editor", "2x", "a b", "x/y"}) EXPECT_FALSE(IsValidRoleName(bad)) << bad;
}

TEST(ApiKeyToken, Shape) {
  EXPECT_EQ(ApiKeyIdOf("bsk_0192c3b4-aaaa-7bbb-8ccc-0123456789ab_secret_with_underscores"),
            std::optional<std::string>("0192c3b4-aaaa-7bbb-8ccc-0123456789ab"));
  for (const char* bad : {"", "bsk_", "bsk__x", "bsk_abc", "bsk_abc_", "xsk_abc_def", "bsk_ABC_def", "bsk_a'b_c"}) {
    EXPECT_FALSE(ApiKeyIdOf(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace basalt::auth
