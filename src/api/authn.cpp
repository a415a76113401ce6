#include "api/authn.hpp"

#include <memory>

#include "api/data_support.hpp"

namespace basalt::api {

http::Middleware AuthenticationStage(AuthenticationOptions options) {
  auto opts = std::make_shared<const AuthenticationOptions>(std::move(options));
  return {"authentication", [opts](http::Request& req, http::Next next) -> http::Task<http::Response> {
            if (!req.path().starts_with("/api/")) co_return co_await next(req);
            const auto authorization = req.Header("Authorization");
            if (authorization) {
              if (detail::BearerMatches(*authorization, opts->admin_token)) {
                http::Principal p;
                p.kind = http::Principal::Kind::kAdminToken;
                p.roles = {"admin"};
                req.set_principal(std::move(p));
              } else {
                co_return detail::Unauthorized(req, "The bearer token is not valid.");
              }
            }
            co_return co_await next(req);
          }};
}

}  // namespace basalt::api
