#include "core/swar.hpp"

#include <string>

#include <gtest/gtest.h>

namespace basalt::core::swar {
namespace {

std::uint64_t Word(std::string text) {
  text.resize(8, 'a');
  return Load(text.data());
}

// Every byte value at every position, against the plain per-byte answer: the word tests must
// never miss a byte (a miss would let a CR into a header or a quote into a log line) and never
// report one that is not there.
TEST(Swar, WordTestsAgreeWithTheByteTestsForEveryValueAndPosition) {
  for (int pos = 0; pos < 8; ++pos) {
    for (int value = 0; value < 256; ++value) {
      std::string text(8, 'a');
      text[pos] = static_cast<char>(value);
      const std::uint64_t w = Word(text);
      EXPECT_EQ(HasZero(w), value == 0) << pos << " " << value;
      EXPECT_EQ(HasByte(w, '"'), value == '"') << pos << " " << value;
      EXPECT_EQ(HasByte(w, '\r'), value == '\r') << pos << " " << value;
      EXPECT_EQ(HasLess(w, 0x20), value < 0x20) << pos << " " << value;
      EXPECT_EQ(HasLess(w, 0x0E), value < 0x0E) << pos << " " << value;
      EXPECT_EQ(HasHigh(w), value >= 0x80) << pos << " " << value;
    }
  }
}

TEST(Swar, TwoInterestingBytesInOneWordAreStillFound) {
  // A borrow from a lower byte must not hide (or invent) a match in a higher one.
  EXPECT_TRUE(HasZero(Word(std::string("\x00\x01", 2))));
  EXPECT_TRUE(HasByte(Word("\"\""), '"'));
  EXPECT_FALSE(HasByte(Word("!#!#!#!#"), '"'));
  EXPECT_TRUE(HasLess(Word(std::string("\x00\x1f", 2)), 0x20));
  EXPECT_FALSE(HasLess(Word("        "), 0x20));
  EXPECT_FALSE(HasHigh(Word("\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f")));
}

}  // namespace
}  // namespace basalt::core::swar
