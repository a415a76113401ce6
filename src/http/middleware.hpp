#pragma once
/// Middleware: an onion of named coroutine stages around the matched handler.

#include <cstddef>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "http/request.hpp"
#include "http/response.hpp"
#include "http/task.hpp"

namespace basalt::http {

class Pipeline;

/// Calls the rest of the onion (the next stages, then the handler).
class Next {
 public:
  Next(const Pipeline* pipeline, std::size_t index) : pipeline_(pipeline), index_(index) {}
  Task<Response> operator()(Request& request) const;

 private:
  const Pipeline* pipeline_;
  std::size_t index_;
};

/// One named stage: it may answer by itself or call `next` and adjust the response.
struct Middleware {
  std::string name;
  std::function<Task<Response>(Request&, Next)> handle;
  /// When set and false for a request, the stage is passed over without running `handle`: no
  /// coroutine frame for a stage that has nothing to do (CORS without Origin, idempotency without
  /// a key...). Evaluated when the request reaches the stage, so it sees what outer stages set.
  std::function<bool(const Request&)> applies;
  /// Instead of `handle`, a stage that never answers by itself may give hooks: `before` runs on
  /// the way in, `after` on the way out, both inline in one frame that the pipeline shares among
  /// consecutive such stages (no coroutine frame and no move of the response per stage). An
  /// exception from anything inside them reaches `after` as a 500 problem response, so an inline
  /// stage sees the end of every request it saw begin.
  std::function<void(Request&)> before;
  std::function<void(Request&, Response&)> after;
};

/// The 500 answer to a request whose handling threw: no detail in the response, the detail in the
/// log.
Response InternalError(const Request& request, const std::exception& e);

/// The stages in order (outermost first) and the terminal handler.
class Pipeline {
 public:
  /// `terminal` runs after the last stage (normally: the matched route's handler).
  explicit Pipeline(std::function<Task<Response>(Request&)> terminal) : terminal_(std::move(terminal)) {}

  /// Appends a stage inside the previous ones (at most 64 stages).
  void Use(Middleware middleware);

  /// Removes a stage by name (e.g. a route group that needs no access log). True if found.
  bool Remove(const std::string& name);

  /// Runs the request through every stage and the terminal handler.
  Task<Response> Run(Request& request) const { return Next(this, 0)(request); }

 private:
  friend class Next;
  // Runs the inline stages from `first` up to the next coroutine stage or the handler.
  Task<Response> RunInline(std::size_t first, Request& request) const;

  std::vector<Middleware> stages_;
  std::function<Task<Response>(Request&)> terminal_;
};

}  // namespace basalt::http
