#include "obs/log.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace basalt::obs {
namespace {

namespace json = boost::json;

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() /
            ("basalt_log_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".log");
    std::filesystem::remove(path_);
  }
  void TearDown() override {
    // Point the logger away from our file before removing it.
    InitLogging(LogOptions{.level = LogLevel::kInfo, .json = true, .file = ""});
    std::filesystem::remove(path_);
  }

  void Init(LogLevel level, bool as_json) {
    InitLogging(LogOptions{.level = level, .json = as_json, .file = path_.string()});
  }

  std::vector<std::string> ReadLines() {
    FlushLogs();
    std::ifstream in(path_, std::ios::binary);
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
    return lines;
  }

  static json::object Parse(const std::string& line) {
    boost::system::error_code ec;
    json::value v = json::parse(line, ec);
    EXPECT_FALSE(ec) << ec.message() << " in: " << line;
    if (ec || !v.is_object()) return {};
    return v.as_object();
  }

  std::filesystem::path path_;
};

TEST_F(LogTest, JsonLineHasEveryFieldType) {
  Init(LogLevel::kInfo, true);
  Log(LogLevel::kInfo, "request done",
      {{"method", std::string_view("GET")},
       {"status", std::int64_t{200}},
       {"big", std::numeric_limits<std::int64_t>::min()},
       {"seconds", 0.125},
       {"tiny", 1e-300},
       {"ok", true},
       {"cached", false}});
  const auto lines = ReadLines();
  ASSERT_EQ(lines.size(), 1u);
  const json::object o = Parse(lines[0]);
  // Fixed prefix order: ts, level, msg.
  EXPECT_TRUE(lines[0].starts_with("{\"ts\":\"")) << lines[0];
  const std::string ts(o.at("ts").as_string());
  ASSERT_EQ(ts.size(), 24u) << ts;  // 2026-11-28T04:10:05.123Z
  EXPECT_EQ(ts[10], 'T');
  EXPECT_EQ(ts[19], '.');
  EXPECT_EQ(ts.back(), 'Z');
  EXPECT_EQ(o.at("level").as_string(), "info");
  EXPECT_EQ(o.at("msg").as_string(), "request done");
  EXPECT_EQ(o.at("method").as_string(), "GET");
  EXPECT_EQ(o.at("status").as_int64(), 200);
  EXPECT_EQ(o.at("big").as_int64(), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(o.at("seconds").to_number<double>(), 0.125);
  EXPECT_EQ(o.at("tiny").to_number<double>(), 1e-300);
  EXPECT_EQ(o.at("ok").as_bool(), true);
  EXPECT_EQ(o.at("cached").as_bool(), false);
}

TEST_F(LogTest, NonFiniteDoublesBecomeNull) {
  Init(LogLevel::kInfo, true);
  Log(LogLevel::kWarn, "nf",
      {{"nan", std::nan("")},
       {"inf", std::numeric_limits<double>::infinity()},
       {"ninf", -std::numeric_limits<double>::infinity()},
       {"whole", 3.0}});
  const auto lines = ReadLines();
  ASSERT_EQ(lines.size(), 1u);
  const json::object o = Parse(lines[0]);
  EXPECT_EQ(o.at("level").as_string(), "warn");
  EXPECT_TRUE(o.at("nan").is_null());
  EXPECT_TRUE(o.at("inf").is_null());
  EXPECT_TRUE(o.at("ninf").is_null());
  EXPECT_EQ(o.at("whole").to_number<double>(), 3.0);
}

TEST_F(LogTest, NastyStringsAreEscapedAndRoundTrip) {
  Init(LogLevel::kInfo, true);
  const std::string control = std::string("nul\0bell\a esc\x1b del\x7f", 18);
  const std::string nasty = "quote\" backslash\\ slash/ nl\n cr\r tab\t }{,:";
  const std::string utf8 = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";  // café € 😀
  Log(LogLevel::kError, "line1\nline2 \"q\"",
      {{"control", std::string_view(control)},
       {"nasty", std::string_view(nasty)},
       {"utf8", std::string_view(utf8)},
       {"key \"with\" quote", std::string_view("v")}});
  // Invalid UTF-8: lone continuation, truncated sequence, overlong '/', UTF-16 surrogate, 0xFF.
  Log(LogLevel::kError, "bad",
      {{"bad", std::string_view("a\x80"
                                "b\xe2\x82"
                                "c\xc0\xaf"
                                "d\xed\xa0\x80"
                                "e\xff")}});
  const auto lines = ReadLines();
  ASSERT_EQ(lines.size(), 2u);  // embedded newlines did not split lines
  const json::object o = Parse(lines[0]);
  EXPECT_EQ(o.at("msg").as_string(), "line1\nline2 \"q\"");
  EXPECT_EQ(o.at("control").as_string(), json::string_view(control));
  EXPECT_EQ(o.at("nasty").as_string(), nasty);
  EXPECT_EQ(o.at("utf8").as_string(), utf8);
  EXPECT_EQ(o.at("key \"with\" quote").as_string(), "v");
  EXPECT_NE(lines[0].find("\\u0000"), std::string::npos);
  EXPECT_NE(lines[0].find("\\u001b"), std::string::npos);
  EXPECT_NE(lines[0].find(utf8), std::string::npos);  // valid UTF-8 passes through raw

  const json::object b = Parse(lines[1]);
  const std::string r = "\xef\xbf\xbd";  // U+FFFD
  EXPECT_EQ(b.at("bad").as_string(),
            "a" + r + "b" + r + r + "c" + r + r + "d" + r + r + r + "e" + r);
}

TEST_F(LogTest, LevelFiltering) {
  Init(LogLevel::kWarn, true);
  EXPECT_FALSE(LogEnabled(LogLevel::kTrace));
  EXPECT_FALSE(LogEnabled(LogLevel::kInfo));
  EXPECT_TRUE(LogEnabled(LogLevel::kWarn));
  EXPECT_TRUE(LogEnabled(LogLevel::kError));
  EXPECT_FALSE(LogEnabled(LogLevel::kOff));
  Log(LogLevel::kDebug, "dropped-debug");
  Log(LogLevel::kInfo, "dropped-info");
  Log(LogLevel::kWarn, "kept-warn");
  Log(LogLevel::kError, "kept-error");
  const auto lines = ReadLines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(Parse(lines[0]).at("msg").as_string(), "kept-warn");
  EXPECT_EQ(Parse(lines[1]).at("level").as_string(), "error");

  Init(LogLevel::kOff, true);
  EXPECT_FALSE(LogEnabled(LogLevel::kError));
  Log(LogLevel::kError, "dropped-off");
  EXPECT_EQ(ReadLines().size(), 2u);

  Init(LogLevel::kTrace, true);
  EXPECT_TRUE(LogEnabled(LogLevel::kTrace));
  Log(LogLevel::kTrace, "kept-trace");
  const auto more = ReadLines();
  ASSERT_EQ(more.size(), 3u);  // re-init appends to the same file
  EXPECT_EQ(Parse(more[2]).at("level").as_string(), "trace");
}

TEST_F(LogTest, TextFormatIsReadable) {
  Init(LogLevel::kInfo, false);
  Log(LogLevel::kInfo, "server started",
      {{"port", std::int64_t{8090}},
       {"addr", std::string_view("0.0.0.0")},
       {"name", std::string_view("my app")},
       {"empty", std::string_view("")},
       {"ratio", 0.5},
       {"tls", false}});
  Log(LogLevel::kError, "boom\nforged line");
  const auto lines = ReadLines();
  ASSERT_EQ(lines.size(), 2u);
  ASSERT_GT(lines[0].size(), 25u);
  EXPECT_EQ(lines[0][23], 'Z');
  EXPECT_EQ(lines[0].substr(24),
            " INFO  server started port=8090 addr=0.0.0.0 name=\"my app\" empty=\"\" ratio=0.5 "
            "tls=false");
  EXPECT_EQ(lines[1].substr(24), " ERROR boom\\nforged line");
}

TEST_F(LogTest, ReinitSwitchesFilesWithoutLosingLines) {
  const std::filesystem::path other = path_.string() + ".2";
  std::filesystem::remove(other);
  Init(LogLevel::kInfo, true);
  for (int i = 0; i < 100; ++i) Log(LogLevel::kInfo, "first", {{"i", std::int64_t{i}}});
  InitLogging(LogOptions{.level = LogLevel::kInfo, .json = true, .file = other.string()});
  Log(LogLevel::kInfo, "second");
  FlushLogs();
  EXPECT_EQ(ReadLines().size(), 100u);
  std::ifstream in(other);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    EXPECT_EQ(Parse(line).at("msg").as_string(), "second");
  }
  EXPECT_EQ(n, 1);
  InitLogging(LogOptions{});
  std::filesystem::remove(other);
}

TEST_F(LogTest, ConcurrentWritersProduceWholeLines) {
  Init(LogLevel::kInfo, true);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5000;  // well above the 8192-entry queue in total: exercises blocking
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < kPerThread; ++i) {
        Log(LogLevel::kInfo, "concurrent", {{"t", std::int64_t{t}}, {"i", std::int64_t{i}}});
      }
    });
  }
  for (auto& th : threads) th.join();
  const auto lines = ReadLines();
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kThreads * kPerThread));
  std::vector<std::int64_t> next(kThreads, 0);
  for (const auto& line : lines) {
    const json::object o = Parse(line);
    const auto t = o.at("t").as_int64();
    ASSERT_GE(t, 0);
    ASSERT_LT(t, kThreads);
    EXPECT_EQ(o.at("i").as_int64(), next[t]++);  // per-thread order preserved
  }
}

TEST(ParseLogLevelTest, KnownAndUnknown) {
  LogLevel level = LogLevel::kInfo;
  EXPECT_TRUE(ParseLogLevel("debug", level));
  EXPECT_EQ(level, LogLevel::kDebug);
  EXPECT_TRUE(ParseLogLevel("off", level));
  EXPECT_EQ(level, LogLevel::kOff);
  EXPECT_TRUE(ParseLogLevel("trace", level));
  EXPECT_EQ(level, LogLevel::kTrace);
  EXPECT_FALSE(ParseLogLevel("verbose", level));
  EXPECT_EQ(level, LogLevel::kTrace);  // untouched on failure
  EXPECT_FALSE(ParseLogLevel("", level));
}

}  // namespace
}  // namespace basalt::obs
