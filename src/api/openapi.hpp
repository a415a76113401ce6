#pragma once
/// GET /api/v1/openapi.json: the OpenAPI 3.1 description of this server, generated from the live
/// catalog (one schema and one pair of record paths per collection). Checked against real
/// responses by tests/contract with third-party validators.

#include <string>

#include <boost/json/object.hpp>

#include "api/data_routes.hpp"
#include "http/router.hpp"
#include "schema/catalog.hpp"

namespace basalt::api {

/// What the document describes besides the catalog.
struct OpenApiOptions {
  std::string version = "0.0.0";  ///< info.version (the build version).
  bool metrics = true;            ///< GET /metrics is served.
  bool batch = false;             ///< POST /api/v1/batch is served.
  bool queues = false;            ///< /api/v1/queues/... is served.
  bool auth = false;              ///< /api/v1/auth/* and /.well-known/jwks.json are served.
  bool events = false;            ///< /api/v1/realtime and /api/v1/webhooks are served.
};

/// The OpenAPI 3.1.0 document for `snapshot`. Deterministic: the same snapshot and options give
/// the same document, member order included (collections in name order, fields in declaration
/// order).
boost::json::object OpenApiDocument(const schema::Snapshot& snapshot, const OpenApiOptions& options);

/// The name used for a collection's component schemas: snake_case to PascalCase ("blog_posts" ->
/// "BlogPosts"); an underscore not followed by a lowercase letter is kept, so the mapping is
/// one-to-one.
std::string SchemaBaseName(std::string_view collection);

/// Translates an RE2 pattern (full match) into an ECMA-262 `pattern` ("^(?:p)$") when it uses only
/// syntax both engines read alike; empty when it cannot be carried over safely.
std::string EcmaPattern(std::string_view re2);

/// Adds the queue paths (/api/v1/queues/...) and their component schemas (openapi_queues.cpp).
void AddQueueDocs(boost::json::object& paths, boost::json::object& schemas);

/// GET /api/v1/openapi.json (public). The document is rebuilt when the catalog snapshot changes.
/// `router` must be the router the route is added to; it tells which optional routes exist.
core::Result<void> RegisterOpenApi(http::Router& router, const DataServices& services);

}  // namespace basalt::api
