/// Migrator against every backend (see AllBackends()).

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "store/migrations.hpp"
#include "store_test_support.hpp"

namespace basalt::store {
namespace {

using testing::AllBackends;
using testing::Backend;
using testing::BackendName;
using testing::RunTask;
using testing::TempDir;

std::vector<Migration> Catalog() {
  return {
      {1, "create_users",
       "CREATE TABLE users (id BIGINT PRIMARY KEY, email TEXT NOT NULL UNIQUE);\n"
       "CREATE INDEX users_email ON users (email);",
       "DROP INDEX users_email; DROP TABLE users;"},
      {2, "create_posts",
       "CREATE TABLE posts (id BIGINT PRIMARY KEY, user_id BIGINT NOT NULL REFERENCES users(id), title TEXT);",
       "DROP TABLE posts;"},
      {3, "seed_admin", "INSERT INTO users (id, email) VALUES (1, 'admin@example.com');",
       "DELETE FROM users WHERE id = 1;"},
  };
}

class MigratorTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (const std::string why = testing::SkipReason(GetParam()); !why.empty()) GTEST_SKIP() << why;
    auto db = GetParam().open(dir_.path(), 1);
    ASSERT_TRUE(db.has_value()) << db.error().cause;
    db_ = std::move(*db);
  }
  void TearDown() override {
    if (db_) db_->Close();
  }

  std::vector<MigrationStatus> Status(std::vector<Migration> catalog) {
    Migrator migrator(*db_, std::move(catalog));
    auto status = RunTask(migrator.Status());
    EXPECT_TRUE(status.has_value()) << status.error().message << " / " << status.error().cause;
    return status ? *status : std::vector<MigrationStatus>{};
  }
  bool TableExists(const std::string& table) {
    return RunTask(db_->Query(0, Statement{"SELECT COUNT(*) FROM " + table, {}})).has_value();
  }

  TempDir dir_;
  std::unique_ptr<Database> db_;
};

TEST_P(MigratorTest, UpAppliesInOrderAndRecords) {
  Migrator migrator(*db_, Catalog());
  auto status = RunTask(migrator.Status());
  ASSERT_TRUE(status.has_value());
  ASSERT_EQ(status->size(), 3u);
  for (const auto& s : *status) EXPECT_EQ(s.state, MigrationState::kPending);

  auto applied = RunTask(migrator.Up(2));
  ASSERT_TRUE(applied.has_value()) << applied.error().message << applied.error().cause;
  EXPECT_EQ(*applied, 2);
  EXPECT_TRUE(TableExists("posts"));
  auto after = Status(Catalog());
  EXPECT_EQ(after[0].state, MigrationState::kApplied);
  EXPECT_EQ(after[1].state, MigrationState::kApplied);
  EXPECT_EQ(after[2].state, MigrationState::kPending);
  EXPECT_FALSE(after[0].applied_at.empty());
  EXPECT_EQ(after[0].checksum, MigrationChecksum(Catalog()[0].up));

  auto rest = RunTask(migrator.Up());
  ASSERT_TRUE(rest.has_value());
  EXPECT_EQ(*rest, 1);
  auto again = RunTask(migrator.Up());  // Idempotent.
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, 0);
  auto admin = RunTask(db_->Query(0, Statement{"SELECT email FROM users", {}}));
  ASSERT_TRUE(admin.has_value());
  ASSERT_EQ(admin->rows.size(), 1u);
}

TEST_P(MigratorTest, DownRevertsMostRecentFirst) {
  Migrator migrator(*db_, Catalog());
  ASSERT_TRUE(RunTask(migrator.Up()).has_value());
  auto reverted = RunTask(migrator.Down(2));
  ASSERT_TRUE(reverted.has_value()) << reverted.error().message << reverted.error().cause;
  EXPECT_EQ(*reverted, 2);
  EXPECT_FALSE(TableExists("posts"));
  EXPECT_TRUE(TableExists("users"));
  auto status = Status(Catalog());
  EXPECT_EQ(status[0].state, MigrationState::kApplied);
  EXPECT_EQ(status[1].state, MigrationState::kPending);
  EXPECT_EQ(status[2].state, MigrationState::kPending);
  auto all = RunTask(migrator.Down(10));
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(*all, 1);
  EXPECT_FALSE(TableExists("users"));
  auto reapplied = RunTask(migrator.Up());
  ASSERT_TRUE(reapplied.has_value());
  EXPECT_EQ(*reapplied, 3);
}

TEST_P(MigratorTest, ChangedMigrationIsRefused) {
  ASSERT_TRUE(RunTask(Migrator(*db_, Catalog()).Up(1)).has_value());
  auto edited = Catalog();
  edited[0].up += "\nCREATE TABLE sneaky (x BIGINT);";
  auto status = Status(edited);
  EXPECT_EQ(status[0].state, MigrationState::kModified);
  Migrator migrator(*db_, edited);
  auto up = RunTask(migrator.Up());
  ASSERT_FALSE(up.has_value());
  EXPECT_EQ(up.error().code, core::ErrorCode::kConflict);
  EXPECT_NE(up.error().message.find("checksum"), std::string::npos);
  EXPECT_NE(up.error().message.find("create_users"), std::string::npos);
  EXPECT_FALSE(TableExists("posts"));  // Nothing else ran.
  auto down = RunTask(migrator.Down(1));
  ASSERT_FALSE(down.has_value());
  EXPECT_EQ(down.error().code, core::ErrorCode::kConflict);
  EXPECT_TRUE(TableExists("users"));
}

TEST_P(MigratorTest, FailingMigrationRollsBackWhole) {
  auto catalog = Catalog();
  catalog.push_back({4, "broken", "CREATE TABLE half (x BIGINT); INSERT INTO no_such_table VALUES (1);", ""});
  Migrator migrator(*db_, catalog);
  auto up = RunTask(migrator.Up());
  ASSERT_FALSE(up.has_value());
  EXPECT_NE(up.error().message.find("migration 4 (broken)"), std::string::npos);
  EXPECT_FALSE(TableExists("half"));
  auto status = Status(catalog);
  EXPECT_EQ(status[2].state, MigrationState::kApplied);  // Earlier ones stay.
  EXPECT_EQ(status[3].state, MigrationState::kPending);
}

TEST_P(MigratorTest, UnknownAndIrreversibleAreRefused) {
  auto catalog = Catalog();
  catalog.push_back({4, "irreversible", "CREATE TABLE keep (x BIGINT);", ""});
  ASSERT_TRUE(RunTask(Migrator(*db_, catalog).Up()).has_value());
  auto down = RunTask(Migrator(*db_, catalog).Down(1));
  ASSERT_FALSE(down.has_value());
  EXPECT_EQ(down.error().code, core::ErrorCode::kConflict);
  EXPECT_TRUE(TableExists("keep"));

  auto older = Catalog();  // An older build that does not know migration 4.
  auto status = Status(older);
  ASSERT_EQ(status.size(), 4u);
  EXPECT_EQ(status[3].state, MigrationState::kUnknown);
  auto older_down = RunTask(Migrator(*db_, older).Down(1));
  ASSERT_FALSE(older_down.has_value());
  EXPECT_EQ(older_down.error().code, core::ErrorCode::kConflict);
}

TEST_P(MigratorTest, DuplicateVersionsAreInvalid) {
  auto catalog = Catalog();
  catalog.push_back({2, "again", "SELECT 1;", ""});
  auto up = RunTask(Migrator(*db_, catalog).Up());
  ASSERT_FALSE(up.has_value());
  EXPECT_EQ(up.error().code, core::ErrorCode::kValidation);
}

INSTANTIATE_TEST_SUITE_P(Backends, MigratorTest, ::testing::ValuesIn(AllBackends()), BackendName);

TEST(MigrationChecksum, IsStableFnv1a64) {
  EXPECT_EQ(MigrationChecksum(""), "cbf29ce484222325");
  EXPECT_EQ(MigrationChecksum("a"), "af63dc4c8601ec8c");
  EXPECT_NE(MigrationChecksum("CREATE TABLE a (x INT);"), MigrationChecksum("CREATE TABLE a (x INT); "));
}

}  // namespace
}  // namespace basalt::store
