#include "http/middleware.hpp"

#include <algorithm>

namespace basalt::http {

Task<Response> Next::operator()(Request& request) const {
  const auto& stages = pipeline_->stages_;
  for (std::size_t i = index_; i < stages.size(); ++i) {
    if (stages[i].applies && !stages[i].applies(request)) continue;
    return stages[i].handle(request, Next(pipeline_, i + 1));
  }
  return pipeline_->terminal_(request);
}

bool Pipeline::Remove(const std::string& name) {
  const auto n = std::erase_if(stages_, [&](const Middleware& m) { return m.name == name; });
  return n > 0;
}

}  // namespace basalt::http
