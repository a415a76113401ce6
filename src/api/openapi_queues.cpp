// The queue part of /api/v1/openapi.json (routes in queues.cpp): paths and component schemas.
// Kept apart from openapi.cpp so the queue contract lives next to nothing else; it uses the
// document's shared components (Problem responses, Location / Link headers, admin_token).

#include <boost/json.hpp>

#include "api/openapi.hpp"

namespace basalt::api {
namespace {

namespace json = boost::json;

json::object Ref(std::string_view kind, std::string_view name) {
  return json::object{{"$ref", "#/components/" + std::string(kind) + "/" + std::string(name)}};
}
json::object S(std::string_view name) { return Ref("schemas", name); }
json::object Str() { return json::object{{"type", "string"}}; }
json::object Time() { return json::object{{"type", "string"}, {"format", "date-time"}}; }
json::object Int(std::int64_t min, std::int64_t max) {
  return json::object{{"type", "integer"}, {"minimum", min}, {"maximum", max}};
}
json::object Obj(json::object properties, json::array required, bool closed = true) {
  json::object o{{"type", "object"}, {"properties", std::move(properties)}};
  if (!required.empty()) o["required"] = std::move(required);
  if (closed) o["additionalProperties"] = false;
  return o;
}
json::object ArrayOf(json::object items, std::int64_t min = 0, std::int64_t max = 0) {
  json::object o{{"type", "array"}, {"items", std::move(items)}};
  if (min) o["minItems"] = min;
  if (max) o["maxItems"] = max;
  return o;
}
json::object NullableStr() { return json::object{{"type", json::array{"string", "null"}}}; }
json::object Headers() { return json::object{{"type", "object"}, {"additionalProperties", Str()}}; }

/// Responses: the given ones, the given problems, and the problems any operation can give.
json::object Responses(std::vector<std::pair<int, json::object>> ok, std::initializer_list<int> problems) {
  json::object out;
  for (auto& [status, r] : ok) out[std::to_string(status)] = std::move(r);
  std::vector<int> all(problems);
  for (int s : {400, 401, 403, 408, 413, 414, 431, 500, 503}) all.push_back(s);
  for (int s : all) {
    if (!out.contains(std::to_string(s))) out[std::to_string(s)] = Ref("responses", "Problem" + std::to_string(s));
  }
  return out;
}
json::object Json(std::string description, json::object schema, json::object headers = {}) {
  json::object r{{"description", std::move(description)}};
  if (!headers.empty()) r["headers"] = std::move(headers);
  r["content"] = json::object{{"application/json", json::object{{"schema", std::move(schema)}}}};
  return r;
}
json::object Body(json::object schema, bool required = true) {
  return json::object{{"required", required}, {"content", json::object{{"application/json", json::object{{"schema", std::move(schema)}}}}}};
}
json::object Op(std::string id, std::string summary) {
  return json::object{{"operationId", std::move(id)},
                      {"tags", json::array{"queues"}},
                      {"summary", std::move(summary)},
                      {"security", json::array{json::object{{"admin_token", json::array{}}}}}};
}
json::object PathParam(std::string name, std::string description) {
  return json::object{{"name", std::move(name)}, {"in", "path"}, {"required", true}, {"description", std::move(description)},
                      {"schema", Str()}};
}

json::object SettingsProperties(bool with_name) {
  json::object p{{"max_attempts", Int(1, 1000)},
                 {"backoff_min_ms", Int(0, 86'400'000)},
                 {"backoff_max_ms", Int(0, 86'400'000)},
                 {"lease_ms", Int(100, 43'200'000)},
                 {"retention_ms", Int(0, 31'536'000'000)},
                 {"dead_letter", json::object{{"type", "boolean"}}}};
  if (with_name) p["name"] = Str();
  return p;
}

}  // namespace

void AddQueueDocs(json::object& paths, json::object& schemas) {
  // ---- schemas ----
  schemas["QueueSettings"] = Obj(SettingsProperties(false),
                                 json::array{"max_attempts", "backoff_min_ms", "backoff_max_ms", "lease_ms", "retention_ms", "dead_letter"});
  schemas["QueueSettingsChange"] = Obj(SettingsProperties(true), {});
  json::object stats;
  for (const char* k : {"ready", "delayed", "in_flight", "completed", "dead", "oldest_age_ms", "produced", "acked", "nacked",
                        "failed", "waiting_claims"}) {
    stats[k] = json::object{{"type", "integer"}, {"minimum", 0}};
  }
  json::array stats_required;
  for (const auto& [k, v] : stats) stats_required.emplace_back(k);
  schemas["QueueStats"] = Obj(std::move(stats), std::move(stats_required));
  schemas["Queue"] = Obj(json::object{{"name", Str()}, {"settings", S("QueueSettings")}, {"created_at", Time()},
                                      {"updated_at", Time()}, {"stats", S("QueueStats")}},
                         json::array{"name", "settings", "created_at", "updated_at"});
  schemas["Queues"] = Obj(json::object{{"items", ArrayOf(S("Queue"))}}, json::array{"items"});
  schemas["QueueNewMessage"] = Obj(
      json::object{{"payload", json::object{{"description", "Any JSON value."}}},
                   {"headers", Headers()},
                   {"priority", Int(0, 9)},
                   {"delay_ms", Int(0, 31'536'000'000)},
                   {"available_at", Time()},
                   {"idempotency_key", json::object{{"type", "string"}, {"minLength", 1}, {"maxLength", 255}}}},
      json::array{"payload"});
  schemas["QueueProduce"] = Obj(json::object{{"messages", ArrayOf(S("QueueNewMessage"), 1, 1000)}}, json::array{"messages"});
  schemas["QueueProduced"] = Obj(
      json::object{{"messages", ArrayOf(Obj(json::object{{"id", Str()}, {"duplicate", json::object{{"type", "boolean"}}}},
                                            json::array{"id", "duplicate"}))}},
      json::array{"messages"});
  schemas["QueueClaim"] = Obj(json::object{{"max", Int(1, 1000)}, {"lease_ms", Int(100, 43'200'000)}, {"wait_ms", Int(0, 30'000)}}, {});
  schemas["QueueClaimedMessage"] = Obj(
      json::object{{"id", Str()}, {"payload", json::object{}}, {"headers", Headers()}, {"priority", Int(0, 9)},
                   {"attempt", json::object{{"type", "integer"}, {"minimum", 1}}}, {"lease_token", Str()},
                   {"lease_expires_at", Time()}, {"created_at", Time()}, {"idempotency_key", Str()}, {"last_error", Str()}},
      json::array{"id", "payload", "priority", "attempt", "lease_token", "lease_expires_at"});
  schemas["QueueClaimed"] = Obj(json::object{{"messages", ArrayOf(S("QueueClaimedMessage"))}}, json::array{"messages"});
  json::object token{{"type", "string"}, {"minLength", 1}, {"maxLength", 128}};
  schemas["QueueAck"] = Obj(json::object{{"lease_token", token}}, json::array{"lease_token"});
  schemas["QueueNack"] = Obj(json::object{{"lease_token", token}, {"delay_ms", Int(0, 86'400'000)}, {"error", Str()}},
                             json::array{"lease_token"});
  schemas["QueueNackResult"] = Obj(
      json::object{{"id", Str()}, {"state", json::object{{"type", "string"}, {"enum", json::array{"ready", "dead"}}}}},
      json::array{"id", "state"});
  schemas["QueueExtend"] = Obj(json::object{{"lease_token", token}, {"lease_ms", Int(100, 43'200'000)}}, json::array{"lease_token"});
  schemas["QueueExtendResult"] = Obj(json::object{{"id", Str()}, {"lease_expires_at", Time()}}, json::array{"id", "lease_expires_at"});
  schemas["QueueAckBatch"] = Obj(
      json::object{{"messages", ArrayOf(Obj(json::object{{"id", Str()}, {"lease_token", token}}, json::array{"id", "lease_token"}), 1, 1000)}},
      json::array{"messages"});
  schemas["QueueAckBatchResult"] = Obj(
      json::object{{"acked", json::object{{"type", "integer"}, {"minimum", 0}}},
                   {"results", ArrayOf(Obj(json::object{{"id", Str()},
                                                        {"result", json::object{{"type", "string"},
                                                                                {"enum", json::array{"acked", "not_found", "stale"}}}}},
                                           json::array{"id", "result"}))}},
      json::array{"acked", "results"});
  schemas["QueueDeadLetter"] = Obj(
      json::object{{"id", Str()}, {"payload", json::object{}}, {"headers", Headers()}, {"priority", Int(0, 9)},
                   {"attempt", json::object{{"type", "integer"}, {"minimum", 0}}}, {"last_error", NullableStr()},
                   {"created_at", Time()}, {"dead_at", Time()}},
      json::array{"id", "payload", "priority", "attempt", "last_error", "created_at", "dead_at"});
  schemas["QueueDeadLetters"] = Obj(json::object{{"items", ArrayOf(S("QueueDeadLetter"))}, {"next_cursor", NullableStr()}},
                                    json::array{"items", "next_cursor"});
  schemas["QueueReplayDead"] = Obj(json::object{{"ids", ArrayOf(Str(), 0, 1000)}, {"all", json::object{{"type", "boolean"}}}}, {});
  schemas["QueueReplayCompleted"] = Obj(json::object{{"ids", ArrayOf(Str(), 1, 1000)}, {"from", Time()}, {"to", Time()}}, {});
  schemas["QueueReplayResult"] = Obj(json::object{{"replayed", json::object{{"type", "integer"}, {"minimum", 0}}}},
                                     json::array{"replayed"});
  schemas["QueueMessage"] = Obj(
      json::object{{"id", Str()},
                   {"state", json::object{{"type", "string"}, {"enum", json::array{"ready", "in_flight", "completed", "dead"}}}},
                   {"payload", json::object{}}, {"headers", Headers()}, {"priority", Int(0, 9)},
                   {"attempt", json::object{{"type", "integer"}, {"minimum", 0}}}, {"created_at", Time()},
                   {"available_at", Time()}, {"lease_expires_at", Time()}, {"completed_at", Time()}, {"dead_at", Time()},
                   {"last_error", NullableStr()}},
      json::array{"id", "state", "payload", "priority", "attempt", "created_at"});

  // ---- paths ----
  const std::string base = "/api/v1/queues";
  const std::string one = base + "/{queue}";
  json::object queue_param = PathParam("queue", "The queue: 1 to 128 of A-Z a-z 0-9 _ . -, starting with a letter or digit.");
  json::object id_param = PathParam("id", "The message id.");

  json::object list = Op("list_queues", "List queues with their settings");
  list["responses"] = Responses({{200, Json("Every queue.", S("Queues"))}}, {});
  paths[base] = json::object{{"get", std::move(list)}};

  json::object get = Op("get_queue", "A queue's settings and stats");
  get["responses"] = Responses({{200, Json("The queue with `stats`.", S("Queue"))}}, {404});
  json::object put = Op("put_queue", "Create a queue or replace its settings (missing fields take defaults)");
  put["requestBody"] = Body(S("QueueSettingsChange"), false);
  put["responses"] = Responses({{200, Json("Replaced.", S("Queue"))},
                                {201, Json("Created.", S("Queue"), json::object{{"Location", Ref("headers", "Location")}})}},
                               {415, 422});
  paths[one] = json::object{{"parameters", json::array{queue_param}}, {"get", std::move(get)}, {"put", std::move(put)}};

  json::object produce = Op("produce_messages", "Produce up to 1,000 messages (the queue is created on first use)");
  produce["description"] = "An `idempotency_key` seen in this queue within its retention returns the original id with "
                           "`duplicate: true`.";
  produce["requestBody"] = Body(S("QueueProduce"));
  produce["responses"] = Responses({{201, Json("Produced, in input order.", S("QueueProduced"))}}, {409, 413, 415, 422});
  paths[one + "/messages"] = json::object{{"parameters", json::array{queue_param}}, {"post", std::move(produce)}};

  json::object claim = Op("claim_messages", "Claim up to `max` messages under a lease, long-polling up to `wait_ms`");
  claim["description"] = "Highest priority first, then oldest. An empty body takes the defaults (max 10, the queue's lease, "
                         "no wait).";
  claim["requestBody"] = Body(S("QueueClaim"), false);
  claim["responses"] = Responses({{200, Json("The claimed messages (possibly none).", S("QueueClaimed"))}}, {404, 415, 422});
  paths[one + "/claims"] = json::object{{"parameters", json::array{queue_param}}, {"post", std::move(claim)}};

  json::object acks = Op("ack_messages", "Ack many messages in one transaction");
  acks["requestBody"] = Body(S("QueueAckBatch"));
  acks["responses"] = Responses({{200, Json("One result per item, in order.", S("QueueAckBatchResult"))}}, {413, 415, 422});
  paths[one + "/acks"] = json::object{{"parameters", json::array{queue_param}}, {"post", std::move(acks)}};

  json::object peek = Op("get_queue_message", "One message in any state");
  peek["responses"] = Responses({{200, Json("The message.", S("QueueMessage"))}}, {404});
  paths[one + "/messages/{id}"] = json::object{{"parameters", json::array{queue_param, id_param}}, {"get", std::move(peek)}};

  json::object ack = Op("ack_message", "Ack a claimed message");
  ack["requestBody"] = Body(S("QueueAck"));
  ack["responses"] = Responses({{204, json::object{{"description", "Acked."}}}}, {404, 409, 415, 422});
  paths[one + "/messages/{id}/ack"] = json::object{{"parameters", json::array{queue_param, id_param}}, {"post", std::move(ack)}};

  json::object nack = Op("nack_message", "Give a claimed message back (retry after a delay or backoff, or dead letter)");
  nack["requestBody"] = Body(S("QueueNack"));
  nack["responses"] = Responses({{200, Json("Where the message went.", S("QueueNackResult"))}}, {404, 409, 415, 422});
  paths[one + "/messages/{id}/nack"] = json::object{{"parameters", json::array{queue_param, id_param}}, {"post", std::move(nack)}};

  json::object extend = Op("extend_lease", "Extend a lease");
  extend["requestBody"] = Body(S("QueueExtend"));
  extend["responses"] = Responses({{200, Json("The new expiry.", S("QueueExtendResult"))}}, {404, 409, 415, 422});
  paths[one + "/messages/{id}/extend"] = json::object{{"parameters", json::array{queue_param, id_param}}, {"post", std::move(extend)}};

  json::object dead = Op("list_dead_letters", "Dead letters, oldest death first");
  dead["parameters"] = json::array{
      json::object{{"name", "limit"}, {"in", "query"}, {"schema", json::object{{"type", "integer"}, {"minimum", 1}, {"maximum", 500}, {"default", 50}}}},
      json::object{{"name", "cursor"}, {"in", "query"}, {"schema", Str()}}};
  dead["responses"] = Responses({{200, Json("A page.", S("QueueDeadLetters"), json::object{{"Link", Ref("headers", "Link")}})}}, {404});
  paths[one + "/dead-letters"] = json::object{{"parameters", json::array{queue_param}}, {"get", std::move(dead)}};

  json::object replay_dead = Op("replay_dead_letters", "Requeue dead letters (`ids`, or `all: true`)");
  replay_dead["requestBody"] = Body(S("QueueReplayDead"));
  replay_dead["responses"] = Responses({{200, Json("How many were requeued.", S("QueueReplayResult"))}}, {404, 413, 415, 422});
  paths[one + "/dead-letters/replay"] = json::object{{"parameters", json::array{queue_param}}, {"post", std::move(replay_dead)}};

  json::object replay_done = Op("replay_completed", "Re-deliver retained completed messages (`ids`, or completion time `from`..`to`)");
  replay_done["requestBody"] = Body(S("QueueReplayCompleted"));
  replay_done["responses"] = Responses({{200, Json("How many were re-delivered.", S("QueueReplayResult"))}}, {404, 413, 415, 422});
  paths[one + "/completed/replay"] = json::object{{"parameters", json::array{queue_param}}, {"post", std::move(replay_done)}};
}

}  // namespace basalt::api
