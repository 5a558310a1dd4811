#!/usr/bin/env python3
"""Reproduces the attack run's two connection cases against a running `courier up` on
127.0.0.1:3000: a slowloris burst and a burst of abandoned long-polls, printing
/metrics and /proc figures before, during and after (docs/RELIABILITY.md, "Connections").

    python3 tests/attack/connections.py <gateway pid> <user token> abandoned [n=1100]
    python3 tests/attack/connections.py <gateway pid> <user token> slowloris

The e2e tests (`tests/e2e/connections.rs`, the hostile matrix) assert the same
behaviour; this script is the larger manual run whose figures the doc reports."""
import asyncio, json, os, sys, time, urllib.request

BASE = "127.0.0.1", 3000
PID = int(sys.argv[1]); TOKEN = sys.argv[2]; MODE = sys.argv[3]

def proc():
    fds = os.listdir(f"/proc/{PID}/fd")
    db = sum(1 for f in fds if "sqlite_db.db" in (os.readlink(f"/proc/{PID}/fd/{f}") if os.path.exists(f"/proc/{PID}/fd/{f}") else ""))
    rss = next(int(l.split()[1]) for l in open(f"/proc/{PID}/status") if l.startswith("VmRSS"))
    return {"fds": len(fds), "db_fds": db, "rss_mib": round(rss / 1024, 1)}

def metrics():
    try:
        page = urllib.request.urlopen("http://127.0.0.1:3000/metrics", timeout=10).read().decode()
    except urllib.error.HTTPError as e:
        return {"metrics": e.code}
    want = ["courier_instances_in_use", "courier_parked_polls", "courier_connections_open",
            "courier_header_timeouts_total", "courier_requests_abandoned_total"]
    return {l.split()[0].replace("courier_", ""): int(float(l.split()[1])) for l in page.splitlines()
            if l.split() and l.split()[0] in want}

def healthz():
    t = time.monotonic()
    try:
        s = urllib.request.urlopen("http://127.0.0.1:3000/healthz", timeout=10).status
    except urllib.error.HTTPError as e:
        s = e.code
    return s, round((time.monotonic() - t) * 1000, 1)

def report(label):
    print(label, json.dumps({**proc(), **metrics(), "healthz": healthz()}), flush=True)

async def abandoned(n):
    async def one():
        r, w = await asyncio.open_connection(*BASE)
        w.write(f"GET /v1/sync?wait=25 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\n\r\n".encode())
        await w.drain()
        return w
    writers = await asyncio.gather(*[one() for _ in range(n)])
    await asyncio.sleep(0.3)
    report("abandoned: during (0.3 s)")
    for w in writers:
        w.transport.abort()
    for t in (0.1, 1, 5, 35):
        await asyncio.sleep(t if t == 0.1 else t - prev)
        prev = t
        report(f"abandoned: {t} s after")

async def slowloris(n, seconds):
    async def one():
        r, w = await asyncio.open_connection(*BASE)
        w.write(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            try:
                w.write(b"x-slow: 1\r\n"); await w.drain()
            except Exception:
                return time.monotonic() - start, b""
            try:
                got = await asyncio.wait_for(r.read(100), 2)
                return time.monotonic() - start, got
            except asyncio.TimeoutError:
                pass
        return None, b""
    results = await asyncio.gather(*[one() for _ in range(n)])
    closed = [t for t, _ in results if t is not None]
    served = sum(1 for _, g in results if g.startswith(b"HTTP/1.1 200"))
    print(f"slowloris: {n} connections, one header line every 2 s for up to {seconds} s: "
          f"{len(closed)} closed by the gateway, after {min(closed):.1f}-{max(closed):.1f} s; {served} served", flush=True)
    report("slowloris: after")

prev = 0.1
report("before")
if MODE == "slowloris":
    asyncio.run(slowloris(200, 50))
else:
    asyncio.run(abandoned(int(sys.argv[4]) if len(sys.argv) > 4 else 1100))
