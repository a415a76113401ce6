#include "http/middleware.hpp"

#include <algorithm>

namespace basalt::http {

Task<Response> Next::operator()(Request& request) const {
  if (index_ < pipeline_->stages_.size()) {
    return pipeline_->stages_[index_].handle(request, Next(pipeline_, index_ + 1));
  }
  return pipeline_->terminal_(request);
}

bool Pipeline::Remove(const std::string& name) {
  const auto n = std::erase_if(stages_, [&](const Middleware& m) { return m.name == name; });
  return n > 0;
}

}  // namespace basalt::http
