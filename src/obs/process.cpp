#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "obs/metrics.hpp"

namespace basalt::obs {
namespace {

#if defined(__clang__)
#define BASALT_COMPILER_NAME "clang"
#define BASALT_COMPILER_VERSION __clang_major__, __clang_minor__, __clang_patchlevel__
#elif defined(__GNUC__)
#define BASALT_COMPILER_NAME "gcc"
#define BASALT_COMPILER_VERSION __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__
#else
#define BASALT_COMPILER_NAME "unknown"
#define BASALT_COMPILER_VERSION 0, 0, 0
#endif

std::optional<std::string> ReadFile(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct StatTimes {
  double cpu_seconds = 0;
  std::uint64_t start_ticks = 0;  // since boot, in clock ticks
};

// /proc/self/stat: "pid (comm) state ppid ...". comm may hold spaces or ')', so fields are
// counted after the last ')'. Field 3 (state) is token 0; utime=14, stime=15, starttime=22.
std::optional<StatTimes> ReadSelfStat(long ticks_per_second) {
  const auto text = ReadFile("/proc/self/stat");
  if (!text) return std::nullopt;
  const auto close = text->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream in(text->substr(close + 1));
  std::vector<std::string> tokens{std::istream_iterator<std::string>(in),
                                  std::istream_iterator<std::string>()};
  if (tokens.size() < 20) return std::nullopt;
  StatTimes t;
  const double utime = std::strtod(tokens[14 - 3].c_str(), nullptr);
  const double stime = std::strtod(tokens[15 - 3].c_str(), nullptr);
  t.cpu_seconds = (utime + stime) / static_cast<double>(ticks_per_second);
  t.start_ticks = std::strtoull(tokens[22 - 3].c_str(), nullptr, 10);
  return t;
}

std::optional<std::uint64_t> ReadBootTime() {
  std::ifstream in("/proc/stat");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("btime ")) return std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return std::nullopt;
}

std::optional<std::uint64_t> ReadStatusKb(std::string_view field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(field) && line.size() > field.size() && line[field.size()] == ':') {
      return std::strtoull(line.c_str() + field.size() + 1, nullptr, 10) * 1024;  // "VmRSS:   1234 kB"
    }
  }
  return std::nullopt;
}

std::optional<std::uint64_t> CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  const int own_fd = dirfd(dir);
  std::uint64_t count = 0;
  while (const dirent* entry = readdir(dir)) {
    const std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    if (name == std::to_string(own_fd)) continue;  // the descriptor we are reading with
    ++count;
  }
  closedir(dir);
  return count;
}

void AppendFamily(std::string& out, std::string_view name, std::string_view type,
                  std::string_view help, double value) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name,
                 type, name, value);
}

}  // namespace

void RenderProcessMetrics(std::string& out, std::string_view version, std::string_view commit) {
  const long ticks = sysconf(_SC_CLK_TCK);
  const auto stat = ticks > 0 ? ReadSelfStat(ticks) : std::nullopt;
  if (stat) {
    AppendFamily(out, "process_cpu_seconds_total", "counter",
                 "Total user and system CPU time spent in seconds.", stat->cpu_seconds);
    if (const auto btime = ReadBootTime()) {
      AppendFamily(out, "process_start_time_seconds", "gauge",
                   "Start time of the process since unix epoch in seconds.",
                   static_cast<double>(*btime) +
                       static_cast<double>(stat->start_ticks) / static_cast<double>(ticks));
    }
  }
  if (const auto rss = ReadStatusKb("VmRSS")) {
    AppendFamily(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                 static_cast<double>(*rss));
  }
  if (const auto vsz = ReadStatusKb("VmSize")) {
    AppendFamily(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
                 static_cast<double>(*vsz));
  }
  if (const auto fds = CountOpenFds()) {
    AppendFamily(out, "process_open_fds", "gauge", "Number of open file descriptors.",
                 static_cast<double>(*fds));
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    // RLIM_INFINITY is reported as its raw value, as the Go client does.
    AppendFamily(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
                 static_cast<double>(limit.rlim_cur));
  }
  fmt::format_to(std::back_inserter(out),
                 "# HELP basalt_build_info Build information; the value is always 1.\n"
                 "# TYPE basalt_build_info gauge\n"
                 "basalt_build_info{{version=\"{}\",commit=\"{}\",compiler=\"{}\"}} 1\n",
                 EscapeLabelValue(version), EscapeLabelValue(commit),
                 EscapeLabelValue(fmt::format("{} {}.{}.{}", BASALT_COMPILER_NAME,
                                              BASALT_COMPILER_VERSION)));
}

}  // namespace basalt::obs
