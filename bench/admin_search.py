#!/usr/bin/env python3
"""Admin user search latency over many users (issue 19): GET /admin/api/users with the kinds of
search an operator runs, on SQLite or PostgreSQL.

Usage: python3 bench/admin_search.py [PATH_TO_BRAID] [--users N] [--requests N]
  default binary: $CARGO_TARGET_DIR/release/braid, else target/release/braid
  BRAID_BENCH_DATABASE_URL=postgres://…  a database the caller prepared (default: SQLite in a
                                         fresh temp dir); needs psql. It must be empty.

Steps: write a config with one admin key, `braid migrate`, seed --users users (default 100,000)
straight into the database (each with a display name, an external id, one verified email and
one identity; ids are UUIDv7 as Braid makes them), `braid serve`, wait for /readyz, then send
--requests (default 200) sequential requests per search kind over one keep-alive connection
and print median / p95 / p99 / max latency as the client sees it. A request that does not
answer 200 with the expected number of users fails the run (exit 1).
"""
import csv, hashlib, http.client, io, json, os, random, secrets, socket, sqlite3, statistics
import subprocess, sys, tempfile, time, urllib.parse

FIRST = ["ann", "bob", "carla", "dmitri", "eve", "farid", "grace", "hiro", "ines", "jon",
         "kemal", "lena", "mona", "nils", "olga", "pavel", "quinn", "rosa", "sven", "tara"]
LAST = ["smith", "jones", "garcia", "muller", "rossi", "novak", "tanaka", "silva", "kowalski",
        "nguyen", "okafor", "larsen", "dubois", "ivanova", "haddad", "moreau", "weber", "costa",
        "fischer", "berg"]


def uuid7(ms):
    r = secrets.randbits(74)
    value = (ms << 80) | (0x7 << 76) | ((r >> 62) << 64) | (0b10 << 62) | (r & ((1 << 62) - 1))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def rows(n):
    start = int(time.time() * 1000) - n
    users, emails, identities = [], [], []
    for i in range(n):
        ms = start + i
        uid = uuid7(ms)
        first, last = FIRST[i % 20], LAST[(i // 20) % 20]
        users.append((uid, f"{first.title()} {last.title()} {i}", False, False, ms, ms, f"ext-{i}"))
        emails.append((uuid7(ms), uid, f"{first}.{last}{i}@example{i % 50}.com", ms, True, ms))
        identities.append((uuid7(ms), uid, "google", "https://accounts.google.com", f"g-{i}", "{}", ms, ms))
    return users, emails, identities


def seed_sqlite(path, n):
    users, emails, identities = rows(n)
    db = sqlite3.connect(path)
    with db:
        db.executemany("INSERT INTO users (id, display_name, disabled, is_admin, created_at, updated_at, external_id) VALUES (?,?,?,?,?,?,?)", users)
        db.executemany("INSERT INTO user_emails (id, user_id, email, verified_at, is_primary, created_at) VALUES (?,?,?,?,?,?)", emails)
        db.executemany("INSERT INTO identities (id, user_id, provider, issuer, subject, claims, created_at, last_login_at) VALUES (?,?,?,?,?,?,?,?)", identities)
    db.execute("ANALYZE")
    db.close()


def seed_postgres(url, n):
    users, emails, identities = rows(n)
    for table, cols, data in (
        ("users", "id, display_name, disabled, is_admin, created_at, updated_at, external_id", users),
        ("user_emails", "id, user_id, email, verified_at, is_primary, created_at", emails),
        ("identities", "id, user_id, provider, issuer, subject, claims, created_at, last_login_at", identities),
    ):
        buf = io.StringIO()
        csv.writer(buf).writerows(data)
        subprocess.run(["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-c",
                        f"\\copy {table} ({cols}) FROM STDIN WITH (FORMAT csv)"],
                       input=buf.getvalue(), text=True, check=True)
    subprocess.run(["psql", url, "-q", "-c", "ANALYZE"], check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    argv = sys.argv[1:]
    opts = {"--users": 100_000, "--requests": 200}
    args = []
    i = 0
    while i < len(argv):
        if argv[i] in opts:
            opts[argv[i]] = int(argv[i + 1])
            i += 2
        else:
            args.append(argv[i])
            i += 1
    n, per_kind = opts["--users"], opts["--requests"]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.dirname(__file__), "..", "target"))
    binary = os.path.abspath(args[0] if args else os.path.join(target, "release", "braid"))
    if not os.access(binary, os.X_OK):
        sys.exit(f"no braid binary at {binary} (cargo build --release -p braid-server)")
    key = "braid_ak_" + secrets.token_urlsafe(32)
    key_hash = hashlib.sha256(key.encode()).hexdigest()
    with tempfile.TemporaryDirectory() as d:
        url = os.environ.get("BRAID_BENCH_DATABASE_URL") or f"sqlite://{d}/braid.db"
        port = free_port()
        config = os.path.join(d, "braid.toml")
        with open(config, "w") as f:
            f.write(f'[server]\nhost = "127.0.0.1"\nport = {port}\n\n[database]\nurl = "{url}"\n\n'
                    f'[admin]\nkeys = [{{ name = "bench", hash = "{key_hash}" }}]\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("BRAID_") and k != "RUST_LOG"}
        env["RUST_LOG"] = "warn"
        subprocess.run([binary, "migrate", "--config", config], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        t0 = time.perf_counter()
        if url.startswith("sqlite://"):
            seed_sqlite(url[len("sqlite://"):], n)
        else:
            seed_postgres(url, n)
        print(f"seeded {n} users ({'sqlite' if url.startswith('sqlite') else 'postgres'}) in {time.perf_counter() - t0:.1f} s")
        proc = subprocess.Popen([binary, "serve", "--config", config], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 30
            while True:
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    c.request("GET", "/readyz")
                    if c.getresponse().status == 200:
                        break
                except OSError:
                    pass
                if time.time() > deadline or proc.poll() is not None:
                    sys.exit("braid did not become ready")
                time.sleep(0.05)
            run(port, key, n, per_kind)
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def run(port, key, n, per_kind):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {key}"}

    def get(path):
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            sys.exit(f"{path}: {r.status} {body[:200]!r}")
        return json.loads(body)

    first = get("/admin/api/users?limit=50")
    cursor = first["next_cursor"]
    rnd = random.Random(7)
    # (label, path maker, expected number of users on the page)
    kinds = [
        ("newest 50 (no query)", lambda: "/admin/api/users?limit=50", 50),
        ("next page by cursor", lambda: f"/admin/api/users?limit=50&cursor={cursor}", 50),
        ("email, whole address", lambda: (lambda i: f"/admin/api/users?email={FIRST[i % 20]}.{LAST[(i // 20) % 20]}{i}@example{i % 50}.com")(rnd.randrange(n)), 1),
        ("email prefix, ~5,000 match", lambda: f"/admin/api/users?email={rnd.choice(FIRST)}.", 50),
        ("name prefix, ~5,000 match", lambda: f"/admin/api/users?name={rnd.choice(FIRST).title()}", 50),
        ("external id", lambda: f"/admin/api/users?external_id=ext-{rnd.randrange(n)}", 1),
        ("q = user id", None, 1),
        ("q = text (all fields)", lambda: f"/admin/api/users?q={rnd.choice(FIRST)}.{rnd.choice(LAST)}", 50),
    ]
    ids = [u["id"] for u in first["users"]]
    kinds[6] = ("q = user id", lambda: f"/admin/api/users?q={rnd.choice(ids)}", 1)
    print(f"{'search':32} {'median':>8} {'p95':>8} {'p99':>8} {'max':>8}  (ms, {per_kind} requests each)")
    for label, make, expected in kinds:
        for _ in range(10):
            get(make())
        times = []
        for _ in range(per_kind):
            path = make()
            t = time.perf_counter()
            page = get(path)
            times.append((time.perf_counter() - t) * 1000)
            if len(page["users"]) != expected:
                sys.exit(f"{path}: {len(page['users'])} users, expected {expected}")
        times.sort()
        q = lambda p: times[min(len(times) - 1, int(p * len(times)))]
        print(f"{label:32} {statistics.median(times):8.2f} {q(0.95):8.2f} {q(0.99):8.2f} {times[-1]:8.2f}")


if __name__ == "__main__":
    main()
