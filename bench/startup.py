#!/usr/bin/env python3
"""Start-up time, idle memory and binary size of `braid serve` (issue 2 budgets: <= 100 ms to
the first /readyz 200 on SQLite, <= 20 MB idle RSS).

Usage: python3 bench/startup.py [PATH_TO_BRAID] [--runs N]
Default binary: $CARGO_TARGET_DIR/release/braid (build it with `cargo build --release -p braid-server`).
Each run starts braid with no configuration in a fresh empty directory (cold: database created,
migrated, keys generated) and then again in the same directory (warm), polls /readyz every
millisecond and reads VmRSS from /proc after 2 s idle.
"""
import os, socket, statistics, subprocess, sys, tempfile, time

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def ready(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            return s.recv(16)[9:12] == b"200"
    except OSError:
        return False

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1

def run_once(binary, workdir):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRAID_") and k != "RUST_LOG"}
    env["BRAID_SERVER__PORT"] = str(port)
    t0 = time.perf_counter()
    proc = subprocess.Popen([binary, "serve"], cwd=workdir, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = t0 + 10
        while not ready(port):
            if time.perf_counter() > deadline or proc.poll() is not None:
                raise RuntimeError("braid did not become ready")
            time.sleep(0.001)
        elapsed_ms = (time.perf_counter() - t0) * 1000
        time.sleep(2)
        return elapsed_ms, rss_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=15)

def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    runs = 10
    if "--runs" in sys.argv:
        runs = int(sys.argv[sys.argv.index("--runs") + 1])
        args = [a for a in args if a != str(runs)]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.dirname(__file__), "..", "target"))
    binary = os.path.abspath(args[0] if args else os.path.join(target, "release", "braid"))
    cold, warm, rss = [], [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as d:
            ms, kib = run_once(binary, d)
            cold.append(ms); rss.append(kib)
            ms, kib = run_once(binary, d)
            warm.append(ms); rss.append(kib)
    size = os.path.getsize(binary)
    print(f"binary: {binary} ({size / 1e6:.1f} MB)")
    for name, xs in (("cold start -> /readyz 200", cold), ("warm start -> /readyz 200", warm)):
        print(f"{name}: median {statistics.median(xs):.1f} ms, min {min(xs):.1f}, max {max(xs):.1f} ({runs} runs)")
    print(f"idle RSS after 2 s: median {statistics.median(rss) / 1024:.1f} MB, max {max(rss) / 1024:.1f} MB")

if __name__ == "__main__":
    main()
