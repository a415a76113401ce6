#include "store/postgres/connection.hpp"

#include <poll.h>

#include <libpq-fe.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "obs/log.hpp"

namespace basalt::store::postgres {
namespace {

namespace asio = boost::asio;
using asio::posix::descriptor_base;

// Type OIDs (pg_type.dat); libpq does not export them.
constexpr Oid kBoolOid = 16;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kFloat4Oid = 700;
constexpr Oid kFloat8Oid = 701;
constexpr Oid kNumericOid = 1700;
/// Strings are sent as "unknown" (0), like a quoted literal: the server infers the parameter's
/// type from its context, so a string binds to text, varchar, jsonb, uuid, timestamptz... An
/// explicit text OID (25) would make `jsonb_col = $1` or an INSERT into a uuid column fail.
constexpr Oid kUnknownOid = 0;

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

/// Parameters in libpq's text format. `values` points into `storage`.
struct Params {
  std::vector<Oid> types;
  std::vector<std::string> storage;
  std::vector<const char*> values;
  std::string signature;  ///< One letter per parameter type: part of the statement cache key.
};

std::string FormatDouble(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);  // Shortest round-trip form.
  return std::string(buf, end);
}

Params BuildParams(const std::vector<Value>& params) {
  Params out;
  out.types.resize(params.size(), kUnknownOid);
  out.storage.resize(params.size());
  out.values.resize(params.size(), nullptr);
  out.signature.resize(params.size(), 'n');
  for (std::size_t i = 0; i < params.size(); ++i) {
    const Value& v = params[i];
    if (const auto* n = std::get_if<std::int64_t>(&v)) {
      out.types[i] = kInt8Oid;
      out.storage[i] = std::to_string(*n);
      out.signature[i] = 'i';
    } else if (const auto* d = std::get_if<double>(&v)) {
      out.types[i] = kFloat8Oid;
      out.storage[i] = FormatDouble(*d);
      out.signature[i] = 'd';
    } else if (const auto* s = std::get_if<std::string>(&v)) {
      out.storage[i] = *s;
      out.signature[i] = 's';
    } else if (const auto* b = std::get_if<bool>(&v)) {
      out.types[i] = kBoolOid;
      out.storage[i] = *b ? "t" : "f";
      out.signature[i] = 'b';
    }
  }
  // Pointers only once `storage` no longer moves.
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (!std::holds_alternative<Null>(params[i])) out.values[i] = out.storage[i].c_str();
  }
  return out;
}

bool ParseInt(const char* text, int length, std::int64_t& out) {
  auto [end, ec] = std::from_chars(text, text + length, out);
  return ec == std::errc() && end == text + length;
}

Value ConvertValue(Oid type, const char* text, int length) {
  switch (type) {
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid: {
      std::int64_t n = 0;
      if (ParseInt(text, length, n)) return n;
      return std::string(text, static_cast<std::size_t>(length));
    }
    case kNumericOid: {
      // Integral numerics (SUM/AVG over integers...) read as integers when they fit, so
      // `SELECT SUM(n)` reads the same as on SQLite; anything else as a double.
      std::int64_t n = 0;
      if (ParseInt(text, length, n)) return n;
      return std::strtod(text, nullptr);
    }
    case kFloat4Oid:
    case kFloat8Oid:
      return std::strtod(text, nullptr);  // Accepts "NaN", "Infinity", "-Infinity".
    case kBoolOid:
      return length > 0 && text[0] == 't';
    default:
      return std::string(text, static_cast<std::size_t>(length));
  }
}

ResultSet ToResultSet(const PGresult* result) {
  ResultSet out;
  const int columns = PQnfields(result);
  const int rows = PQntuples(result);
  out.columns.reserve(static_cast<std::size_t>(columns));
  for (int c = 0; c < columns; ++c) out.columns.emplace_back(PQfname(result, c));
  std::vector<Oid> types(static_cast<std::size_t>(columns));
  for (int c = 0; c < columns; ++c) types[static_cast<std::size_t>(c)] = PQftype(result, c);
  out.rows.reserve(static_cast<std::size_t>(rows));
  for (int r = 0; r < rows; ++r) {
    std::vector<Value> row;
    row.reserve(static_cast<std::size_t>(columns));
    for (int c = 0; c < columns; ++c) {
      if (PQgetisnull(result, r, c)) {
        row.emplace_back(Null{});
      } else {
        row.push_back(ConvertValue(types[static_cast<std::size_t>(c)], PQgetvalue(result, r, c),
                                   PQgetlength(result, r, c)));
      }
    }
    out.rows.push_back(std::move(row));
  }
  std::int64_t affected = 0;
  const char* tuples = PQcmdTuples(const_cast<PGresult*>(result));
  if (tuples && *tuples && ParseInt(tuples, static_cast<int>(std::strlen(tuples)), affected)) out.affected = affected;
  return out;
}

bool IsError(const PGresult* result) {
  const ExecStatusType status = PQresultStatus(result);
  return status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE || status == PGRES_NONFATAL_ERROR;
}

/// Cancels `socket`'s pending wait when the timer fires, unless the wait finished first.
struct DeadlineGuard {
  asio::posix::stream_descriptor* socket;
};

}  // namespace

core::Error MapError(std::string_view sqlstate, std::string cause) {
  using core::ErrorCode;
  if (sqlstate == "23505") {
    return core::Error::Make(ErrorCode::kConflict, "a record with the same unique value already exists",
                             std::move(cause));
  }
  if (sqlstate == "23503") {
    return core::Error::Make(ErrorCode::kValidation, "a referenced record does not exist or is still referenced",
                             std::move(cause));
  }
  if (sqlstate == "23514") {
    return core::Error::Make(ErrorCode::kValidation, "a value violates a check constraint", std::move(cause));
  }
  if (sqlstate == "23502") {
    return core::Error::Make(ErrorCode::kValidation, "a required value is missing", std::move(cause));
  }
  if (sqlstate == "40001" || sqlstate == "40P01") {
    return core::Error::Make(ErrorCode::kConflict, "the change conflicted with a concurrent one; retry",
                             std::move(cause));
  }
  if (sqlstate.starts_with("08") || sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03") {
    return core::Error::Make(ErrorCode::kUnavailable, "database unavailable", std::move(cause));
  }
  return core::Error::Make(ErrorCode::kInternal, "database error", std::move(cause));
}

void ResultDeleter::operator()(pg_result* result) const { PQclear(result); }

struct Connection::Step {
  /// What one step sends.
  enum class Kind {
    kCommand,  ///< PQsendQueryParams without parameters (unnamed statement): BEGIN, COMMIT...
    kPrepare,  ///< PQsendPrepare of `sql` as `name` with `params->types`.
    kExecute,  ///< PQsendQueryPrepared of `name` with `params->values`.
    kScript,   ///< PQsendQuery: simple protocol, several statements; never pipelined.
  };
  Kind kind = Kind::kCommand;
  const char* sql = nullptr;
  const char* name = nullptr;
  const Params* params = nullptr;
};

Connection::Connection(pg_conn* conn) : conn_(conn), created_(std::chrono::steady_clock::now()) {}

Connection::~Connection() {
  // The descriptor must not close the socket: PQfinish does.
  if (socket_) (void)socket_->release();
  PQfinish(conn_);
}

Task<core::Result<std::unique_ptr<Connection>>> Connection::Connect(std::string conninfo,
                                                                    asio::any_io_executor executor,
                                                                    std::chrono::milliseconds timeout) {
  pg_conn* raw = PQconnectStart(conninfo.c_str());
  if (!raw) co_return core::Fail(core::ErrorCode::kUnavailable, "database unavailable", "PQconnectStart: out of memory");
  std::unique_ptr<Connection> connection(new Connection(raw));
  if (PQstatus(raw) == CONNECTION_BAD) co_return connection->Lost("connect");
  // NOTICEs ("relation already exists, skipping") would go to stderr: drop them.
  PQsetNoticeProcessor(raw, [](void*, const char*) {}, nullptr);

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  asio::steady_timer timer(executor);
  // The socket may change while connecting (another address, SSL fallback): one descriptor per
  // wait, released before PQconnectPoll runs again.
  PostgresPollingStatusType poll = PGRES_POLLING_WRITING;
  while (poll != PGRES_POLLING_OK) {
    if (poll == PGRES_POLLING_FAILED) co_return connection->Lost("connect");
    if (std::chrono::steady_clock::now() >= deadline) {
      co_return core::Fail(core::ErrorCode::kUnavailable, "database unavailable",
                           "connect: timed out after " + std::to_string(timeout.count()) + " ms");
    }
    const int fd = PQsocket(raw);
    if (fd < 0) co_return connection->Lost("connect");
    asio::posix::stream_descriptor socket(executor, fd);
    auto guard = std::make_shared<DeadlineGuard>(DeadlineGuard{&socket});
    timer.expires_at(deadline);
    timer.async_wait([guard](boost::system::error_code ec) {
      if (!ec && guard->socket) guard->socket->cancel();
    });
    const auto wait = poll == PGRES_POLLING_READING ? descriptor_base::wait_read : descriptor_base::wait_write;
    auto [ec] = co_await socket.async_wait(wait, kAwait);
    guard->socket = nullptr;
    timer.cancel();
    (void)socket.release();
    if (ec) {
      co_return core::Fail(core::ErrorCode::kUnavailable, "database unavailable",
                           ec == asio::error::operation_aborted
                               ? "connect: timed out after " + std::to_string(timeout.count()) + " ms"
                               : "connect: " + ec.message());
    }
    poll = PQconnectPoll(raw);
  }
  if (PQsetnonblocking(raw, 1) != 0) co_return connection->Lost("connect: PQsetnonblocking");
  connection->created_ = std::chrono::steady_clock::now();
  co_return connection;
}

void Connection::Bind(const asio::any_io_executor& executor) {
  if (socket_ && socket_->get_executor() == executor) return;
  Unbind();
  const int fd = PQsocket(conn_);
  if (fd < 0) {
    broken_ = true;
    return;
  }
  socket_.emplace(executor, fd);
}

void Connection::Unbind() {
  if (!socket_) return;
  (void)socket_->release();
  socket_.reset();
}

bool Connection::Healthy() {
  if (broken_ || PQstatus(conn_) != CONNECTION_OK) return false;
  if (PQtransactionStatus(conn_) != PQTRANS_IDLE) return false;
  // An idle connection has nothing to read: readable means the server is closing it (a
  // terminated backend sends FATAL, then EOF) or sent something unsolicited. Either way, replace
  // it rather than guess (the FATAL message alone does not yet make PQstatus bad).
  pollfd pfd{PQsocket(conn_), POLLIN, 0};
  if (::poll(&pfd, 1, 0) != 0) return false;
  return true;
}

bool Connection::InTransaction() const {
  const auto status = PQtransactionStatus(conn_);
  return status == PQTRANS_INTRANS || status == PQTRANS_INERROR;
}

bool Connection::TransactionFailed() const { return PQtransactionStatus(conn_) == PQTRANS_INERROR; }

int Connection::backend_pid() const { return PQbackendPID(conn_); }

std::unexpected<core::Error> Connection::Lost(std::string_view what) {
  broken_ = true;
  std::string cause(what);
  cause += ": ";
  cause += PQerrorMessage(conn_);
  while (!cause.empty() && (cause.back() == '\n' || cause.back() == ' ')) cause.pop_back();
  return core::Fail(core::ErrorCode::kUnavailable, "database unavailable", std::move(cause));
}

Task<core::Result<void>> Connection::Flush() {
  for (;;) {
    const int flushed = PQflush(conn_);
    if (flushed == 0) co_return core::Result<void>{};
    if (flushed < 0) co_return Lost("flush");
    auto [ec] = co_await socket_->async_wait(descriptor_base::wait_write, kAwait);
    if (ec) co_return Lost("flush: " + ec.message());
    // Drain what the server already answered so it never blocks writing to us meanwhile.
    if (!PQconsumeInput(conn_)) co_return Lost("flush: read");
  }
}

Task<core::Result<void>> Connection::AwaitReadable() {
  auto [ec] = co_await socket_->async_wait(descriptor_base::wait_read, kAwait);
  if (ec) co_return Lost("wait: " + ec.message());
  co_return core::Result<void>{};
}

Task<core::Result<PgResult>> Connection::NextResult() {
  while (PQisBusy(conn_)) {
    // Asio re-arms the (edge-triggered) registration on every wait, so data that arrived before
    // the wait started still completes it.
    if (auto ready = co_await AwaitReadable(); !ready) co_return std::unexpected(std::move(ready.error()));
    if (!PQconsumeInput(conn_)) co_return Lost("read");
  }
  co_return PgResult(PQgetResult(conn_));
}

Task<core::Result<std::vector<PgResult>>> Connection::Exchange(const std::vector<Step>& steps) {
  if (broken_ || !socket_) co_return Lost("connection is broken");
  const bool pipeline = steps.size() > 1;
  if (pipeline && PQenterPipelineMode(conn_) != 1) co_return Lost("enter pipeline mode");
  for (const Step& step : steps) {
    int sent = 0;
    switch (step.kind) {
      case Step::Kind::kCommand:
        sent = PQsendQueryParams(conn_, step.sql, 0, nullptr, nullptr, nullptr, nullptr, 0);
        break;
      case Step::Kind::kPrepare:
        sent = PQsendPrepare(conn_, step.name, step.sql, static_cast<int>(step.params->types.size()),
                             step.params->types.data());
        break;
      case Step::Kind::kExecute:
        sent = PQsendQueryPrepared(conn_, step.name, static_cast<int>(step.params->values.size()),
                                   step.params->values.data(), nullptr, nullptr, 0);
        break;
      case Step::Kind::kScript:
        sent = PQsendQuery(conn_, step.sql);
        break;
    }
    if (sent != 1) co_return Lost("send");
  }
  if (pipeline && PQpipelineSync(conn_) != 1) co_return Lost("pipeline sync");
  if (auto flushed = co_await Flush(); !flushed) co_return std::unexpected(std::move(flushed.error()));

  std::vector<PgResult> out(steps.size());
  for (std::size_t i = 0; i < steps.size(); ++i) {
    for (;;) {
      auto next = co_await NextResult();
      if (!next) co_return std::unexpected(std::move(next.error()));
      if (!*next) break;  // End of this step's results.
      // Keep the first error of the step, else its last result (a script yields one per statement).
      if (!out[i] || !IsError(out[i].get())) out[i] = std::move(*next);
      if (PQstatus(conn_) == CONNECTION_BAD) co_return Lost("read");
    }
  }
  if (pipeline) {
    auto sync = co_await NextResult();
    if (!sync) co_return std::unexpected(std::move(sync.error()));
    if (!*sync || PQresultStatus(sync->get()) != PGRES_PIPELINE_SYNC) co_return Lost("pipeline: expected sync");
    if (PQexitPipelineMode(conn_) != 1) co_return Lost("exit pipeline mode");
  }
  co_return out;
}

namespace {

/// The error of the first failed step, if any.
std::optional<core::Error> FirstError(const std::vector<PgResult>& results, pg_conn* conn) {
  for (const PgResult& result : results) {
    if (!result) continue;
    if (IsError(result.get())) {
      const char* sqlstate = PQresultErrorField(result.get(), PG_DIAG_SQLSTATE);
      std::string cause = PQresultErrorMessage(result.get());
      while (!cause.empty() && cause.back() == '\n') cause.pop_back();
      if (!sqlstate && PQstatus(conn) == CONNECTION_BAD) sqlstate = "08006";
      return MapError(sqlstate ? sqlstate : "", std::move(cause));
    }
    if (PQresultStatus(result.get()) == PGRES_PIPELINE_ABORTED) {
      return core::Error::Make(core::ErrorCode::kInternal, "database error", "pipeline aborted");
    }
  }
  return std::nullopt;
}

}  // namespace

Task<core::Result<ResultSet>> Connection::Execute(const Statement& statement, bool begin_first) {
  std::vector<const Statement*> one;
  one.push_back(&statement);
  co_return co_await ExecuteMany(one, begin_first, /*commit_last=*/false);
}

Task<core::Result<ResultSet>> Connection::ExecuteMany(const std::vector<const Statement*>& statements,
                                                      bool begin_first, bool commit_last,
                                                      std::vector<ResultSet>* each) {
  // One entry per statement; `items` never reallocates once filled, so the steps below may point
  // into it (Params::values point into Params::storage, whose buffer a move keeps).
  struct Item {
    Params params;
    std::string key;   ///< SQL + '\0' + parameter signature: the cache key.
    std::string name;  ///< The prepared statement's name.
    bool prepare = false;
    std::size_t prepare_step = 0;
    std::size_t execute_step = 0;
  };
  std::vector<Item> items(statements.size());
  std::unordered_map<std::string, std::string> fresh;  // Prepared by an earlier item of this exchange.
  for (std::size_t i = 0; i < statements.size(); ++i) {
    Item& item = items[i];
    item.params = BuildParams(statements[i]->params);
    item.key = statements[i]->sql;
    item.key += '\0';
    item.key += item.params.signature;
    if (const auto cached = statements_.find(item.key); cached != statements_.end()) {
      item.name = cached->second;
    } else if (const auto earlier = fresh.find(item.key); earlier != fresh.end()) {
      item.name = earlier->second;
    } else {
      item.name = "s" + std::to_string(++next_statement_);
      item.prepare = true;
      fresh.emplace(item.key, item.name);
    }
  }

  std::vector<Step> steps;
  steps.reserve(2 * items.size() + 2);
  Step step;
  if (begin_first) {
    step.kind = Step::Kind::kCommand;
    step.sql = "BEGIN";
    steps.push_back(step);
  }
  for (std::size_t i = 0; i < items.size(); ++i) {
    Item& item = items[i];
    step.params = &item.params;
    step.name = item.name.c_str();
    if (item.prepare) {
      step.kind = Step::Kind::kPrepare;
      step.sql = statements[i]->sql.c_str();
      item.prepare_step = steps.size();
      steps.push_back(step);
    }
    step.kind = Step::Kind::kExecute;
    step.sql = nullptr;
    item.execute_step = steps.size();
    steps.push_back(step);
  }
  if (commit_last) {
    step = Step{};
    step.kind = Step::Kind::kCommand;
    step.sql = "COMMIT";
    steps.push_back(step);
  }
  if (steps.empty()) co_return ResultSet{};
  if (obs::LogEnabled(obs::LogLevel::kTrace)) {
    // One line per round trip with its statements' text (values are bound, never logged): lets
    // tests count round trips.
    std::string text = begin_first ? "BEGIN; " : "";
    for (const Statement* statement : statements) text += statement->sql + "; ";
    if (commit_last) text += "COMMIT";
    obs::Log(obs::LogLevel::kTrace, "store round trip", {{"sql", std::string_view(text)}});
  }

  auto results = co_await Exchange(steps);
  if (!results) co_return std::unexpected(std::move(results.error()));
  for (Item& item : items) {
    if (!item.prepare) continue;
    const PgResult& prepared = (*results)[item.prepare_step];
    if (prepared && PQresultStatus(prepared.get()) == PGRES_COMMAND_OK) statements_.emplace(std::move(item.key), item.name);
  }
  if (auto error = FirstError(*results, conn_)) {
    if (error->code == core::ErrorCode::kUnavailable) broken_ = true;
    co_return std::unexpected(std::move(*error));
  }
  if (commit_last) {
    // COMMIT of a transaction that had already failed answers "ROLLBACK" without an error: never
    // report that as a commit (Transact checks first; this is the backstop).
    const PgResult& committed = results->back();
    if (!committed || std::strcmp(PQcmdStatus(committed.get()), "COMMIT") != 0) {
      co_return core::Fail(core::ErrorCode::kInternal, "database error", "COMMIT did not commit");
    }
  }
  if (items.empty()) co_return ResultSet{};
  const PgResult& last = (*results)[items.back().execute_step];
  if (!last) co_return core::Fail(core::ErrorCode::kInternal, "database error", "no result");
  if (!each) co_return ToResultSet(last.get());
  each->clear();
  each->reserve(items.size());
  for (const Item& item : items) {
    const PgResult& result = (*results)[item.execute_step];
    each->push_back(result ? ToResultSet(result.get()) : ResultSet{});
  }
  co_return each->back();
}

Task<core::Result<void>> Connection::Command(std::string_view sql) {
  const std::string text(sql);
  co_return co_await RunOne(/*script=*/false, text);
}

Task<core::Result<void>> Connection::Script(const std::string& script) {
  co_return co_await RunOne(/*script=*/true, script);
}

// One statement or script with no rows wanted; a lost connection marks this one broken.
Task<core::Result<void>> Connection::RunOne(bool script, const std::string& sql) {
  std::vector<Step> steps(1);
  steps[0].kind = script ? Step::Kind::kScript : Step::Kind::kCommand;
  steps[0].sql = sql.c_str();
  if (obs::LogEnabled(obs::LogLevel::kTrace)) obs::Log(obs::LogLevel::kTrace, "store round trip", {{"sql", std::string_view(sql)}});
  auto results = co_await Exchange(steps);
  if (!results) co_return std::unexpected(std::move(results.error()));
  if (auto error = FirstError(*results, conn_)) {
    if (error->code == core::ErrorCode::kUnavailable) broken_ = true;
    co_return std::unexpected(std::move(*error));
  }
  co_return core::Result<void>{};
}

}  // namespace basalt::store::postgres
