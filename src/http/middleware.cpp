#include "http/middleware.hpp"

#include <algorithm>
#include <cstdint>
#include <stdexcept>

#include "http/problem.hpp"
#include "obs/log.hpp"

namespace basalt::http {

Response InternalError(const Request& request, const std::exception& e) {
  obs::Log(obs::LogLevel::kError, "pipeline failed", {{"request_id", request.request_id()}, {"error", e.what()}});
  return Problem(core::Error::Make(core::ErrorCode::kInternal, "The server failed to handle this request."),
                 request.request_id());
}

Task<Response> Next::operator()(Request& request) const {
  const auto& stages = pipeline_->stages_;
  for (std::size_t i = index_; i < stages.size(); ++i) {
    if (stages[i].applies && !stages[i].applies(request)) continue;
    if (!stages[i].handle) return pipeline_->RunInline(i, request);
    return stages[i].handle(request, Next(pipeline_, i + 1));
  }
  return pipeline_->terminal_(request);
}

Task<Response> Pipeline::RunInline(std::size_t first, Request& request) const {
  std::uint64_t ran = 0;  // bit i: stage i's `before` ran, so its `after` runs
  std::size_t i = first;
  Response response;
  try {
    for (; i < stages_.size(); ++i) {
      const Middleware& stage = stages_[i];
      if (i != first && stage.applies && !stage.applies(request)) continue;
      if (stage.handle) break;
      if (stage.before) stage.before(request);
      ran |= std::uint64_t{1} << i;
    }
    Task<Response> inner = i < stages_.size() ? stages_[i].handle(request, Next(this, i + 1)) : terminal_(request);
    response = co_await std::move(inner);
  } catch (const std::exception& e) {
    response = InternalError(request, e);
  }
  for (std::size_t k = i; k-- > first;) {
    if ((ran >> k & 1) != 0 && stages_[k].after) stages_[k].after(request, response);
  }
  co_return response;
}

void Pipeline::Use(Middleware middleware) {
  if (stages_.size() >= 64) throw std::length_error("a pipeline holds at most 64 stages");
  stages_.push_back(std::move(middleware));
}

bool Pipeline::Remove(const std::string& name) {
  const auto n = std::erase_if(stages_, [&](const Middleware& m) { return m.name == name; });
  return n > 0;
}

}  // namespace basalt::http
