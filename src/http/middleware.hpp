#pragma once
/// Middleware: an onion of named coroutine stages around the matched handler.

#include <cstddef>
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
};

/// The stages in order (outermost first) and the terminal handler.
class Pipeline {
 public:
  /// `terminal` runs after the last stage (normally: the matched route's handler).
  explicit Pipeline(std::function<Task<Response>(Request&)> terminal) : terminal_(std::move(terminal)) {}

  /// Appends a stage inside the previous ones.
  void Use(Middleware middleware) { stages_.push_back(std::move(middleware)); }

  /// Removes a stage by name (e.g. a route group that needs no access log). True if found.
  bool Remove(const std::string& name);

  /// Runs the request through every stage and the terminal handler.
  Task<Response> Run(Request& request) const { return Next(this, 0)(request); }

 private:
  friend class Next;
  std::vector<Middleware> stages_;
  std::function<Task<Response>(Request&)> terminal_;
};

}  // namespace basalt::http
