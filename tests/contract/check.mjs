// Contract test: the server's /api/v1/openapi.json must be a valid OpenAPI 3.1 document, and real
// responses must match what it declares. Third-party validators only:
//   @seriousme/openapi-schema-validator  (the document against the official OpenAPI 3.1 schema)
//   ajv (JSON Schema 2020-12) + ajv-formats (response bodies against the declared schemas)
//
// Starts nothing: BASALT_URL (e.g. http://127.0.0.1:8090) and BASALT_TOKEN (auth.admin_token) come
// from the environment. Exits 1 with every mismatch listed.
//
//   BASALT_URL=http://127.0.0.1:8090 BASALT_TOKEN=... node tests/contract/check.mjs

import { Validator } from "@seriousme/openapi-schema-validator";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const BASE = (process.env.BASALT_URL || "").replace(/\/$/, "");
const TOKEN = process.env.BASALT_TOKEN || "";
if (!BASE || !TOKEN) {
  console.error("check.mjs: set BASALT_URL and BASALT_TOKEN");
  process.exit(2);
}
const ADMIN = { Authorization: `Bearer ${TOKEN}` };
const DOC_ID = "https://basalt.invalid/openapi.json";

const failures = [];
let checked = 0;
const fail = (msg) => {
  failures.push(msg);
  console.error(`FAIL ${msg}`);
};

let doc = null;
let ajv = null;
const compiled = new Map();

/** Fetches and validates the document, then loads it into a fresh Ajv. */
async function loadDocument(label) {
  const res = await fetch(`${BASE}/api/v1/openapi.json`);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET /api/v1/openapi.json: ${res.status} ${text}`);
  doc = JSON.parse(text);
  const validator = new Validator();
  const result = await validator.validate(doc);
  if (!result.valid) {
    fail(`${label}: /api/v1/openapi.json is not a valid OpenAPI ${validator.version} document: ` +
         JSON.stringify(result.errors, null, 1).slice(0, 4000));
  }
  if (doc.openapi !== "3.1.0") fail(`${label}: openapi is ${doc.openapi}, expected 3.1.0`);
  // Every operationId unique.
  const ids = new Set();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (typeof op !== "object" || !op.operationId) continue;
      if (ids.has(op.operationId)) fail(`${label}: duplicate operationId ${op.operationId} (${method} ${path})`);
      ids.add(op.operationId);
    }
  }
  ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  addFormats(ajv);
  ajv.addSchema({ ...doc, $id: DOC_ID });
  compiled.clear();
  // The document must also be self-consistent: every component schema compiles.
  for (const name of Object.keys(doc.components?.schemas ?? {})) {
    try {
      validatorAt(`#/components/schemas/${escape(name)}`);
    } catch (e) {
      fail(`${label}: components.schemas.${name} does not compile: ${e.message}`);
    }
  }
}

const escape = (s) => s.replace(/~/g, "~0").replace(/\//g, "~1");

function validatorAt(pointer) {
  let v = compiled.get(pointer);
  if (!v) {
    v = ajv.compile({ $ref: DOC_ID + pointer });
    compiled.set(pointer, v);
  }
  return v;
}

/** Follows an OpenAPI `$ref` (components.*) to the object and its JSON pointer. */
function deref(obj, pointer) {
  while (obj && obj.$ref) {
    if (!obj.$ref.startsWith("#/")) throw new Error(`external $ref ${obj.$ref}`);
    pointer = obj.$ref;
    obj = pointer.split("/").slice(1).reduce((o, k) => o?.[k.replace(/~1/g, "/").replace(/~0/g, "~")], doc);
  }
  return [obj, pointer];
}

/**
 * Sends a request and checks the response against the document: the status is declared for the
 * operation (`template` + method), the content type is declared for that status, the body
 * validates against its schema, and declared Location / ETag / WWW-Authenticate headers are sent.
 */
async function call(method, template, path, { body, headers = {}, raw, contentType, expect } = {}) {
  const init = { method, headers: { ...headers } };
  if (raw !== undefined) {
    init.body = raw;
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = contentType || "application/json";
  }
  const res = await fetch(BASE + path, init);
  const text = await res.text();
  const where = `${method} ${path} -> ${res.status}`;
  checked++;
  if (expect !== undefined && res.status !== expect) fail(`${where}: expected status ${expect}; body ${text.slice(0, 500)}`);

  const item = doc.paths[template];
  const op = item?.[method.toLowerCase()];
  if (!op) {
    fail(`${where}: the document has no operation ${method} ${template}`);
    return { res, text, json: safeJson(text) };
  }
  const opPointer = `#/paths/${escape(template)}/${method.toLowerCase()}`;
  const declared = op.responses?.[String(res.status)];
  if (!declared) {
    fail(`${where}: status ${res.status} is not declared for ${method} ${template} ` +
         `(declared: ${Object.keys(op.responses || {}).join(", ")}); body ${text.slice(0, 300)}`);
    return { res, text, json: safeJson(text) };
  }
  const [response, responsePointer] = deref(declared, `${opPointer}/responses/${res.status}`);
  for (const h of Object.keys(response.headers || {})) {
    if (["location", "etag", "www-authenticate"].includes(h.toLowerCase()) && !res.headers.has(h)) {
      fail(`${where}: declared header ${h} is missing`);
    }
  }
  const mediaType = (res.headers.get("content-type") || "").split(";")[0].trim().toLowerCase();
  if (!response.content) {
    if (text.length) fail(`${where}: no content declared, but the body is ${text.slice(0, 200)}`);
    return { res, text, json: null };
  }
  const media = Object.keys(response.content).find((k) => k.toLowerCase() === mediaType);
  if (!media) {
    fail(`${where}: Content-Type ${mediaType || "(none)"} not declared (declared: ${Object.keys(response.content).join(", ")})`);
    return { res, text, json: safeJson(text) };
  }
  let value = text;
  if (media.includes("json")) {
    value = safeJson(text);
    if (value === undefined) {
      fail(`${where}: body is not JSON: ${text.slice(0, 200)}`);
      return { res, text, json: undefined };
    }
  }
  let validate;
  try {
    validate = validatorAt(`${responsePointer}/content/${escape(media)}/schema`);
  } catch (e) {
    fail(`${where}: the declared schema does not compile: ${e.message}`);
    return { res, text, json: value };
  }
  if (media === "application/problem+json" && value?.status !== res.status) {
    fail(`${where}: the problem's status member is ${value?.status}`);
  }
  if (!validate(value)) {
    fail(`${where}: body does not match the declared schema (${media}): ` +
         `${ajv.errorsText(validate.errors, { separator: "; " })}; body ${text.slice(0, 500)}`);
  }
  return { res, text, json: value };
}

function safeJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// ---- the run ----------------------------------------------------------------------------------

const name = `contract_${Date.now().toString(36)}`;
const base = name.replace(/^[a-z]|_[a-z]/g, (m) => m.replace("_", "").toUpperCase());
const records = `/api/v1/collections/${name}/records`;
const recordsT = records;
const recordT = `${records}/{id}`;

await loadDocument("before");
// The public and operational endpoints.
await call("GET", "/healthz", "/healthz", { expect: 200 });
await call("GET", "/readyz", "/readyz", { expect: 200 });
if (doc.paths["/metrics"]) await call("GET", "/metrics", "/metrics", { expect: 200 });
await call("GET", "/api/v1/openapi.json", "/api/v1/openapi.json", { expect: 200 });

// Collections: admin only.
await call("GET", "/api/v1/collections", "/api/v1/collections", { expect: 401 });
await call("GET", "/api/v1/collections", "/api/v1/collections", { headers: { Authorization: "Bearer wrong" }, expect: 401 });
const definition = {
  name,
  fields: [
    { name: "title", type: "text", required: true, max_length: 50, pattern: "[A-Za-z0-9 ]+" },
    { name: "body", type: "text" },
    { name: "views", type: "integer", min: 0, max: 1000000, default: 0 },
    { name: "score", type: "number", min: -1.5, max: 1e9 },
    { name: "live", type: "bool" },
    { name: "due", type: "datetime" },
    { name: "meta", type: "json" },
    { name: "email", type: "email", unique: true },
    { name: "site", type: "url" },
    { name: "status", type: "select", values: ["draft", "live"], default: "draft" },
    { name: "tags", type: "select", values: ["a", "b", "c"], multi: true, max_length: 3 },
    { name: "parent", type: "relation", collection: name, on_delete: "set_null" },
  ],
  indexes: [{ fields: ["views"] }],
  rules: { list: "", view: "", create: null, update: null, delete: null },
};
await call("POST", "/api/v1/collections", "/api/v1/collections", { body: definition, headers: ADMIN, expect: 201 });
await call("POST", "/api/v1/collections", "/api/v1/collections", { body: definition, headers: ADMIN, expect: 409 });
await call("POST", "/api/v1/collections", "/api/v1/collections",
           { body: { name: "Bad Name", fields: [{ name: "x", type: "nope" }] }, headers: ADMIN, expect: 422 });
await call("POST", "/api/v1/collections", "/api/v1/collections", { raw: "{", headers: { ...ADMIN, "Content-Type": "application/json" }, expect: 400 });
await call("POST", "/api/v1/collections", "/api/v1/collections", { raw: "x", headers: { ...ADMIN, "Content-Type": "text/plain" }, expect: 415 });
await call("GET", "/api/v1/collections", "/api/v1/collections", { headers: ADMIN, expect: 200 });
await call("GET", "/api/v1/collections/{name}", `/api/v1/collections/${name}`, { headers: ADMIN, expect: 200 });
await call("GET", "/api/v1/collections/{name}", "/api/v1/collections/no_such_collection", { headers: ADMIN, expect: 404 });

// The document now describes the new collection.
await loadDocument("after create");
for (const suffix of ["Record", "Item", "Create", "Patch", "List"]) {
  if (!doc.components.schemas[base + suffix]) fail(`the document has no components.schemas.${base}${suffix}`);
}
if (!doc.paths[recordsT] || !doc.paths[recordT]) fail(`the document has no paths for ${records}`);

// Records.
const full = {
  title: "Hello world",
  body: "text",
  views: 10,
  score: 2.5,
  live: true,
  due: "2026-01-02T03:04:05+02:00",
  meta: { a: [1, 2, { b: null }] },
  email: "ann@example.com",
  site: "https://example.com/x",
  status: "live",
  tags: ["a", "c"],
};
const created = await call("POST", recordsT, records, { body: full, headers: ADMIN, expect: 201 });
const id = created.json?.id;
const minimal = await call("POST", recordsT, records, { body: { title: "Second", parent: id }, headers: ADMIN, expect: 201 });
await call("POST", recordsT, records, { body: { title: "Third" }, headers: { ...ADMIN, "Idempotency-Key": `k-${name}` }, expect: 201 });
await call("POST", recordsT, records, { body: { title: "Third" }, headers: { ...ADMIN, "Idempotency-Key": `k-${name}` }, expect: 201 });
await call("POST", recordsT, records, { body: { title: "Other" }, headers: { ...ADMIN, "Idempotency-Key": `k-${name}` }, expect: 422 });
await call("POST", recordsT, records, { body: { ...full, title: "Dup" }, headers: ADMIN, expect: 409 });
await call("POST", recordsT, records, { body: { title: "x", nope: 1 }, headers: ADMIN, expect: 422 });
await call("POST", recordsT, records, { body: { body: "no title", views: -1, status: "gone" }, headers: ADMIN, expect: 422 });
await call("POST", recordsT, records, { raw: "{\"title\":", headers: { ...ADMIN, "Content-Type": "application/json" }, expect: 400 });
await call("POST", recordsT, records, { raw: "title=x", headers: { ...ADMIN, "Content-Type": "application/x-www-form-urlencoded" }, expect: 415 });
await call("POST", recordsT, records, { body: { title: "anon" }, expect: 401 });
await call("POST", recordsT, records, { body: { title: "bad token" }, headers: { Authorization: "Bearer nope" }, expect: 401 });

const got = await call("GET", recordT, `${records}/${id}`, { expect: 200 });
const etag = got.res.headers.get("etag");
await call("GET", recordT, `${records}/${id}`, { headers: { "If-None-Match": etag }, expect: 304 });
await call("GET", recordT, `${records}/00000000-0000-7000-8000-000000000000`, { expect: 404 });

await call("GET", recordsT, records, { expect: 200 });
await call("GET", recordsT, `${records}?count=true&sort=-views,title`, { expect: 200 });
await call("GET", recordsT, `${records}?fields=id,title`, { expect: 200 });
const page = await call("GET", recordsT, `${records}?limit=1`, { expect: 200 });
if (page.json?.next_cursor) {
  await call("GET", recordsT, `${records}?limit=1&cursor=${encodeURIComponent(page.json.next_cursor)}`, { expect: 200 });
}
await call("GET", recordsT, `${records}?filter=${encodeURIComponent("views >")}`, { expect: 400 });
await call("GET", recordsT, `${records}?filter=${encodeURIComponent("nope = 1")}`, { expect: 400 });
await call("GET", recordsT, `${records}?limit=100000`, { expect: 400 });
await call("GET", recordsT, `${records}?sort=meta`, { expect: 400 });
await call("GET", recordsT, `${records}?cursor=garbage`, { expect: 400 });
// expand (validated against the document whatever the status: 200 once the server expands).
await call("GET", recordT, `${records}/${minimal.json?.id}?expand=parent`, {});
await call("GET", recordsT, `${records}?expand=parent`, {});
await call("GET", recordsT, `${records}?expand=title`, { expect: 400 });

await call("PATCH", recordT, `${records}/${id}`,
           { body: { views: 11, meta: { a: null, c: true }, body: null }, contentType: "application/merge-patch+json", headers: ADMIN, expect: 200 });
await call("PATCH", recordT, `${records}/${id}`, { body: { views: 12 }, headers: { ...ADMIN, "If-Match": "\"1\"" }, expect: 412 });
await call("PATCH", recordT, `${records}/${id}`, { body: { views: "many" }, headers: ADMIN, expect: 422 });
await call("PATCH", recordT, `${records}/${id}`, { raw: "x", headers: { ...ADMIN, "Content-Type": "text/plain" }, expect: 415 });
await call("PATCH", recordT, `${records}/${id}`, { body: { views: 1 }, expect: 401 });
await call("PUT", recordT, `${records}/${id}`, { body: { ...full, title: "Replaced" }, headers: ADMIN, expect: 200 });
await call("PUT", recordT, `${records}/${id}`, { body: { body: "no title" }, headers: ADMIN, expect: 422 });
await call("PUT", recordT, `${records}/00000000-0000-7000-8000-000000000000`, { body: { title: "x" }, headers: ADMIN, expect: 404 });
await call("DELETE", recordT, `${records}/${id}`, { headers: { ...ADMIN, "If-Match": "\"999\"" }, expect: 412 });
await call("DELETE", recordT, `${records}/${id}`, { expect: 401 });
await call("DELETE", recordT, `${records}/${id}`, { headers: ADMIN, expect: 204 });
await call("DELETE", recordT, `${records}/${id}`, { headers: ADMIN, expect: 404 });
// set_null emptied the second record's parent.
await call("GET", recordT, `${records}/${minimal.json?.id}`, { expect: 200 });

// Batch, when the server has it.
if (doc.paths["/api/v1/batch"]) {
  await call("POST", "/api/v1/batch", "/api/v1/batch", {
    body: { operations: [{ method: "POST", path: records, body: { title: "Batched" } }] },
    headers: ADMIN, expect: 200,
  });
  await call("POST", "/api/v1/batch", "/api/v1/batch", {
    body: { operations: [{ method: "POST", path: records, body: { title: "Ok" } },
                         { method: "POST", path: records, body: { nope: true } }] },
    headers: ADMIN, expect: 422,
  });
}

// A live change shows in the document at once.
await call("PATCH", "/api/v1/collections/{name}", `/api/v1/collections/${name}`, {
  body: { fields: [...definition.fields, { name: "extra", type: "integer", min: 1 }] },
  contentType: "application/merge-patch+json", headers: ADMIN, expect: 200,
});
await call("PATCH", "/api/v1/collections/{name}", `/api/v1/collections/${name}`,
           { body: { rules: { list: "" } }, headers: { ...ADMIN, "If-Match": "\"1\"" }, expect: 412 });
await loadDocument("after change");
if (!doc.components.schemas[base + "Record"]?.properties?.extra) fail("the document does not show the field added by PATCH");
await call("POST", recordsT, records, { body: { title: "With extra", extra: 5 }, headers: ADMIN, expect: 201 });
await call("POST", recordsT, records, { body: { title: "Bad extra", extra: 0 }, headers: ADMIN, expect: 422 });
await call("GET", recordsT, records, { expect: 200 });

await call("DELETE", "/api/v1/collections/{name}", `/api/v1/collections/${name}`, { headers: ADMIN, expect: 204 });
await call("DELETE", "/api/v1/collections/{name}", `/api/v1/collections/${name}`, { headers: ADMIN, expect: 404 });

// The audit log: superusers only; the collection changes above are in it; keyset pages.
await call("GET", "/api/v1/audit-log", "/api/v1/audit-log", { expect: 401 });
await call("GET", "/api/v1/audit-log", "/api/v1/audit-log", { headers: { Authorization: "Bearer wrong" }, expect: 401 });
const audit = await call("GET", "/api/v1/audit-log", `/api/v1/audit-log?target=collection:${name}&limit=1`, { headers: ADMIN, expect: 200 });
if (audit.json?.items?.[0]?.action !== "collection.deleted") fail(`the audit log's newest entry for ${name} is not collection.deleted`);
if (audit.json?.next_cursor) {
  await call("GET", "/api/v1/audit-log", `/api/v1/audit-log?target=collection:${name}&limit=1&cursor=${encodeURIComponent(audit.json.next_cursor)}`,
             { headers: ADMIN, expect: 200 });
}
await call("GET", "/api/v1/audit-log", "/api/v1/audit-log?action=collection.*&outcome=success&since=2020-01-01T00:00:00Z", { headers: ADMIN, expect: 200 });
await call("GET", "/api/v1/audit-log", "/api/v1/audit-log?limit=501", { headers: ADMIN, expect: 400 });
// Queues, when the server has them.
if (doc.paths["/api/v1/queues"]) {
  const q = `q_${Date.now().toString(36)}`;
  const Q = "/api/v1/queues/{queue}";
  const qp = `/api/v1/queues/${q}`;
  await call("GET", "/api/v1/queues", "/api/v1/queues", { expect: 401 });
  await call("PUT", Q, qp, { body: { max_attempts: 1, backoff_min_ms: 0, backoff_max_ms: 0 }, headers: ADMIN, expect: 201 });
  await call("PUT", Q, qp, { body: { max_attempts: 1, lease_ms: 60000 }, headers: ADMIN, expect: 200 });
  await call("PUT", Q, qp, { body: { max_attempts: 0 }, headers: ADMIN, expect: 422 });
  await call("GET", "/api/v1/queues", "/api/v1/queues", { headers: ADMIN, expect: 200 });
  const produced = await call("POST", `${Q}/messages`, `${qp}/messages`, {
    body: { messages: [{ payload: { a: 1 }, priority: 3, headers: { h: "v" }, idempotency_key: "k1" },
                       { payload: "two", delay_ms: 0 }, { payload: null, available_at: "2000-01-01T00:00:00Z" }] },
    headers: ADMIN, expect: 201,
  });
  await call("POST", `${Q}/messages`, `${qp}/messages`, { body: { messages: [{ payload: 1, priority: 11 }] }, headers: ADMIN, expect: 422 });
  await call("POST", `${Q}/messages`, `${qp}/messages`, { raw: "x", headers: { ...ADMIN, "Content-Type": "text/plain" }, expect: 415 });
  const claimed = await call("POST", `${Q}/claims`, `${qp}/claims`, { body: { max: 2, lease_ms: 60000 }, headers: ADMIN, expect: 200 });
  const [m1, m2] = claimed.json?.messages ?? [];
  await call("POST", `${Q}/claims`, `${qp}/claims`, { body: { max: 0 }, headers: ADMIN, expect: 422 });
  await call("GET", `${Q}/messages/{id}`, `${qp}/messages/${m1?.id}`, { headers: ADMIN, expect: 200 });
  await call("GET", `${Q}/messages/{id}`, `${qp}/messages/nope`, { headers: ADMIN, expect: 404 });
  await call("POST", `${Q}/messages/{id}/extend`, `${qp}/messages/${m1?.id}/extend`, { body: { lease_token: m1?.lease_token, lease_ms: 1000 }, headers: ADMIN, expect: 200 });
  await call("POST", `${Q}/messages/{id}/ack`, `${qp}/messages/${m1?.id}/ack`, { body: { lease_token: m1?.lease_token }, headers: ADMIN, expect: 204 });
  await call("POST", `${Q}/messages/{id}/ack`, `${qp}/messages/${m1?.id}/ack`, { body: { lease_token: m1?.lease_token }, headers: ADMIN, expect: 409 });
  await call("POST", `${Q}/messages/{id}/nack`, `${qp}/messages/${m2?.id}/nack`, { body: { lease_token: m2?.lease_token, error: "boom" }, headers: ADMIN, expect: 200 });
  await call("GET", `${Q}/dead-letters`, `${qp}/dead-letters?limit=1`, { headers: ADMIN, expect: 200 });
  await call("POST", `${Q}/dead-letters/replay`, `${qp}/dead-letters/replay`, { body: { all: true }, headers: ADMIN, expect: 200 });
  const more = await call("POST", `${Q}/claims`, `${qp}/claims`, { body: { max: 5 }, headers: ADMIN, expect: 200 });
  await call("POST", `${Q}/acks`, `${qp}/acks`, {
    body: { messages: (more.json?.messages ?? []).map((m) => ({ id: m.id, lease_token: m.lease_token })).concat([{ id: "nope", lease_token: "t" }]) },
    headers: ADMIN, expect: 200,
  });
  await call("POST", `${Q}/completed/replay`, `${qp}/completed/replay`, { body: { ids: [m1?.id ?? "x"] }, headers: ADMIN, expect: 200 });
  await call("POST", `${Q}/completed/replay`, `${qp}/completed/replay`, { body: {}, headers: ADMIN, expect: 422 });
  await call("GET", Q, qp, { headers: ADMIN, expect: 200 });
  await call("GET", Q, "/api/v1/queues/nosuchqueue", { headers: ADMIN, expect: 404 });
  if (!produced.json?.messages?.length) fail("queue produce returned no ids");
}

// Machines, services and authorization.
{
  const owner = await call("POST", "/api/v1/auth/register", "/api/v1/auth/register",
                           { body: { email: `owner-${Date.now().toString(36)}@example.com`, password: "correct horse battery staple" },
                             expect: 201 });
  const userId = owner.json?.id ?? "missing";
  const made = await call("POST", "/api/v1/api-keys", "/api/v1/api-keys",
                          { body: { name: "contract", user_id: userId, scopes: ["records:read"], expires_in_s: 3600 },
                            headers: ADMIN, expect: 201 });
  await call("POST", "/api/v1/api-keys", "/api/v1/api-keys",
             { body: { name: "x", user_id: "nobody", scopes: [] }, headers: ADMIN, expect: 422 });
  const key = made.json?.key;
  await call("POST", "/api/v1/api-keys", "/api/v1/api-keys", { body: { name: "x", scopes: ["nope"] }, headers: ADMIN, expect: 422 });
  await call("POST", "/api/v1/api-keys", "/api/v1/api-keys", { body: { name: "x", scopes: [] }, expect: 401 });
  await call("GET", "/api/v1/api-keys", "/api/v1/api-keys", { headers: ADMIN, expect: 200 });
  await call("GET", "/api/v1/api-keys/{id}", `/api/v1/api-keys/${made.json?.id}`, { headers: ADMIN, expect: 200 });
  await call("GET", "/api/v1/api-keys/{id}", "/api/v1/api-keys/nope", { headers: ADMIN, expect: 404 });
  await call("GET", "/api/v1/auth/verify", "/api/v1/auth/verify", { headers: { "X-API-Key": key }, expect: 200 });
  await call("GET", "/api/v1/auth/verify", "/api/v1/auth/verify?scope=collections:manage", { headers: { "X-API-Key": key }, expect: 403 });
  await call("GET", "/api/v1/auth/verify", "/api/v1/auth/verify", { expect: 401 });
  await call("GET", "/api/v1/roles", "/api/v1/roles", { headers: { "X-API-Key": key }, expect: 403 });
  await call("DELETE", "/api/v1/api-keys/{id}", `/api/v1/api-keys/${made.json?.id}`, { headers: ADMIN, expect: 204 });

  const role = `contract_${Date.now().toString(36)}`;
  await call("POST", "/api/v1/roles", "/api/v1/roles", { body: { name: role, permissions: ["records:read"] }, headers: ADMIN, expect: 201 });
  await call("POST", "/api/v1/roles", "/api/v1/roles", { body: { name: role, permissions: [] }, headers: ADMIN, expect: 409 });
  await call("GET", "/api/v1/roles", "/api/v1/roles", { headers: ADMIN, expect: 200 });
  await call("GET", "/api/v1/roles/{name}", `/api/v1/roles/${role}`, { headers: ADMIN, expect: 200 });
  await call("PUT", "/api/v1/roles/{name}", `/api/v1/roles/${role}`, { body: { permissions: ["records:write"] }, headers: ADMIN, expect: 200 });
  await call("PUT", "/api/v1/users/{id}/roles/{role}", `/api/v1/users/${userId}/roles/${role}`, { headers: ADMIN, expect: 204 });
  await call("GET", "/api/v1/users/{id}/roles", `/api/v1/users/${userId}/roles`, { headers: ADMIN, expect: 200 });
  await call("GET", "/api/v1/users/{id}/roles", "/api/v1/users/nobody/roles", { headers: ADMIN, expect: 404 });
  await call("DELETE", "/api/v1/users/{id}/roles/{role}", `/api/v1/users/${userId}/roles/${role}`, { headers: ADMIN, expect: 204 });
  await call("DELETE", "/api/v1/roles/{name}", `/api/v1/roles/${role}`, { headers: ADMIN, expect: 204 });
  await call("DELETE", "/api/v1/roles/{name}", `/api/v1/roles/${role}`, { headers: ADMIN, expect: 404 });

  const client = await call("POST", "/api/v1/oauth2/clients", "/api/v1/oauth2/clients",
                            { body: { name: "contract", scopes: ["records:read"] }, headers: ADMIN, expect: 201 });
  await call("GET", "/api/v1/oauth2/clients", "/api/v1/oauth2/clients", { headers: ADMIN, expect: 200 });
  await call("GET", "/api/v1/oauth2/clients/{id}", `/api/v1/oauth2/clients/${client.json?.client_id}`, { headers: ADMIN, expect: 200 });
  const form = { "Content-Type": "application/x-www-form-urlencoded" };
  const basic = "Basic " + Buffer.from(`${client.json?.client_id}:${client.json?.client_secret}`).toString("base64");
  await call("POST", "/api/v1/oauth2/token", "/api/v1/oauth2/token",
             { raw: "grant_type=password", headers: { ...form, Authorization: basic }, expect: 400 });
  await call("POST", "/api/v1/oauth2/token", "/api/v1/oauth2/token",
             { raw: "grant_type=client_credentials", headers: { ...form, Authorization: "Basic eDp5" }, expect: 401 });
  const granted = await call("POST", "/api/v1/oauth2/token", "/api/v1/oauth2/token",
                             { raw: "grant_type=client_credentials", headers: { ...form, Authorization: basic }, expect: 200 });
  await call("POST", "/api/v1/oauth2/introspect", "/api/v1/oauth2/introspect",
             { raw: `token=${granted.json?.access_token}`, headers: { ...form, Authorization: basic }, expect: 200 });
  await call("POST", "/api/v1/oauth2/introspect", "/api/v1/oauth2/introspect",
             { raw: "token=nope", headers: { ...form, Authorization: basic }, expect: 200 });
  await call("POST", "/api/v1/oauth2/revoke", "/api/v1/oauth2/revoke",
             { raw: "token=nope", headers: { ...form, Authorization: basic }, expect: 200 });
  await call("GET", "/.well-known/oauth-authorization-server", "/.well-known/oauth-authorization-server", { expect: 200 });
  await call("DELETE", "/api/v1/oauth2/clients/{id}", `/api/v1/oauth2/clients/${client.json?.client_id}`, { headers: ADMIN, expect: 204 });
}

if (failures.length) {
  console.error(`\ncontract: ${failures.length} mismatch(es) in ${checked} responses`);
  process.exit(1);
}
console.log(`contract: ${checked} responses match /api/v1/openapi.json (OpenAPI ${doc.openapi})`);
