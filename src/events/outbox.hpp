#pragma once
/// The transactional outbox: every record write appends one CloudEvents 1.0 event to
/// `basalt_events` inside the write's own transaction, so a rolled-back write leaves no event.
///
/// Order: events are read in (txid, seq) order. On SQLite `txid` is 0 and `seq` (AUTOINCREMENT)
/// follows commit order (one writer). On PostgreSQL `seq` comes from a sequence, which does not
/// follow commit order, so each row also records its transaction id and readers only see rows
/// of transactions older than every running one (the view `basalt_events_visible`, via
/// pg_snapshot_xmin): a reader never passes a row that could still appear behind it.

#include <compare>
#include <optional>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "store/database.hpp"
#include "store/migrations.hpp"

namespace basalt::events {

/// What happened to a record.
enum class ChangeKind { kCreated, kUpdated, kDeleted };

/// "created", "updated", "deleted".
std::string_view KindName(ChangeKind kind);

/// A position in the outbox order.
struct Position {
  std::int64_t txid = 0;
  std::int64_t seq = 0;
  auto operator<=>(const Position&) const = default;
};

/// One outbox event as read back.
struct Event {
  Position position;
  std::string id;          ///< The CloudEvent id (UUIDv7).
  std::string collection;  ///< "posts".
  std::string kind;        ///< "created", "updated", "deleted".
  std::string record_id;
  std::int64_t created_at_ms = 0;
  std::string payload;  ///< The CloudEvent JSON.
};

/// The INSERT that appends one event: CloudEvents 1.0 JSON with specversion, id, source
/// (`/api/v1/collections/<collection>`), type (`basalt.record.<kind>`), subject
/// (`<collection>/<record id>`), time, datacontenttype, data (`record_json`, the record after the
/// write; before it for a delete) and, on update, `changedfields` (comma-separated names; a
/// CloudEvents extension attribute must be a string).
store::Statement OutboxInsert(const store::Dialect& dialect, std::string_view collection, std::string_view record_id,
                              ChangeKind kind, std::string_view record_json, const std::vector<std::string>& changed);

/// The Database::Listen channel on which every transaction that appended events notifies, after
/// its commit, with its outbox `txid` as the payload ("0" on SQLite): the dispatcher's wake-up.
inline constexpr std::string_view kEventsChannel = "basalt_events";

/// Appends one event inside `tx` (OutboxInsert) and queues the kEventsChannel notification, which
/// listeners receive only if `tx` commits. Only awaits `tx` (valid in a SQLite Transact callback).
/// With `defer` both go out with the transaction's next statement or COMMIT (store::ExecuteAndNotify):
/// an error then surfaces there, so a caller that must attribute errors precisely (a batch) does
/// not defer.
store::Task<core::Result<void>> AppendEvent(store::Transaction& tx, const store::Dialect& dialect,
                                            std::string_view collection, std::string_view record_id, ChangeKind kind,
                                            std::string_view record_json, const std::vector<std::string>& changed,
                                            bool defer);

/// Up to `limit` visible events after `after`, in order; only `collection`'s when not empty.
store::Statement ReadAfter(const store::Dialect& dialect, Position after, std::int64_t limit,
                           std::string_view collection = {});
/// The last visible position (one row, or none when the outbox is empty).
store::Statement LastPosition();
/// The position of the event with this sequence number (Last-Event-ID).
store::Statement PositionOf(const store::Dialect& dialect, std::int64_t seq);

/// Rows of ReadAfter as events.
std::vector<Event> ToEvents(const store::ResultSet& rows);
/// The first row of LastPosition / PositionOf, if any.
std::optional<Position> ToPosition(const store::ResultSet& rows);

/// System tables of the events module (versions 950..999); SQL differs by dialect ("sqlite",
/// "postgres"), the only place it does.
std::vector<store::Migration> Migrations(std::string_view dialect_name);

}  // namespace basalt::events
