#!/usr/bin/env python3
"""Seed the data-API benchmark (called by bench/lib.sh).

  seed.py basalt BASE_URL ADMIN_TOKEN N IDS_FILE
      Create the `posts` collection (public rules, index on views) and N records, through
      POST /api/v1/batch (100 operations per request) when Basalt has it, otherwise concurrent
      single POSTs on keep-alive connections. Writes the record ids to IDS_FILE, one per line.
      Exit status 3 with "records API not available" when the routes are missing.
  seed.py parse BASE_URL N IDS_FILE
      Create the Post class (fields, index on views) and N objects through /parse/batch (50 per
      request); writes the objectIds to IDS_FILE.
  seed.py fake N IDS_FILE
      N random UUID-shaped ids (for the nginx ceiling, which answers any path).
  seed.py auth BASE_URL ADMIN_TOKEN N OUT_DIR SESSIONS
      The auth workload: registers one user and logs it in (OUT_DIR/access_token, OUT_DIR/email);
      creates two collections with the same fields and N records each, owned by that user:
      `owned` (list/view rule `owner = @request.auth.id`) and `open` (public rules), writing
      OUT_DIR/owned_ids.txt and OUT_DIR/open_ids.txt; logs in SESSIONS more times and writes one
      refresh token per line to OUT_DIR/refresh_tokens.txt.

Records: title "post <i>", body of about 200 characters, views uniform in [0, BENCH_VIEWS_MAX)
(default 100000), owner "user-<i % 100>". Every request has a timeout; the whole run is bounded
by the caller (timeout(1)).
"""
import http.client
import json
import os
import random
import sys
import threading
import urllib.parse
import uuid

VIEWS_MAX = int(os.environ.get("BENCH_VIEWS_MAX", "100000"))
TIMEOUT_S = 30
THREADS = 4          # concurrent batch requests
SINGLE_THREADS = 16  # concurrent single POSTs (group commit likes company)
BODY_TEXT = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 4)[:200]

PARSE_HEADERS = {
    "X-Parse-Application-Id": "basalt-bench-app",
    "X-Parse-REST-API-Key": "basalt-bench-rest-key",
}
PARSE_MASTER = {"X-Parse-Application-Id": "basalt-bench-app", "X-Parse-Master-Key": "basalt-bench-master-key"}


class NotAvailable(Exception):
    pass


def record(i, rng):
    return {"title": f"post {i}", "body": BODY_TEXT, "views": rng.randrange(VIEWS_MAX), "owner": f"user-{i % 100}"}


class Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        h = {"Accept": "application/json"}
        if headers:
            h.update(headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_S)
            try:
                self.conn.request(method, path, body=data, headers=h)
                r = self.conn.getresponse()
                raw = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                try:
                    parsed = json.loads(raw) if raw else None
                except ValueError:
                    parsed = raw.decode(errors="replace")
                return r.status, parsed
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise


def run_parallel(chunks, work, threads=THREADS):
    """Run work(client, chunk) -> list for every chunk on `threads` threads; results in chunk order."""
    results = [None] * len(chunks)
    errors = []
    lock = threading.Lock()
    next_idx = [0]

    def worker():
        client = Client(BASE)
        while True:
            with lock:
                if errors or next_idx[0] >= len(chunks):
                    return
                idx = next_idx[0]
                next_idx[0] += 1
            try:
                results[idx] = work(client, chunks[idx])
            except Exception as e:  # noqa: BLE001 - reported below
                with lock:
                    errors.append(e)
                return

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    return [x for chunk in results for x in chunk]


def short(body):
    text = body if isinstance(body, str) else json.dumps(body)
    return text[:300]


def seed_basalt(token, n):
    auth = {"Authorization": f"Bearer {token}"}
    c = Client(BASE)
    spec = {
        "name": "posts",
        "fields": [
            {"name": "title", "type": "text", "required": True},
            {"name": "body", "type": "text"},
            {"name": "views", "type": "integer"},
            {"name": "owner", "type": "text"},
        ],
        "indexes": [{"fields": ["views"]}],
        "rules": {"list": "", "view": "", "create": "", "update": "", "delete": ""},
    }
    st, body = c.request("POST", "/api/v1/collections", spec, auth)
    if st in (404, 405):
        raise NotAvailable(f"POST /api/v1/collections answered {st}")
    if st not in (200, 201):
        raise RuntimeError(f"creating the posts collection: {st} {short(body)}")

    rng = random.Random(42)
    recs = [record(i, rng) for i in range(n)]
    path = "/api/v1/collections/posts/records"

    # Batch when available: probe with the first chunk.
    chunks = [recs[i:i + 100] for i in range(0, n, 100)]
    ops = [{"method": "POST", "path": path, "body": r} for r in chunks[0]]
    st, body = c.request("POST", "/api/v1/batch", {"operations": ops}, auth)
    if st == 200:
        mode = "POST /api/v1/batch, 100 per request"

        def batch_ids(body):
            res = body["results"]
            bad = [x for x in res if x.get("status") != 201]
            if bad:
                raise RuntimeError(f"batch operation failed: {short(bad[0])}")
            return [x["body"]["id"] for x in res]

        first = batch_ids(body)

        def work(client, chunk):
            ops = [{"method": "POST", "path": path, "body": r} for r in chunk]
            st, body = client.request("POST", "/api/v1/batch", {"operations": ops}, auth)
            if st != 200:
                raise RuntimeError(f"POST /api/v1/batch: {st} {short(body)}")
            return batch_ids(body)

        ids = first + run_parallel(chunks[1:], work)
    elif st in (404, 405):
        mode = f"single POSTs on {SINGLE_THREADS} keep-alive connections (no /api/v1/batch: {st})"
        st, body = c.request("POST", path, recs[0])
        if st in (404, 405):
            raise NotAvailable(f"POST {path} answered {st}")
        if st != 201:
            raise RuntimeError(f"POST {path}: {st} {short(body)}")
        first = [body["id"]]
        singles = [recs[i:i + 50] for i in range(1, n, 50)]

        def work(client, chunk):
            out = []
            for r in chunk:
                st, body = client.request("POST", path, r)
                if st != 201:
                    raise RuntimeError(f"POST {path}: {st} {short(body)}")
                out.append(body["id"])
            return out

        ids = first + run_parallel(singles, work, SINGLE_THREADS)
    else:
        raise RuntimeError(f"POST /api/v1/batch: {st} {short(body)}")

    # The workloads must answer 200, or the measurement would be of error pages.
    st, body = c.request("GET", f"{path}/{ids[len(ids) // 2]}")
    if st in (404, 405):
        raise NotAvailable(f"GET {path}/<seeded id> answered {st} {short(body)}")
    if st != 200:
        raise RuntimeError(f"GET {path}/<seeded id>: {st} {short(body)}")
    st, body = c.request("GET", f"{path}?filter=views%20%3E%2050000&sort=-views&limit=20")
    if st != 200:
        raise NotAvailable(f"GET {path}?filter=...&sort=-views&limit=20 answered {st} {short(body)}")
    items = body.get("items", []) if isinstance(body, dict) else []
    want = 20 if n >= 200 else len(items)
    if not 0 < len(items) == want <= 20 or any(items[i]["views"] < items[i + 1]["views"] for i in range(len(items) - 1)):
        raise RuntimeError(f"list answer is not 20 records sorted by -views: {short(body)}")
    return ids, mode


def seed_parse(n):
    c = Client(BASE)
    schema = {
        "className": "Post",
        "fields": {"title": {"type": "String"}, "body": {"type": "String"},
                   "views": {"type": "Number"}, "owner": {"type": "String"}},
        "indexes": {"views_1": {"views": 1}},
    }
    st, body = c.request("POST", "/parse/schemas/Post", schema, PARSE_MASTER)
    if st not in (200, 201):
        raise RuntimeError(f"POST /parse/schemas/Post: {st} {short(body)}")
    rng = random.Random(42)
    recs = [record(i, rng) for i in range(n)]
    chunks = [recs[i:i + 50] for i in range(0, n, 50)]

    def work(client, chunk):
        reqs = [{"method": "POST", "path": "/parse/classes/Post", "body": r} for r in chunk]
        st, body = client.request("POST", "/parse/batch", {"requests": reqs}, PARSE_HEADERS)
        if st != 200:
            raise RuntimeError(f"POST /parse/batch: {st} {short(body)}")
        bad = [x for x in body if "success" not in x]
        if bad:
            raise RuntimeError(f"/parse/batch operation failed: {short(bad[0])}")
        return [x["success"]["objectId"] for x in body]

    ids = run_parallel(chunks, work)
    st, body = c.request("GET", f"/parse/classes/Post/{ids[0]}", headers=PARSE_HEADERS)
    if st != 200:
        raise RuntimeError(f"GET /parse/classes/Post/<seeded id>: {st} {short(body)}")
    return ids, "POST /parse/batch, 50 per request"


AUTH_PASSWORD = "bench password 0123456789"


def seed_auth(token, n, out_dir, sessions):
    admin = {"Authorization": f"Bearer {token}"}
    c = Client(BASE)
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    st, body = c.request("POST", "/api/v1/auth/register", {"email": email, "password": AUTH_PASSWORD})
    if st in (404, 405):
        raise NotAvailable(f"POST /api/v1/auth/register answered {st}")
    if st != 201:
        raise RuntimeError(f"register: {st} {short(body)}")
    user = body["id"]

    def login(client):
        st, body = client.request("POST", "/api/v1/auth/login", {"email": email, "password": AUTH_PASSWORD})
        if st != 200:
            raise RuntimeError(f"login: {st} {short(body)}")
        return body

    access = login(c)["access_token"]
    rules = {"owned": "owner = @request.auth.id", "open": ""}
    rng = random.Random(7)
    for name, rule in rules.items():
        spec = {
            "name": name,
            "fields": [
                {"name": "title", "type": "text", "required": True},
                {"name": "body", "type": "text"},
                {"name": "views", "type": "integer"},
                {"name": "owner", "type": "text"},
            ],
            "indexes": [{"fields": ["owner"]}],
            "rules": {"list": rule, "view": rule, "create": None, "update": None, "delete": None},
        }
        st, body = c.request("POST", "/api/v1/collections", spec, admin)
        if st not in (200, 201):
            raise RuntimeError(f"creating {name}: {st} {short(body)}")
        path = f"/api/v1/collections/{name}/records"
        recs = [dict(record(i, rng), owner=user) for i in range(n)]
        chunks = [recs[i:i + 100] for i in range(0, n, 100)]

        def work(client, chunk, path=path):
            ops = [{"method": "POST", "path": path, "body": r} for r in chunk]
            st, body = client.request("POST", "/api/v1/batch", {"operations": ops}, admin)
            if st != 200:
                raise RuntimeError(f"POST /api/v1/batch: {st} {short(body)}")
            return [x["body"]["id"] for x in body["results"]]

        ids = run_parallel(chunks, work)
        # The measured requests must answer 200: the owner through the rule, anyone on `open`.
        probe = {"Authorization": f"Bearer {access}"} if rule else None
        st, body = c.request("GET", f"{path}/{ids[0]}", headers=probe)
        if st != 200:
            raise RuntimeError(f"GET {path}/<id> as the owner: {st} {short(body)}")
        if rule:
            st, _ = c.request("GET", f"{path}/{ids[0]}")
            if st != 404:
                raise RuntimeError(f"GET {path}/<id> anonymously answered {st}, not 404: the rule is not applied")
        with open(os.path.join(out_dir, f"{name}_ids.txt"), "w") as f:
            f.write("\n".join(ids) + "\n")

    chunks = [[None] * 8 for _ in range((sessions + 7) // 8)]
    refresh = run_parallel(chunks, lambda client, chunk: [login(client)["refresh_token"] for _ in chunk])
    with open(os.path.join(out_dir, "refresh_tokens.txt"), "w") as f:
        f.write("\n".join(refresh[:sessions]) + "\n")
    with open(os.path.join(out_dir, "access_token"), "w") as f:
        f.write(access)
    with open(os.path.join(out_dir, "email"), "w") as f:
        f.write(email)
    return 2 * n, f"auth: 2 collections of {n}, {sessions} sessions"


def main(argv):
    global BASE
    try:
        if len(argv) == 6 and argv[1] == "basalt":
            BASE = argv[2]
            ids, mode = seed_basalt(argv[3], int(argv[4]))
            out = argv[5]
        elif len(argv) == 5 and argv[1] == "parse":
            BASE = argv[2]
            ids, mode = seed_parse(int(argv[3]))
            out = argv[4]
        elif len(argv) == 7 and argv[1] == "auth":
            BASE = argv[2]
            count, mode = seed_auth(argv[3], int(argv[4]), argv[5], int(argv[6]))
            print(f"seeded {count} records ({mode})", file=sys.stderr)
            return 0
        elif len(argv) == 4 and argv[1] == "fake":
            ids, mode = [str(uuid.uuid4()) for _ in range(int(argv[2]))], "random ids, nothing stored"
            out = argv[3]
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except NotAvailable as e:
        print(f"records API not available: {e}", file=sys.stderr)
        return 3
    except Exception as e:  # noqa: BLE001 - one line for the bench log
        print(f"seeding failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    with open(out, "w") as f:
        f.write("\n".join(ids) + "\n")
    print(f"seeded {len(ids)} records ({mode})", file=sys.stderr)
    return 0


BASE = ""

if __name__ == "__main__":
    sys.exit(main(sys.argv))
