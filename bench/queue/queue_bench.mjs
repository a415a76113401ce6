// Queue throughput benchmark: the same work against Basalt's queue API (HTTP, batches) or BullMQ
// (bench/peers/bullmq, on a local redis-server). Three phases, one JSON line each on stdout:
//   queue_produce_batch    QB_MESSAGES messages produced by QB_PRODUCERS clients in batches of QB_BATCH
//   queue_claim_ack_batch  the same messages drained by QB_CONSUMERS clients (claim a batch, ack it)
//   queue_end_to_end       producers and consumers at once; latency = produce call start -> claimed
// Fields: {"workload", "system", "rps" (messages/s), "p50_ms", "p99_ms", "cpu_us_per_req" (server
// + database CPU per message), "pss_mib" (memory: PSS summed over the trees)}; p50/p99 are per request for the first two phases and per
// message for end_to_end. CPU is read from /proc for the process trees in QB_PIDS.
//
//   QB_SYSTEM=basalt QB_URL=http://127.0.0.1:8090 QB_TOKEN=... QB_NAME=basalt-sqlite QB_PIDS=1234 node queue_bench.mjs
//   QB_SYSTEM=bullmq QB_REDIS_PORT=6390 QB_PIDS=5678 node queue_bench.mjs
// Bounded: each phase must finish within QB_PHASE_TIMEOUT_S seconds (default 180), else the run
// fails (exit 1) and stops; every phase checks that exactly QB_MESSAGES messages went through.
// Only loopback: QB_URL must name 127.0.0.1 / localhost / [::1]; Redis is always 127.0.0.1.
import { readFileSync, readdirSync } from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const env = process.env;
const SYSTEM = env.QB_SYSTEM || "basalt";
const NAME = env.QB_NAME || SYSTEM;
const N = Number(env.QB_MESSAGES || 50000);
const BATCH = Number(env.QB_BATCH || 500);
const PRODUCERS = Number(env.QB_PRODUCERS || 4);
const CONSUMERS = Number(env.QB_CONSUMERS || 4);
const PIDS = (env.QB_PIDS || "").split(",").filter(Boolean).map(Number);
const PHASE_TIMEOUT_MS = Number(env.QB_PHASE_TIMEOUT_S || 180) * 1000;
for (const [k, v] of Object.entries({ QB_MESSAGES: N, QB_BATCH: BATCH, QB_PRODUCERS: PRODUCERS, QB_CONSUMERS: CONSUMERS })) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${k} must be a positive integer`);
}
if (BATCH > 1000) throw new Error("QB_BATCH must be at most 1000 (Basalt's produce limit)");
const CLK_TCK = 100;

// ---- /proc CPU and PSS of process trees -------------------------------------------------------
function stat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { ppid: +f[1], utime: +f[11], stime: +f[12], cutime: +f[13], cstime: +f[14] };
  } catch {
    return null;
  }
}
function trees() {
  const kids = new Map();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const s = stat(d);
    if (!s) continue;
    if (!kids.has(s.ppid)) kids.set(s.ppid, []);
    kids.get(s.ppid).push(+d);
  }
  const out = [];
  const queue = [...PIDS];
  while (queue.length) {
    const p = queue.shift();
    out.push(p);
    for (const k of kids.get(p) || []) queue.push(k);
  }
  return out;
}
function cpuTicks() {
  let total = 0;
  for (const p of trees()) {
    const s = stat(p);
    if (s) total += s.utime + s.stime;
  }
  for (const p of PIDS) {
    const s = stat(p);
    if (s) total += s.cutime + s.cstime;
  }
  return total;
}
// PSS: a page shared by n processes counts 1/n in each (Redis forks, PostgreSQL's shared buffers).
function pssMib() {
  let kib = 0;
  for (const p of trees()) {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, "utf8"));
      if (m) kib += +m[1];
    } catch {
      // The process ended meanwhile.
    }
  }
  return kib / 1024;
}
// null when a phase has no latencies to show (BullMQ's claim + ack: no request per batch).
const pct = (sorted, q) => (sorted.length ? +sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))].toFixed(2) : null);

async function phase(workload, fn) {
  const cpu0 = cpuTicks();
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${workload}: not done after ${PHASE_TIMEOUT_MS / 1000} s`)), PHASE_TIMEOUT_MS);
  });
  const latencies = await Promise.race([fn(), timeout]).finally(() => clearTimeout(timer));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = (cpuTicks() - cpu0) / CLK_TCK;
  const client = process.cpuUsage(client0);
  latencies.sort((a, b) => a - b);
  const row = {
    workload, system: NAME, rps: Math.round(N / seconds), p50_ms: pct(latencies, 0.5),
    p99_ms: pct(latencies, 0.99), cpu_us_per_req: +((cpu * 1e6) / N).toFixed(1),
    client_cpu_us_per_req: +((client.user + client.system) / N).toFixed(1), pss_mib: +pssMib().toFixed(1),
  };
  console.log(JSON.stringify(row));
}

// ---- Basalt ------------------------------------------------------------------------------------
async function basalt() {
  const base = new URL((env.QB_URL || "").replace(/\/$/, ""));
  if (!["127.0.0.1", "localhost", "[::1]"].includes(base.hostname)) throw new Error(`QB_URL must be loopback: ${base}`);
  // node:http on keep-alive connections, one per producer/consumer: undici's fetch costs the
  // (single, pinned) client core several times more per request, and the client, not the server,
  // was what bounded the rate. BullMQ's ioredis client is likewise a plain socket.
  const agent = new http.Agent({ keepAlive: true, maxSockets: PRODUCERS + CONSUMERS, maxFreeSockets: PRODUCERS + CONSUMERS });
  const auth = `Bearer ${env.QB_TOKEN}`;
  const request = (method, p, body) =>
    new Promise((resolve, reject) => {
      const data = JSON.stringify(body);
      const req = http.request(
        {
          agent, host: base.hostname.replace(/^\[|\]$/g, ""), port: base.port || 80, path: p, method,
          headers: { Authorization: auth, "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) },
        },
        (res) => {
          const chunks = [];
          res.on("data", (c) => chunks.push(c));
          res.on("end", () => {
            const text = chunks.length === 1 ? chunks[0].toString() : Buffer.concat(chunks).toString();
            if (res.statusCode >= 300) reject(new Error(`${method} ${p}: ${res.statusCode} ${text.slice(0, 300)}`));
            else resolve(text ? JSON.parse(text) : null);
          });
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(data);
    });
  const post = (p, body) => request("POST", p, body);
  await request("PUT", "/api/v1/queues/bench", {});

  const produce = async (count, stamp) => {
    const lat = [];
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const n = Math.min(BATCH, count - next);
        next += n;
        const t = performance.now();
        const messages = [];
        for (let i = 0; i < n; i++) messages.push({ payload: stamp ? { t } : { i } });
        const made = await post("/api/v1/queues/bench/messages", { messages });
        if (made?.messages?.length !== n) throw new Error(`produce: asked for ${n}, got ${JSON.stringify(made).slice(0, 200)}`);
        lat.push(performance.now() - t);
      }
    };
    await Promise.all(Array.from({ length: PRODUCERS }, worker));
    return lat;
  };
  const consume = async (count, e2e) => {
    const lat = [];
    let done = 0;
    const worker = async () => {
      while (done < count) {
        const t = performance.now();
        const got = await post("/api/v1/queues/bench/claims", { max: BATCH, wait_ms: 200 });
        const now = performance.now();
        if (!got.messages.length) continue;
        if (e2e) for (const m of got.messages) lat.push(now - m.payload.t);
        const acked = await post("/api/v1/queues/bench/acks", {
          messages: got.messages.map((m) => ({ id: m.id, lease_token: m.lease_token })),
        });
        if (acked?.acked !== got.messages.length) throw new Error(`ack: ${JSON.stringify(acked).slice(0, 300)}`);
        if (!e2e) lat.push(performance.now() - t);
        done += got.messages.length;
      }
    };
    await Promise.all(Array.from({ length: CONSUMERS }, worker));
    if (done !== count) throw new Error(`consume: ${done} messages claimed and acked, expected ${count}`);
    return lat;
  };
  await phase("queue_produce_batch", () => produce(N, false));
  await phase("queue_claim_ack_batch", () => consume(N, false));
  await phase("queue_end_to_end", async () => {
    const [, lat] = await Promise.all([produce(N, true), consume(N, true)]);
    return lat;
  });
}

// ---- BullMQ ------------------------------------------------------------------------------------
async function bullmq() {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const require = createRequire(path.join(here, "../peers/bullmq/package.json"));
  const { Queue, Worker } = require("bullmq");
  const connection = { host: "127.0.0.1", port: Number(env.QB_REDIS_PORT || 6379), maxRetriesPerRequest: null };
  const queue = new Queue("bench", { connection });
  await queue.obliterate({ force: true }).catch(() => {});
  const produce = async (count, stamp) => {
    const lat = [];
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const n = Math.min(BATCH, count - next);
        next += n;
        const t = performance.now();
        const jobs = [];
        for (let i = 0; i < n; i++) jobs.push({ name: "j", data: stamp ? { t } : { i } });
        await queue.addBulk(jobs);
        lat.push(performance.now() - t);
      }
    };
    await Promise.all(Array.from({ length: PRODUCERS }, worker));
    return lat;
  };
  // BullMQ (open source) has no batch claim: a Worker takes jobs one by one with `concurrency` in
  // flight; CONSUMERS workers x BATCH concurrency is the same number of messages in flight.
  const consume = (count, e2e) =>
    new Promise((resolve, reject) => {
      const lat = [];
      let done = 0;
      const workers = [];
      for (let w = 0; w < CONSUMERS; w++) {
        const worker = new Worker(
          "bench",
          async (job) => {
            if (e2e) lat.push(performance.now() - job.data.t);
          },
          { connection, concurrency: BATCH },
        );
        worker.on("completed", async () => {
          if (++done === count) {
            await Promise.all(workers.map((x) => x.close()));
            resolve(lat);
          }
        });
        worker.on("error", reject);
        workers.push(worker);
      }
    });
  await phase("queue_produce_batch", () => produce(N, false));
  await phase("queue_claim_ack_batch", () => consume(N, false));
  await phase("queue_end_to_end", async () => {
    const [, lat] = await Promise.all([produce(N, true), consume(N, true)]);
    return lat;
  });
  await queue.close();
}

try {
  if (SYSTEM === "bullmq") await bullmq();
  else await basalt();
  process.exit(0);
} catch (e) {
  console.error(`queue_bench: ${e.stack || e}`);
  process.exit(1);
}
