#pragma once
/// The response a handler returns. Plain data; the server serialises it.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/task.hpp"

namespace basalt::http {

/// The socket side of a streaming response (Server-Sent Events). The server implements it; a
/// producer coroutine writes chunks through it on the connection's own thread.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  /// Writes one chunk (under the body timeout). False when the peer is gone, the write timed out
  /// or the server is shutting down: the producer should return.
  virtual Task<bool> Write(std::string data) = 0;
  /// Waits until woken (see Waker), `at_most` passes, or the server begins shutting down.
  virtual Task<void> Wait(std::chrono::milliseconds at_most) = 0;
  /// A thread-safe function that wakes the current or next Wait. It stays safe to call after the
  /// stream ended (it then does nothing useful), as long as the server object lives.
  virtual std::function<void()> Waker() = 0;
  /// True once the server is shutting down.
  virtual bool closing() const = 0;
};

/// Produces a streaming body; returns when the stream should end.
using StreamProducer = std::function<Task<void>(StreamWriter&)>;

/// One HTTP response. Content-Length and Date are added by the server.
struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  /// When set, the body is streamed instead: the head goes out without Content-Length
  /// (`Transfer-Encoding: chunked` on HTTP/1.1), then `stream` writes chunks until it returns, and
  /// the connection closes. `body` is ignored.
  StreamProducer stream;

  /// Sets a header, replacing any with the same name (case-insensitive).
  void Set(std::string_view name, std::string value);
  /// Adds a header without replacing (e.g. Vary, Link).
  void Add(std::string_view name, std::string value) { headers.emplace_back(name, std::move(value)); }
  /// First header with this name (case-insensitive).
  std::optional<std::string_view> Get(std::string_view name) const;
  /// Removes every header with this name.
  void Remove(std::string_view name);

  /// `status` with a JSON body and `Content-Type: application/json`.
  static Response Json(int status, std::string body);
  /// `status` with a plain-text body.
  static Response Text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
  /// `status` with no body (204, 304, ...).
  static Response Empty(int status);
};

/// Case-insensitive ASCII comparison for header names.
bool HeaderNameEquals(std::string_view a, std::string_view b);

}  // namespace basalt::http
