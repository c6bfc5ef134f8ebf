#!/usr/bin/env python3
"""Measures the disk's flush latency where the servers keep their data:
300 x (4 KiB pwrite + fdatasync) in <dir>, prints JSON {p50_ms, p90_ms,
p99_ms, max_ms}. Both servers' durable acks wait for such flushes, and on a
shared virtual disk this latency moves by an order of magnitude over an
hour, so the comparison records it before and after the run."""
import json
import os
import sys
import time

path = os.path.join(sys.argv[1] if len(sys.argv) > 1 else ".", "fsync-probe.tmp")
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
lat = []
try:
    for i in range(300):
        os.pwrite(fd, b"x" * 4096, (i % 16) * 4096)
        t = time.perf_counter()
        os.fdatasync(fd)
        lat.append((time.perf_counter() - t) * 1000)
finally:
    os.close(fd)
    os.unlink(path)
lat.sort()
print(json.dumps({"p50_ms": round(lat[150], 3), "p90_ms": round(lat[270], 3),
                  "p99_ms": round(lat[297], 3), "max_ms": round(lat[-1], 3)}))
