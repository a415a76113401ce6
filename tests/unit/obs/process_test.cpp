#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <string>

#include "obs/metrics.hpp"

namespace basalt::obs {
namespace {

double SampleValue(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(name + " ")) return std::stod(line.substr(name.size() + 1));
  }
  ADD_FAILURE() << "missing sample " << name << " in:\n" << text;
  return -1;
}

TEST(ProcessMetricsTest, ValuesArePresentAndPlausible) {
  // Burn a little CPU so cpu_seconds is visibly non-negative and the call is not optimised away.
  volatile double sink = 0;
  for (int i = 0; i < 1000000; ++i) sink = sink + i * 0.5;

  std::string out;
  RenderProcessMetrics(out, "0.1.0", "abc123");
  EXPECT_GT(SampleValue(out, "process_resident_memory_bytes"), 1024 * 1024);
  EXPECT_GE(SampleValue(out, "process_open_fds"), 3);  // stdin, stdout, stderr
  EXPECT_GE(SampleValue(out, "process_max_fds"), SampleValue(out, "process_open_fds"));
  EXPECT_GE(SampleValue(out, "process_cpu_seconds_total"), 0);

  const double now = std::chrono::duration<double>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  const double start = SampleValue(out, "process_start_time_seconds");
  EXPECT_LE(start, now + 5);  // clock-tick rounding
  EXPECT_GT(start, now - 24 * 3600);

  for (const char* type : {"# TYPE process_cpu_seconds_total counter",
                           "# TYPE process_start_time_seconds gauge",
                           "# TYPE process_resident_memory_bytes gauge",
                           "# TYPE process_open_fds gauge", "# TYPE process_max_fds gauge",
                           "# TYPE basalt_build_info gauge"}) {
    EXPECT_NE(out.find(type), std::string::npos) << type;
  }
}

TEST(ProcessMetricsTest, BuildInfoHasEscapedLabels) {
  std::string out;
  RenderProcessMetrics(out, "1.2.3", "dirty\"x");
  const auto pos = out.find("basalt_build_info{version=\"1.2.3\",commit=\"dirty\\\"x\",compiler=\"");
  ASSERT_NE(pos, std::string::npos) << out;
  const auto line_end = out.find('\n', pos);
  const std::string line = out.substr(pos, line_end - pos);
  EXPECT_TRUE(line.ends_with("\"} 1")) << line;
#if defined(__GNUC__) && !defined(__clang__)
  EXPECT_NE(line.find("compiler=\"gcc " + std::to_string(__GNUC__) + "."), std::string::npos)
      << line;
#endif
}

TEST(ProcessMetricsTest, OpenFdsTracksNewDescriptors) {
  std::string before;
  RenderProcessMetrics(before, "v", "c");
  FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  std::string after;
  RenderProcessMetrics(after, "v", "c");
  std::fclose(f);
  EXPECT_EQ(SampleValue(after, "process_open_fds"), SampleValue(before, "process_open_fds") + 1);
}

}  // namespace
}  // namespace basalt::obs
