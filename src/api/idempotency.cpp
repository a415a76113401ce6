#include "api/idempotency.hpp"

#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "core/crypto.hpp"
#include "http/problem.hpp"
#include "obs/log.hpp"

namespace basalt::api {
namespace {

using core::ErrorCode;
using store::Statement;
using store::Value;

std::string Sha256Hex(std::initializer_list<std::string_view> parts) {
  core::PartsHash h;
  for (std::string_view part : parts) h.Add(part);
  return h.HexDigest();
}

bool ValidKey(std::string_view key) {
  if (key.empty() || key.size() > 255) return false;
  for (char c : key) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Headers worth replaying; the stages recompute the rest (request id, security headers, CORS).
constexpr std::string_view kReplayed[] = {"Content-Type", "Location", "ETag", "Link", "Retry-After"};

std::string EncodeHeaders(const http::Response& response) {
  boost::json::array out;
  for (std::string_view name : kReplayed) {
    if (auto v = response.Get(name)) out.push_back(boost::json::array{name, *v});
  }
  return boost::json::serialize(out);
}

http::Response Replay(std::int64_t status, const std::string& headers, std::string body) {
  http::Response r;
  r.status = static_cast<int>(status);
  boost::system::error_code ec;
  const auto parsed = boost::json::parse(headers, ec);
  if (!ec && parsed.is_array()) {
    for (const auto& pair : parsed.as_array()) {
      const auto& a = pair.as_array();
      r.headers.emplace_back(std::string(a[0].as_string()), std::string(a[1].as_string()));
    }
  }
  r.body = std::move(body);
  r.headers.emplace_back("Idempotent-Replayed", "true");
  return r;
}

struct Stored {
  std::string fingerprint;
  std::string state;
  std::int64_t status = 0;
  std::string headers;
  std::string body;
  std::int64_t created_at = 0;
};

std::string Text(const Value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  return {};
}
std::int64_t Int(const Value& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return *i;
  return 0;
}

class Stage {
 public:
  Stage(store::Database& db, IdempotencyOptions options) : db_(db), options_(options) {
    const auto& d = db_.dialect();
    select_ = "SELECT fingerprint, state, status, headers, body, created_at FROM basalt_idempotency WHERE scope = " +
              d.Placeholder(1) + " AND key = " + d.Placeholder(2);
    insert_ = "INSERT INTO basalt_idempotency (scope, key, fingerprint, state, created_at) VALUES (" +
              d.Placeholder(1) + ", " + d.Placeholder(2) + ", " + d.Placeholder(3) + ", 'in_flight', " +
              d.Placeholder(4) + ")";
    // Takes over an expired or abandoned row in place (same primary key).
    takeover_ = "UPDATE basalt_idempotency SET fingerprint = " + d.Placeholder(3) +
                ", state = 'in_flight', status = NULL, headers = NULL, body = NULL, created_at = " + d.Placeholder(4) +
                " WHERE scope = " + d.Placeholder(1) + " AND key = " + d.Placeholder(2) + " AND created_at = " +
                d.Placeholder(5);
    complete_ = "UPDATE basalt_idempotency SET state = 'done', status = " + d.Placeholder(3) + ", headers = " +
                d.Placeholder(4) + ", body = " + d.Placeholder(5) + " WHERE scope = " + d.Placeholder(1) +
                " AND key = " + d.Placeholder(2);
    forget_ = "DELETE FROM basalt_idempotency WHERE scope = " + d.Placeholder(1) + " AND key = " + d.Placeholder(2);
    purge_ = "DELETE FROM basalt_idempotency WHERE created_at < " + d.Placeholder(1);
  }

  http::Task<http::Response> Handle(http::Request& req, http::Next next) {
    // Runs only for a POST with the header (the stage's `applies`).
    const std::string key(*req.Header("Idempotency-Key"));
    if (!ValidKey(key)) {
      co_return Fail(req, ErrorCode::kBadRequest, "Idempotency-Key must be 1 to 255 visible ASCII characters.");
    }
    const std::string scope =
        Sha256Hex({req.Header("Authorization").value_or("anonymous"), req.method_name(), req.path()});
    const std::string fingerprint =
        Sha256Hex({req.method_name(), req.target(), req.Header("Content-Type").value_or(""), req.body()});

    // Claim the key, or learn what an earlier request with it did.
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto stored = co_await Load(req.shard(), scope, key);
      if (!stored) co_return Internal(req, stored.error());
      const std::int64_t now = NowMs();
      if (!*stored) {
        std::vector<Value> params{scope, key, fingerprint, now};
        auto claimed = co_await Claim(req.shard(), insert_, std::move(params));
        if (claimed) break;
        if (claimed.error().code == ErrorCode::kConflict) continue;  // another request just claimed it
        co_return Internal(req, claimed.error());
      }
      const Stored& row = **stored;
      const bool expired = row.created_at < now - std::chrono::duration_cast<std::chrono::milliseconds>(options_.ttl).count();
      const bool abandoned =
          row.state == "in_flight" &&
          row.created_at < now - std::chrono::duration_cast<std::chrono::milliseconds>(options_.abandon_after).count();
      if (expired || abandoned) {
        std::vector<Value> params{scope, key, fingerprint, now, row.created_at};
        auto taken = co_await Claim(req.shard(), takeover_, std::move(params));
        if (!taken) co_return Internal(req, taken.error());
        if (*taken) break;
        continue;  // someone else took it over first: look again
      }
      if (row.fingerprint != fingerprint) {
        co_return Fail(req, ErrorCode::kValidation,
                       "This Idempotency-Key was already used with a different request.");
      }
      if (row.state == "in_flight") {
        http::Response r = Fail(req, ErrorCode::kConflict, "A request with this Idempotency-Key is still in progress.");
        r.Set("Retry-After", "1");
        co_return r;
      }
      co_return Replay(row.status, row.headers, row.body);
    }

    http::Response response = co_await next(req);
    const bool store_it = response.status < 500;
    Statement done = store_it ? Statement{complete_, {scope, key, static_cast<std::int64_t>(response.status),
                                                      EncodeHeaders(response), response.body}}
                              : Statement{forget_, {scope, key}};
    const bool purge = (++counter_ % 64) == 0;
    const std::int64_t cutoff = NowMs() - std::chrono::duration_cast<std::chrono::milliseconds>(options_.ttl).count();
    auto saved = co_await db_.Transact(req.shard(), [this, &done, purge, cutoff](store::Transaction& tx) {
      return Finish(tx, done, purge, cutoff);
    });
    if (!saved) {
      obs::Log(obs::LogLevel::kError, "idempotency: cannot store the response",
               {{"request_id", req.request_id()}, {"cause", saved.error().cause}});
    }
    co_return response;
  }

 private:
  // Transaction bodies are member coroutines: GCC 12 miscompiles coroutine lambdas nested in
  // coroutines ("array used as initializer").
  store::Task<core::Result<void>> Finish(store::Transaction& tx, const Statement& done, bool purge,
                                         std::int64_t cutoff) {
    Statement statement = done;
    auto r = co_await tx.Execute(std::move(statement));
    if (!r) co_return std::unexpected(r.error());
    if (purge) {
      Statement purge_old{purge_, {Value(cutoff)}};
      auto p = co_await tx.Execute(std::move(purge_old));
      if (!p) co_return std::unexpected(p.error());
    }
    co_return core::Result<void>{};
  }

  static store::Task<core::Result<void>> RunClaim(store::Transaction& tx, const std::string& sql,
                                                  const std::vector<Value>& params, bool& changed) {
    Statement statement{sql, params};  // a named local: GCC 12 mishandles brace temporaries in co_await
    auto e = co_await tx.Execute(std::move(statement));
    if (!e) co_return std::unexpected(e.error());
    changed = e->affected > 0;
    co_return core::Result<void>{};
  }

  store::Task<core::Result<std::optional<Stored>>> Load(unsigned shard, const std::string& scope,
                                                        const std::string& key) {
    Statement select{select_, {scope, key}};
    auto rows = co_await db_.Query(shard, std::move(select));
    if (!rows) co_return std::unexpected(rows.error());
    if (rows->rows.empty()) co_return std::optional<Stored>{};
    const auto& r = rows->rows.front();
    co_return Stored{Text(r[0]), Text(r[1]), Int(r[2]), Text(r[3]), Text(r[4]), Int(r[5])};
  }

  // Runs one claiming statement; true when it changed a row.
  store::Task<core::Result<bool>> Claim(unsigned shard, const std::string& sql, std::vector<Value> params) {
    bool changed = false;
    auto r = co_await db_.Transact(shard, [&sql, &params, &changed](store::Transaction& tx) {
      return RunClaim(tx, sql, params, changed);
    });
    if (!r) co_return std::unexpected(r.error());
    co_return changed;
  }

  static http::Response Fail(const http::Request& req, ErrorCode code, std::string message) {
    return http::Problem(core::Error::Make(code, std::move(message)), req.request_id());
  }

  static http::Response Internal(const http::Request& req, const core::Error& error) {
    obs::Log(obs::LogLevel::kError, "idempotency: database error",
             {{"request_id", req.request_id()}, {"cause", error.cause}});
    return Fail(req, ErrorCode::kInternal, "The request could not be processed.");
  }

  store::Database& db_;
  IdempotencyOptions options_;
  std::string select_, insert_, takeover_, complete_, forget_, purge_;
  std::atomic<std::uint64_t> counter_{0};
};

}  // namespace

http::Middleware IdempotencyStage(store::Database& database, IdempotencyOptions options) {
  auto stage = std::make_shared<Stage>(database, options);
  return {"idempotency",
          [stage](http::Request& req, http::Next next) -> http::Task<http::Response> {
            return stage->Handle(req, next);
          },
          [](const http::Request& req) {
            return req.method() == http::Method::kPost && req.Header("Idempotency-Key").has_value();
          }};
}

std::vector<store::Migration> IdempotencyMigrations() {
  return {{.version = 500,
           .name = "idempotency keys",
           .up = "CREATE TABLE basalt_idempotency ("
                 " scope TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, state TEXT NOT NULL,"
                 " status BIGINT, headers TEXT, body TEXT, created_at BIGINT NOT NULL,"
                 " PRIMARY KEY (scope, key));"
                 "CREATE INDEX basalt_idempotency_created ON basalt_idempotency (created_at);",
           .down = "DROP TABLE basalt_idempotency;"}};
}

}  // namespace basalt::api
