// The password pool: argon2id PHC strings with the configured parameters, verification (also of
// the dummy hash for unknown accounts), option validation, the bounded queue, and that the caller
// resumes on its own io_context thread, not on a worker.

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "auth/passwords.hpp"

namespace basalt::auth {
namespace {

template <class T>
T Block(Task<T> task) {
  boost::asio::io_context io;
  auto f = boost::asio::co_spawn(io, std::move(task), boost::asio::use_future);
  io.run();
  return f.get();
}

PasswordOptions Minimum() { return PasswordOptions{.memory_kib = kMinArgonMemoryKib, .iterations = 2, .threads = 2}; }

TEST(Passwords, ValidatesOptionsAgainstOwaspMinimum) {
  EXPECT_TRUE(ValidatePasswordOptions(Minimum()));
  auto weak = Minimum();
  weak.memory_kib = 1024;
  weak.iterations = 1;
  weak.threads = 0;
  auto r = ValidatePasswordOptions(weak);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().fields.size(), 3u);
}

TEST(Passwords, HashesWithArgon2idAndVerifies) {
  PasswordHasher hasher(Minimum());
  auto hash = Block(hasher.Hash("correct horse battery"));
  ASSERT_TRUE(hash) << hash.error().message;
  EXPECT_TRUE(hash->starts_with("$argon2id$v=19$m=19456,t=2,p=1$")) << *hash;
  EXPECT_FALSE(hasher.NeedsRehash(*hash));
  EXPECT_TRUE(*Block(hasher.Verify(*hash, "correct horse battery")));
  EXPECT_FALSE(*Block(hasher.Verify(*hash, "correct horse batterY")));
  EXPECT_FALSE(*Block(hasher.Verify(*hash, "")));
  // Two hashes of one password differ (random salt).
  EXPECT_NE(*hash, *Block(hasher.Hash("correct horse battery")));
  // Unknown account: the dummy hash is checked and the answer is always false.
  EXPECT_FALSE(*Block(hasher.Verify("", "correct horse battery")));
  // A garbage stored hash never verifies.
  EXPECT_FALSE(*Block(hasher.Verify("$argon2id$garbage", "x")));
  PasswordHasher stronger({.memory_kib = kMinArgonMemoryKib, .iterations = 3, .threads = 1});
  EXPECT_TRUE(stronger.NeedsRehash(*hash));
  // Stronger than the current parameters: no rehash (lowering the settings downgrades nothing).
  auto strong = Block(stronger.Hash("correct horse battery"));
  ASSERT_TRUE(strong);
  EXPECT_FALSE(hasher.NeedsRehash(*strong));
  EXPECT_FALSE(stronger.NeedsRehash(*strong));
  PasswordHasher more_memory({.memory_kib = kMinArgonMemoryKib * 2, .iterations = 2, .threads = 1});
  EXPECT_TRUE(more_memory.NeedsRehash(*strong));  // t is higher but m is lower than wanted
  EXPECT_TRUE(hasher.NeedsRehash("$argon2i$v=19$m=65536,t=4,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"));
}

Task<void> HashAndRecordThread(PasswordHasher& hasher, std::thread::id& after, bool& ok) {
  auto r = co_await hasher.Hash("password123");
  ok = r.has_value();
  after = std::this_thread::get_id();
}

TEST(Passwords, ResumesTheCallerOnItsOwnThread) {
  PasswordHasher hasher(Minimum());
  boost::asio::io_context io;
  std::thread::id after;
  bool ok = false;
  boost::asio::co_spawn(io, HashAndRecordThread(hasher, after, ok), boost::asio::detached);
  io.run();  // returns only when the handler came back (the pool kept the io_context's work alive)
  EXPECT_TRUE(ok);
  EXPECT_EQ(after, std::this_thread::get_id());
}

Task<void> HashInto(PasswordHasher& hasher, std::atomic<int>& ok, std::atomic<int>& busy) {
  auto r = co_await hasher.Hash("password123");
  if (r) ++ok;
  else if (r.error().code == core::ErrorCode::kUnavailable) ++busy;
}

TEST(Passwords, QueueIsBounded) {
  PasswordHasher hasher({.memory_kib = kMinArgonMemoryKib, .iterations = 2, .threads = 1, .max_queue = 2});
  boost::asio::io_context io;
  std::atomic<int> ok{0}, busy{0};
  for (int i = 0; i < 8; ++i) boost::asio::co_spawn(io, HashInto(hasher, ok, busy), boost::asio::detached);
  io.run();
  EXPECT_EQ(ok + busy, 8);
  EXPECT_GE(ok.load(), 2);
  EXPECT_GE(busy.load(), 1);  // 8 submitted at once to 1 worker + 2 queue slots
}

}  // namespace
}  // namespace basalt::auth
