#include "obs/log.hpp"

#include <array>
#include <charconv>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include <fmt/format.h>
#include <spdlog/async.h>
#include <spdlog/async_logger.h>
#include <spdlog/details/thread_pool.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/sink.h>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <thread>
#include <vector>

#include "core/strings.hpp"
#include "core/swar.hpp"
#include "core/time.hpp"

namespace basalt::obs {
namespace {

constexpr std::size_t kQueueSize = 8192;

// Wraps the real sink so that FlushLogs() can wait for the async worker. spdlog 1.10's
// async_logger::flush() only enqueues a flush message and returns; the worker later calls
// flush() here, in queue order, so counting completed flushes tells a waiter that every line
// enqueued before its flush request has been written.
class FlushNotifySink final : public spdlog::sinks::sink {
 public:
  explicit FlushNotifySink(std::shared_ptr<spdlog::sinks::sink> inner) : inner_(std::move(inner)) {}

  void log(const spdlog::details::log_msg& msg) override { inner_->log(msg); }

  void flush() override {
    inner_->flush();
    // Notify under the lock: a woken waiter may drop the last reference to this sink, so the
    // condition variable must not be touched after the mutex is released.
    std::lock_guard lock(mutex_);
    ++completed_;
    cv_.notify_all();
  }

  void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }

  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
    inner_->set_formatter(std::move(formatter));
  }

  /// Posts a flush through `logger` and returns its ticket. Every flush must go through here
  /// (never logger.flush() or spdlog's flush_on), or the counting below would be off.
  std::uint64_t PostFlush(spdlog::logger& logger) {
    // Ticket order must equal queue order, so ticketing and posting happen under one lock.
    std::lock_guard lock(request_mutex_);
    const std::uint64_t ticket = ++requested_;
    logger.flush();
    return ticket;
  }

  /// Posts a flush through `logger` and blocks until the worker has performed it.
  void FlushAndWait(spdlog::logger& logger) {
    const std::uint64_t ticket = PostFlush(logger);
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return completed_ >= ticket; });
  }

 private:
  std::shared_ptr<spdlog::sinks::sink> inner_;
  std::mutex request_mutex_;
  std::uint64_t requested_ = 0;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::uint64_t completed_ = 0;
};

// Writes each block of lines, then an end of line, to standard output or a file: no flush after
// every line (a write(2) per request at access-log rates) and no spdlog formatter (the pattern
// would be "%v", and formatting copied every byte once more). Lines collect in stdio's buffer; the
// flusher thread, warnings and FlushLogs() flush it. Only the single async worker calls it, so it
// needs no mutex of its own.
class LineSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  explicit LineSink(const std::string& path) {
    if (path.empty()) return;
    file_ = std::fopen(path.c_str(), "ab");
    if (file_ == nullptr) throw spdlog::spdlog_ex("cannot open log file " + path, errno);
    owned_ = true;
  }
  ~LineSink() override {
    if (owned_) std::fclose(file_);
  }
  LineSink(const LineSink&) = delete;
  LineSink& operator=(const LineSink&) = delete;

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::fwrite(msg.payload.data(), 1, msg.payload.size(), file_);
    std::fputc('\n', file_);
  }
  void flush_() override { std::fflush(file_); }

 private:
  std::FILE* file_ = stdout;
  bool owned_ = false;
};

struct LoggerState {
  std::shared_ptr<spdlog::async_logger> logger;
  std::shared_ptr<FlushNotifySink> sink;
  bool json = true;
};

// Process-wide logging state (leaked on purpose, see G()).
struct Globals {
  std::shared_ptr<spdlog::details::thread_pool> pool;
  // A plain pointer: every log line reads it, and std::atomic<shared_ptr> would make both I/O
  // threads bump one shared reference count per line. States are never freed (re-init is rare:
  // tests), so a reader can never see a dangling one.
  std::atomic<LoggerState*> state{nullptr};
  std::vector<std::unique_ptr<LoggerState>> all_states;
  std::thread flusher;
  std::mutex buffers_mutex;
  std::vector<std::shared_ptr<struct ThreadBuffer>> buffers;
  std::atomic<int> level{static_cast<int>(LogLevel::kInfo)};
  std::mutex init_mutex;
};

// Never destroyed: the flusher thread and late log calls during exit must not see a dead object.
// main() calls FlushLogs() before it returns, which drains everything.
Globals& G() {
  static Globals* globals = new Globals;
  return *globals;
}

// Lines are collected per thread and handed to spdlog in blocks: one queue operation (and one
// mutex shared across cores) per ~16 KiB instead of per line. The per-buffer mutex is taken only
// by its own thread and, every 250 ms, by the flusher, so it is uncontended in practice.
constexpr std::size_t kBlockBytes = 16 * 1024;

struct ThreadBuffer {
  std::mutex mutex;
  std::string data;  // lines separated by '\n'; spdlog adds the final end-of-line
};

ThreadBuffer& LocalBuffer() {
  thread_local std::shared_ptr<ThreadBuffer> buffer = [] {
    auto b = std::make_shared<ThreadBuffer>();
    Globals& g = G();
    std::lock_guard lock(g.buffers_mutex);
    g.buffers.push_back(b);
    return b;
  }();
  return *buffer;
}

void Submit(LoggerState& state, const std::string& block, spdlog::level::level_enum level) {
  state.logger->log(level, spdlog::string_view_t(block.data(), block.size()));
}

// Hands every thread's pending lines to `state`'s logger.
void DrainBuffers(LoggerState& state) {
  Globals& g = G();
  std::vector<std::shared_ptr<ThreadBuffer>> buffers;
  {
    std::lock_guard lock(g.buffers_mutex);
    // Forget buffers of threads that have exited and have nothing left.
    std::erase_if(g.buffers, [](const std::shared_ptr<ThreadBuffer>& b) {
      std::lock_guard inner(b->mutex);
      return b.use_count() == 1 && b->data.empty();
    });
    buffers = g.buffers;
  }
  std::string block;
  for (const auto& b : buffers) {
    {
      std::lock_guard lock(b->mutex);
      block.swap(b->data);
    }
    if (!block.empty()) Submit(state, block, spdlog::level::info);
    block.clear();
  }
}

std::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace: return "trace";
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
    case LogLevel::kOff: return "off";
  }
  return "info";
}

// Fixed width so text columns line up.
std::string_view LevelTag(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace: return "TRACE";
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO ";
    case LogLevel::kWarn: return "WARN ";
    case LogLevel::kError: return "ERROR";
    case LogLevel::kOff: return "OFF  ";
  }
  return "INFO ";
}

spdlog::level::level_enum ToSpdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace: return spdlog::level::trace;
    case LogLevel::kDebug: return spdlog::level::debug;
    case LogLevel::kInfo: return spdlog::level::info;
    case LogLevel::kWarn: return spdlog::level::warn;
    case LogLevel::kError: return spdlog::level::err;
    case LogLevel::kOff: return spdlog::level::off;
  }
  return spdlog::level::info;
}

// Length of the valid UTF-8 sequence starting at s[i] (RFC 3629: no overlongs, no surrogates,
// nothing above U+10FFFF), or 0 when the byte does not start one.
std::size_t Utf8SequenceLength(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  std::size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  const auto b1 = static_cast<unsigned char>(s[i + 1]);
  if (b1 < lo || b1 > hi) return 0;
  for (std::size_t k = 2; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < 0x80 || b > 0xBF) return 0;
  }
  return len;
}

// True when `word` holds a byte that a JSON string or a text log value cannot hold as it is: a
// control character, DEL, a quote, a backslash or a non-ASCII byte (escaped or validated one by one).
bool NeedsLook(std::uint64_t word) {
  return core::swar::HasLess(word, 0x20) || core::swar::HasHigh(word) || core::swar::HasByte(word, '"') ||
         core::swar::HasByte(word, '\\') || core::swar::HasByte(word, 0x7F);
}

// Writes `s` JSON-escaped (without surrounding quotes) at `p`, which has room for 6 bytes per
// byte of `s` (the longest escape, \u00XX or \ufffd, is 6 bytes for one input byte); returns the
// end. With `escape_quote` false (text-format messages), quotes and backslashes pass through but
// control characters are still escaped so a line can never be split or forged.
char* WriteEscaped(char* p, std::string_view s, bool escape_quote) {
  static constexpr char kHex[] = "0123456789abcdef";
  static constexpr auto kPlain = [] {
    std::array<bool, 256> plain{};
    for (int ch = 0x20; ch < 0x7F; ++ch) plain[ch] = ch != '"' && ch != '\\';
    return plain;
  }();
  std::size_t i = 0;
  while (i < s.size()) {
    // Copy the run of printable ASCII that needs no escaping in one go: whole words first (no
    // control character, quote, backslash, DEL or non-ASCII byte), then byte by byte.
    std::size_t run = i;
    while (run + 8 <= s.size() && !NeedsLook(core::swar::Load(s.data() + run))) run += 8;
    while (run < s.size() && kPlain[static_cast<unsigned char>(s[run])]) ++run;
    if (run > i) {
      std::memcpy(p, s.data() + i, run - i);
      p += run - i;
      i = run;
      continue;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      char escape = 0;
      switch (c) {
        case '"':
        case '\\':
          if (escape_quote) *p++ = '\\';
          *p++ = static_cast<char>(c);
          break;
        case '\n': escape = 'n'; break;
        case '\r': escape = 'r'; break;
        case '\t': escape = 't'; break;
        case '\b': escape = 'b'; break;
        case '\f': escape = 'f'; break;
        default:  // other control characters and DEL
          std::memcpy(p, "\\u00", 4);
          p[4] = kHex[c >> 4];
          p[5] = kHex[c & 0xF];
          p += 6;
      }
      if (escape != 0) {
        *p++ = '\\';
        *p++ = escape;
      }
      ++i;
      continue;
    }
    const std::size_t len = Utf8SequenceLength(s, i);
    if (len == 0) {
      std::memcpy(p, "\\ufffd", 6);  // one replacement per invalid byte
      p += 6;
      ++i;
    } else {
      std::memcpy(p, s.data() + i, len);
      p += len;
      i += len;
    }
  }
  return p;
}

// Appends `s` escaped as WriteEscaped does.
void AppendEscaped(std::string& out, std::string_view s, bool escape_quote = true) {
  const std::size_t old = out.size();
  out.resize_and_overwrite(old + 6 * s.size(),
                           [&](char* p, std::size_t) { return WriteEscaped(p + old, s, escape_quote) - p; });
}

// Text lines only (JSON lines write null for non-finite values).
void AppendTextDouble(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += std::isnan(v) ? "NaN" : (v > 0 ? "+Inf" : "-Inf");
    return;
  }
  fmt::format_to(std::back_inserter(out), "{}", v);
}

// Appends one JSON line to `out`. The line is written through a pointer into space reserved for
// its longest possible form (every string byte escaped), then trimmed: no per-piece append calls,
// which dominated the cost of the access log.
void AppendJsonLine(std::string& out, std::string_view ts, LogLevel level, std::string_view msg,
                    std::initializer_list<LogField> fields) {
  constexpr std::size_t kNumber = 32;  // longest int64 or shortest-round-trip double, or "null"
  std::size_t bound = 48 + ts.size() + 6 * msg.size();
  for (const LogField& f : fields) {
    bound += 6 + 6 * f.key.size();
    if (const auto* sv = std::get_if<std::string_view>(&f.value)) {
      bound += 2 + 6 * sv->size();
    } else {
      bound += kNumber;
    }
  }
  const std::size_t old = out.size();
  out.resize_and_overwrite(old + bound, [&](char* base, std::size_t) {
    char* p = base + old;
    p = core::CopyTo(p, "{\"ts\":\"");
    p = core::CopyTo(p, ts);
    p = core::CopyTo(p, "\",\"level\":\"");
    p = core::CopyTo(p, LevelName(level));
    p = core::CopyTo(p, "\",\"msg\":\"");
    p = WriteEscaped(p, msg, true);
    *p++ = '"';
    for (const LogField& f : fields) {
      p = core::CopyTo(p, ",\"");
      p = WriteEscaped(p, f.key, true);
      p = core::CopyTo(p, "\":");
      if (const auto* sv = std::get_if<std::string_view>(&f.value)) {
        *p++ = '"';
        p = WriteEscaped(p, *sv, true);
        *p++ = '"';
      } else if (const auto* i = std::get_if<std::int64_t>(&f.value)) {
        p = std::to_chars(p, p + kNumber, *i).ptr;
      } else if (const auto* d = std::get_if<double>(&f.value)) {
        p = std::isfinite(*d) ? fmt::format_to_n(p, kNumber, "{}", *d).out : core::CopyTo(p, "null");
      } else {
        p = core::CopyTo(p, std::get<bool>(f.value) ? "true" : "false");
      }
    }
    *p++ = '}';
    return p - base;
  });
}

bool NeedsQuotes(std::string_view s) {
  if (s.empty()) return true;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == '"' || c == '=' || c == '\\' || c == 0x7F || c >= 0x80) return true;
  }
  return false;
}

void AppendTextLine(std::string& out, std::string_view ts, LogLevel level, std::string_view msg,
                    std::initializer_list<LogField> fields) {
  out += ts;
  out.push_back(' ');
  out += LevelTag(level);
  out.push_back(' ');
  AppendEscaped(out, msg, /*escape_quote=*/false);
  for (const LogField& f : fields) {
    out.push_back(' ');
    AppendEscaped(out, f.key, /*escape_quote=*/false);
    out.push_back('=');
    if (const auto* s = std::get_if<std::string_view>(&f.value)) {
      if (NeedsQuotes(*s)) {
        out.push_back('"');
        AppendEscaped(out, *s);
        out.push_back('"');
      } else {
        out += *s;
      }
    } else if (const auto* i = std::get_if<std::int64_t>(&f.value)) {
      fmt::format_to(std::back_inserter(out), "{}", *i);
    } else if (const auto* d = std::get_if<double>(&f.value)) {
      AppendTextDouble(out, *d);
    } else {
      out += std::get<bool>(f.value) ? "true" : "false";
    }
  }
}

}  // namespace

bool ParseLogLevel(std::string_view text, LogLevel& out) {
  static constexpr std::pair<std::string_view, LogLevel> kNames[] = {
      {"trace", LogLevel::kTrace}, {"debug", LogLevel::kDebug}, {"info", LogLevel::kInfo},
      {"warn", LogLevel::kWarn},   {"warning", LogLevel::kWarn}, {"error", LogLevel::kError},
      {"off", LogLevel::kOff},
  };
  for (const auto& [name, level] : kNames) {
    if (text == name) {
      out = level;
      return true;
    }
  }
  return false;
}

namespace {

// RFC 3339 with milliseconds; the part up to the second is formatted once a second per thread.
std::string_view Timestamp() {
  thread_local std::time_t cached_second = -1;
  thread_local char text[32];
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t second = static_cast<std::time_t>(ms / 1000);
  if (second != cached_second) {
    cached_second = second;
    const std::string full = core::FormatRfc3339(now);  // "....:SS.mmmZ"
    std::memcpy(text, full.data(), full.size());
  }
  const int milli = static_cast<int>(ms % 1000);
  text[20] = static_cast<char>('0' + milli / 100);
  text[21] = static_cast<char>('0' + milli / 10 % 10);
  text[22] = static_cast<char>('0' + milli % 10);
  return std::string_view(text, 24);
}

}  // namespace

void InitLogging(const LogOptions& options) {
  Globals& g = G();
  std::lock_guard lock(g.init_mutex);
  if (!g.pool) {
    // One worker keeps lines in order; a full queue blocks the producer rather than dropping.
    g.pool = std::make_shared<spdlog::details::thread_pool>(kQueueSize, 1);
  }
  auto state = std::make_unique<LoggerState>();
  state->sink = std::make_shared<FlushNotifySink>(std::make_shared<LineSink>(options.file));
  state->logger = std::make_shared<spdlog::async_logger>("basalt", state->sink, g.pool,
                                                          spdlog::async_overflow_policy::block);
  state->logger->set_level(spdlog::level::trace);  // filtering is ours (g.level)
  state->json = options.json;

  // Lines logged before this call belong to the old destination.
  if (LoggerState* previous = g.state.load(std::memory_order_acquire)) DrainBuffers(*previous);
  LoggerState* old = g.state.exchange(state.get());
  g.all_states.push_back(std::move(state));
  if (!g.flusher.joinable()) {
    // Buffered lines reach the output within 250 ms even when the server goes quiet.
    g.flusher = std::thread([] {
      for (;;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
        std::lock_guard lock(G().init_mutex);
        if (LoggerState* current = G().state.load(std::memory_order_acquire)) {
          DrainBuffers(*current);
          current->sink->PostFlush(*current->logger);
        }
      }
    });
    g.flusher.detach();
  }
  g.level.store(static_cast<int>(options.level), std::memory_order_relaxed);
  // Lines already queued for the old logger still reach the old file (queued messages keep the
  // logger alive); wait for them so a caller switching files sees a complete old file.
  if (old) old->sink->FlushAndWait(*old->logger);
}

void SetLogLevel(LogLevel level) { G().level.store(static_cast<int>(level), std::memory_order_relaxed); }

bool LogEnabled(LogLevel level) {
  return level != LogLevel::kOff &&
         static_cast<int>(level) >= G().level.load(std::memory_order_relaxed);
}

void Log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields) {
  if (!LogEnabled(level)) return;
  LoggerState* state = G().state.load(std::memory_order_acquire);
  if (!state) return;
  const std::string_view ts = Timestamp();
  ThreadBuffer& buffer = LocalBuffer();
  thread_local std::string block;
  {
    // Formatted straight into this thread's buffer (its mutex is uncontended, see ThreadBuffer).
    std::lock_guard lock(buffer.mutex);
    if (!buffer.data.empty()) buffer.data.push_back('\n');
    if (state->json) {
      AppendJsonLine(buffer.data, ts, level, msg, fields);
    } else {
      AppendTextLine(buffer.data, ts, level, msg, fields);
    }
    // Warnings and errors go out at once (with everything before them from this thread).
    if (buffer.data.size() >= kBlockBytes || level >= LogLevel::kWarn) block.swap(buffer.data);
  }
  if (!block.empty()) {
    Submit(*state, block, ToSpdlog(level));
    block.clear();
    if (level >= LogLevel::kWarn) state->sink->PostFlush(*state->logger);
  }
}

void FlushLogs() {
  std::lock_guard lock(G().init_mutex);
  LoggerState* state = G().state.load(std::memory_order_acquire);
  if (!state) return;
  DrainBuffers(*state);
  state->sink->FlushAndWait(*state->logger);
}

}  // namespace basalt::obs
