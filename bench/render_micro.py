#!/usr/bin/env python3
"""Machine facts and docs/benchmarks.md for the micro benchmarks.

Two sub-commands, both used by bench/run_micro.sh:

  render_micro.py machine --bench-dir DIR --out machine.json
      Records the machine (CPUs, CPU model, RAM, kernel, the filesystem of
      DIR, where the LMDB files go), the date, the load average and the git
      revision, before the run.

  render_micro.py render --json micro.json --machine machine.json \
                         --command CMD --bench-command CMD \
                         --doc docs/benchmarks.md [--notes FILE]
      Rewrites the section "## Engine and store microbenchmarks" of the doc
      from Google Benchmark's JSON (aggregates of repetitions; medians are
      reported), then appends the hand-written notes. Every other section
      of the doc is kept as it is, so other tools can own other "## "
      sections of the same page. The first render stores the load after the
      run in machine.json; re-rendering the same files (e.g. after editing
      the notes) reproduces the same page.

Only the standard library: runs with Debian's python3.
"""

import argparse
import json
import os
import platform
import re
import subprocess
import sys
from datetime import datetime, timezone

SECTION = "## Engine and store microbenchmarks"
EXPECTED_DURABLE_RATE = 100_000  # the bar for kSync batches of 100


# ---- machine facts -----------------------------------------------------------------


def _run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib():
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / (1024 * 1024)
    except OSError:
        pass
    return 0.0


def _load():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _pressure():
    """Linux PSI 'some avg60' for cpu and io: % of time something waited."""
    out = {}
    for res in ("cpu", "io"):
        try:
            with open(f"/proc/pressure/{res}", encoding="utf-8") as f:
                for line in f:
                    if line.startswith("some"):
                        out[res] = float(line.split("avg60=")[1].split()[0])
        except (OSError, IndexError, ValueError):
            pass
    return out


def _filesystem(path):
    # `df -T PATH`: device, type, ...; the mount point is the last column.
    lines = _run(["df", "-T", path]).splitlines()
    if len(lines) < 2:
        return {"path": path, "device": "?", "type": "?", "mount": "?"}
    cols = lines[-1].split()
    return {"path": path, "device": cols[0], "type": cols[1], "mount": cols[-1]}


def collect_machine(bench_dir, repo):
    block = ""
    fs = _filesystem(bench_dir)
    dev = os.path.basename(fs["device"])
    rot = f"/sys/block/{dev}/queue/rotational"
    if os.path.exists(rot):
        with open(rot, encoding="utf-8") as f:
            block = f"/sys/block/{dev}/queue/rotational = {f.read().strip()}"
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": _run(["nproc"]) or str(os.cpu_count()),
        "cpu_model": _cpu_model(),
        "mem_gib": round(_mem_total_gib(), 1),
        "kernel": platform.release(),
        "os": _run(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "compiler": _run(["sh", "-c", "c++ --version | head -n1"]),
        "bench_fs": fs,
        "bench_fs_block": block,
        "git": _run(["git", "-C", repo, "describe", "--always", "--dirty"]),
        "load_before": _load(),
        "pressure_before": _pressure(),
    }


# ---- reading Google Benchmark's JSON -------------------------------------------------


class Results:
    """Median (and cv) of each run name, from --benchmark_report_aggregates_only."""

    def __init__(self, doc):
        self.context = doc.get("context", {})
        self.median = {}
        self.cv = {}
        self.errors = {}
        for b in doc.get("benchmarks", []):
            name = b.get("run_name", b["name"])
            if b.get("error_occurred"):
                self.errors[name] = b.get("error_message", "error")
                continue
            agg = b.get("aggregate_name")
            if agg == "median":
                self.median[name] = b
            elif agg == "cv":
                self.cv[name] = b
            elif agg is None and b.get("run_type") == "iteration":
                self.median.setdefault(name, b)  # a run without repetitions

    def get(self, name):
        return self.median.get(name)

    def find(self, pattern):
        rx = re.compile(pattern)
        return [(n, b) for n, b in self.median.items() if rx.search(n)]

    def cv_of(self, name, field="real_time"):
        b = self.cv.get(name)
        return None if b is None else b.get(field)


_NS_PER = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def ns(b, field="real_time"):
    return b[field] * _NS_PER[b.get("time_unit", "ns")]


def fmt_rate(x):
    if x is None:
        return "n/a"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= div:
            return f"{x / div:.3g} {unit}"
    return f"{x:.3g}"


def fmt_ns(x):
    if x is None:
        return "n/a"
    if x >= 1e6:
        return f"{x / 1e6:.3g} ms"
    if x >= 1e3:
        return f"{x / 1e3:.3g} µs"
    return f"{x:.3g} ns"


def fmt_num(x):
    return "n/a" if x is None else f"{x:,.0f}"


def fmt_cv(x):
    return "n/a" if x is None else f"{100 * x:.0f}%"


def fmt_bytes(x):
    if x is None:
        return "n/a"
    if x >= 1024 * 1024:
        return f"{x / (1024 * 1024):.2f} MiB"
    return f"{x / 1024:.0f} KiB"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def fmt_ckpt(b):
    v = b.get("checkpoint_per_msg")
    return "—" if v is None else fmt_ns(v * 1e9)


def fmt_ratio(x):
    return "n/a" if x is None else f"{x:.1f}×"


# ---- the section -------------------------------------------------------------------


def render_section(res, machine, command, bench_command, notes):
    out = []
    w = out.append
    fs = machine["bench_fs"]
    w(SECTION)
    w("")
    w("Google Benchmark micro benchmarks of the library itself (`bench/*_bench.cpp`, one")
    w("binary, `chatcore_micro_bench`): id generation, `Store::commit` group commit, group")
    w("fan-out through the `Engine`, and the per-frame checks. Every figure is the **median of")
    w("5 repetitions**; *cv* is the coefficient of variation across them. Wall-clock time is")
    w("the headline wherever I/O or threads are involved; CPU time is shown beside it because")
    w("on a shared machine the gap between the two is time spent waiting for a CPU.")
    w("")
    w("Generated by `bench/run_micro.sh` (`bench/render_micro.py`); do not edit by hand,")
    w("edit `bench/micro_notes.md` for the analysis below the tables.")
    w("")
    w("### How this was produced")
    w("")
    w("```sh")
    w(command)
    w("# which builds build-bench/ (CMAKE_BUILD_TYPE=Release) and runs:")
    w(bench_command)
    w("```")
    w("")
    w("| | |")
    w("|---|---|")
    w(f"| date | {machine['date']} (git `{machine['git']}`) |")
    w(f"| CPU | {machine['cpu_model']}, `nproc` = {machine['nproc']} |")
    w(f"| RAM | {machine['mem_gib']} GiB |")
    w(f"| OS, kernel | {machine['os']}, Linux {machine['kernel']} |")
    w(f"| compiler | {machine['compiler']}, `-O3 -DNDEBUG` (CMake Release) |")
    blk = f"; {machine['bench_fs_block']}" if machine.get("bench_fs_block") else ""
    w(f"| LMDB files | `{fs['path']}`: **{fs['type']}** on `{fs['device']}` "
      f"(mounted at `{fs['mount']}`{blk}); not tmpfs |")
    la_b = ", ".join(str(x) for x in machine.get("load_before", []))
    la_a = ", ".join(str(x) for x in machine.get("load_after", []))
    w(f"| load average (1, 5, 15 min) | before: {la_b}; after: {la_a} |")
    pb, pa = machine.get("pressure_before", {}), machine.get("pressure_after", {})
    if pb or pa:
        def psi(p):
            return ", ".join(f"{k} {v:.0f}%" for k, v in sorted(p.items())) or "n/a"
        w(f"| pressure stall, some avg60 (`/proc/pressure`) | before: {psi(pb)}; "
          f"after: {psi(pa)} (share of time a task waited for a CPU / for I/O) |")
    lib = res.context.get("library_build_type", "?")
    w(f"| Google Benchmark | {res.context.get('library_version', '1.7')} "
      f"(Debian's library reports build type `{lib}`: its own harness, not our code) |")
    w("")
    if res.errors:
        w("**Benchmarks that reported an error (no figure):**")
        w("")
        for name, msg in sorted(res.errors.items()):
            w(f"- `{name}`: {msg}")
        w("")

    # -- store commits
    w("### Store::commit (group commit)")
    w("")
    w("One iteration = one `commit()` of a batch of 1-on-1 messages (100-byte bodies, random")
    w("sender→peer pairs among 1,000 users, 4,096 distinct conversations) into a fresh LMDB")
    w("environment per run: one journal record, flushed in kSync, which is what a sender's ack")
    w("waits for. Checkpoints apply the journal to LMDB meanwhile on the store's own thread (the")
    w("daemon's defaults: every 16 MiB or 1 s), and one more after the timed loop applies the")
    w("rest. *checkpoint/msg* is the checkpoints' wall time per message (on the machine's other")
    w("core, as in the daemon); *written/batch* is every byte the process handed to")
    w("`write()`/`pwritev()` per commit (`/proc/self/io` wchar): journal records and LMDB's")
    w("copy-on-write pages.")
    w("")
    w("| store | durability | batch | time/batch (wall) | CPU/batch | messages/s | "
      "time/message | checkpoint/msg | written/batch | cv |")
    w("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    rates = {}
    for sync in (1, 0):
        for batch in (1, 16, 100, 256):
            name = f"BM_LmdbCommit/batch:{batch}/sync:{sync}/real_time"
            b = res.get(name)
            if b is None:
                continue
            rate = b.get("items_per_second")
            rates[(sync, batch)] = rate
            w(f"| LMDB | {'kSync' if sync else 'kNoSync'} | {batch} | {fmt_ns(ns(b))} | "
              f"{fmt_ns(ns(b, 'cpu_time'))} | **{fmt_num(rate)}** | "
              f"{fmt_ns(ns(b) / batch)} | {fmt_ckpt(b)} | {fmt_bytes(b.get('written_per_batch'))} | "
              f"{fmt_cv(res.cv_of(name))} |")
    mem = res.get("BM_MemoryStoreCommit/batch:256/real_time")
    if mem is not None:
        w(f"| MemoryStore | (none) | 256 | {fmt_ns(ns(mem))} | {fmt_ns(ns(mem, 'cpu_time'))} | "
          f"**{fmt_num(mem.get('items_per_second'))}** | {fmt_ns(ns(mem) / 256)} | — | — | "
          f"{fmt_cv(res.cv_of('BM_MemoryStoreCommit/batch:256/real_time'))} |")
    fsync = res.get("BM_Fdatasync4K/append:0/real_time")
    fsync_append = res.get("BM_Fdatasync4K/append:1/real_time")
    if fsync is not None:
        w("")
        line = (f"Floor under every kSync commit, measured in the same run and directory tree: "
                f"`pwrite` of one 4 KiB page + `fdatasync` = **{fmt_ns(ns(fsync))}** median "
                f"(cv {fmt_cv(res.cv_of('BM_Fdatasync4K/append:0/real_time'))}) when it "
                f"overwrites a preallocated page")
        if fsync_append is not None:
            line += (f", **{fmt_ns(ns(fsync_append))}** "
                     f"(cv {fmt_cv(res.cv_of('BM_Fdatasync4K/append:1/real_time'))}) when it "
                     f"appends (the flush then also commits the new size to the ext4 journal, "
                     f"as for a growing `data.mdb`)")
        w(line + ". A kSync `commit()` flushes once: its journal record, written into the "
          "segment's preallocated zeros (the `append:0` case; `append:1` once a segment "
          "outgrows its preallocation). A checkpoint's LMDB transaction flushes twice (data "
          "pages with `fdatasync`, then the meta page through an `O_DSYNC` descriptor).")
    hot_rows = []
    for sync in (1, 0):
        for batch in (100, 256):
            name = f"BM_LmdbCommitHot/batch:{batch}/sync:{sync}/real_time"
            b = res.get(name)
            if b is None:
                continue
            hot_rows.append(
                f"| LMDB, 10 users | {'kSync' if sync else 'kNoSync'} | {batch} | {fmt_ns(ns(b))} | "
                f"{fmt_ns(ns(b, 'cpu_time'))} | **{fmt_num(b.get('items_per_second'))}** | "
                f"{fmt_ns(ns(b) / batch)} | {fmt_ckpt(b)} | {fmt_bytes(b.get('written_per_batch'))} | "
                f"{fmt_cv(res.cv_of(name))} |")
    if hot_rows:
        w("")
        w("The best case for comparison: the same among only **10 users** (45 conversations), so a")
        w("batch keeps touching the same few pages:")
        w("")
        w("| store | durability | batch | time/batch (wall) | CPU/batch | messages/s | "
          "time/message | checkpoint/msg | written/batch | cv |")
        w("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
        for row in hot_rows:
            w(row)
    ckpt_rows = []
    for messages in (1024, 10240, 51200):
        name = f"BM_LmdbCheckpoint/messages:{messages}/real_time"
        b = res.get(name)
        if b is None:
            continue
        ckpt_rows.append(
            f"| {fmt_num(messages)} | {fmt_ns(ns(b))} | {fmt_ns(ns(b, 'cpu_time'))} | "
            f"**{fmt_num(b.get('items_per_second'))}** | {fmt_ns(ns(b) / messages)} | "
            f"{fmt_bytes(b.get('written_per_msg'))} | {fmt_cv(res.cv_of(name))} |")
    if ckpt_rows:
        w("")
        w("A checkpoint alone (`BM_LmdbCheckpoint`, kSync): one iteration applies *messages*")
        w("journaled messages (the same traffic, 1,000 users) to LMDB in one go, flushed. Its")
        w("messages/s is what the checkpoint thread sustains; *written/message* shows a page")
        w("touched by many messages being written once:")
        w("")
        w("| messages per checkpoint | time (wall) | CPU | messages/s | time/message | "
          "written/message | cv |")
        w("|--:|--:|--:|--:|--:|--:|--:|")
        for row in ckpt_rows:
            w(row)
    w("")
    w("Ratios, from the medians above (messages/s):")
    w("")
    w("| batch | kNoSync ÷ kSync |")
    w("|--:|--:|")
    for batch in (1, 16, 100, 256):
        w(f"| {batch} | {fmt_ratio(ratio(rates.get((0, batch)), rates.get((1, batch))))} |")
    w("")
    w("| durability | batch 16 ÷ batch 1 | batch 100 ÷ batch 1 | batch 256 ÷ batch 1 |")
    w("|---|--:|--:|--:|")
    for sync in (1, 0):
        cells = [fmt_ratio(ratio(rates.get((sync, b)), rates.get((sync, 1)))) for b in (16, 100, 256)]
        w(f"| {'kSync' if sync else 'kNoSync'} | " + " | ".join(cells) + " |")
    if mem is not None and rates.get((0, 256)):
        w("")
        w(f"MemoryStore ÷ LMDB kNoSync at batch 256: "
          f"{fmt_ratio(ratio(mem.get('items_per_second'), rates.get((0, 256))))}.")
    w("")
    durable = rates.get((1, 100))
    if durable is not None:
        verdict = "**met**" if durable > EXPECTED_DURABLE_RATE else "**not met**"
        hot = res.get("BM_LmdbCommitHot/batch:100/sync:1/real_time")
        hot_txt = (f"; {fmt_num(hot.get('items_per_second'))} messages/s in the 10-user best case"
                   if hot else "")
        fs_txt = f"; one `fdatasync` here: {fmt_ns(ns(fsync))}" if fsync is not None else ""
        w(f"**The issue's expectation** — durable (kSync) commits of 100-message batches "
          f"\"well above 100,000 messages/s\": {verdict} in this run: "
          f"**{fmt_num(durable)} messages/s** with 1,000 users "
          f"({fmt_num(rates.get((0, 100)))} messages/s in kNoSync{hot_txt}{fs_txt}). "
          f"See the analysis below.")
        w("")

    # -- fan-out
    w("### Group fan-out through the Engine")
    w("")
    w("One iteration = *burst* messages sent as `Send` frames by a member of a 100-member group")
    w("whose 100 members each have one authenticated session (`storage_thread = false`), then one")
    w("`poll()`: verify, authorise, validate, commit (the burst is one batch), Ack, and 100")
    w("`Deliver` frames per message (the sender's own session included). Sessions copy each")
    w("frame, as a transport must. The run fails unless the engine counted exactly 100")
    w("deliveries per message. Burst 1 is the latency of one message from `Send` to its last")
    w("`Deliver`.")
    w("")
    w("| store | burst | body | time/message (wall) | CPU/message | deliveries/s | messages/s | "
      "written/message | cv |")
    w("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for label, family in (("MemoryStore", "BM_FanoutGroup100_Memory"),
                          ("LMDB kNoSync", "BM_FanoutGroup100_LmdbNoSync"),
                          ("LMDB kSync", "BM_FanoutGroup100_LmdbSync")):
        for burst, body in ((1, 100), (16, 100), (1, 100000)):
            name = f"{family}/burst:{burst}/body:{body}/real_time"
            b = res.get(name)
            if b is None:
                continue
            written = b.get("written_per_msg")
            w(f"| {label} | {burst} | {body:,} B | {fmt_ns(ns(b) / burst)} | "
              f"{fmt_ns(ns(b, 'cpu_time') / burst)} | **{fmt_num(b.get('items_per_second'))}** | "
              f"{fmt_num(b.get('msgs_per_s'))} | "
              f"{'—' if not written else fmt_bytes(written)} | {fmt_cv(res.cv_of(name))} |")
    w("")

    # -- ids
    w("### Snowflake ids")
    w("")
    w("`SnowflakeGenerator::next()` (SystemClock), one generator; with 2 threads both share it")
    w("(a compare-and-swap loop on one 64-bit word).")
    w("")
    w("| threads | wall time/id (per thread) | CPU time/id | ids/s (all threads, wall) | cv |")
    w("|--:|--:|--:|--:|--:|")
    for t in (1, 2):
        name = f"BM_SnowflakeNext/real_time/threads:{t}"
        b = res.get(name)
        if b is None:
            continue
        w(f"| {t} | {fmt_ns(ns(b))} | {fmt_ns(ns(b, 'cpu_time'))} | "
          f"**{fmt_num(b.get('items_per_second'))}** | {fmt_cv(res.cv_of(name))} |")
    w("")

    # -- validation
    w("### Per-frame checks at the largest legal size")
    w("")
    w("| check | input | CPU time | throughput | cv |")
    w("|---|---|--:|--:|--:|")
    for script, label in (("ascii", "ASCII, 1 byte/char"), ("cjk_3byte", "CJK, 3 bytes/char"),
                          ("emoji_4byte", "emoji, 4 bytes/char")):
        name = f"BM_Utf8Count100kChars/{script}"
        b = res.get(name)
        if b is None:
            continue
        size = b.get("body_bytes", 0)
        w(f"| `utf8_count` (UTF-8 validation) | 100,000 chars, {label} ({size / 1000:.0f} kB) | "
          f"{fmt_ns(ns(b, 'cpu_time'))} | {fmt_rate(b.get('bytes_per_second'))}B/s | "
          f"{fmt_cv(res.cv_of(name, 'cpu_time'))} |")
    b = res.get("BM_VerifyFrameSend400KB")
    if b is not None:
        w(f"| `verify_frame` (FlatBuffers verifier) | Send frame, {b.get('frame_bytes', 0) / 1000:.0f}"
          f" kB (100,000 emoji) | {fmt_ns(ns(b, 'cpu_time'))} | "
          f"size-independent (see notes) | "
          f"{fmt_cv(res.cv_of('BM_VerifyFrameSend400KB', 'cpu_time'))} |")
    w("")

    if notes:
        w(notes.rstrip())
        w("")
    return "\n".join(out) + "\n"


DOC_HEADER = """# Benchmarks

Performance figures of chatcore, each with the command that produced it and the machine it
ran on (DESIGN.md §8). Tests never assert timings; these pages are the record.

"""


def splice(doc_text, section):
    """Replaces SECTION (up to the next '## ' heading) in doc_text, or appends it."""
    lines = doc_text.splitlines(keepends=True)
    start = next((i for i, l in enumerate(lines) if l.rstrip() == SECTION), None)
    if start is None:
        if not doc_text.strip() or not doc_text.lstrip().startswith("# "):
            doc_text = DOC_HEADER
        if not doc_text.endswith("\n\n"):
            doc_text = doc_text.rstrip("\n") + "\n\n"
        return doc_text + section
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
               len(lines))
    tail = "".join(lines[end:])
    return "".join(lines[:start]) + section + ("\n" + tail if tail else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("machine")
    m.add_argument("--bench-dir", required=True)
    m.add_argument("--repo", default=".")
    m.add_argument("--out", required=True)
    r = sub.add_parser("render")
    r.add_argument("--json", required=True)
    r.add_argument("--machine", required=True)
    r.add_argument("--command", required=True)
    r.add_argument("--bench-command", required=True)
    r.add_argument("--doc", required=True)
    r.add_argument("--notes")
    args = ap.parse_args()

    if args.cmd == "machine":
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(collect_machine(args.bench_dir, args.repo), f, indent=1)
        return 0

    with open(args.json, encoding="utf-8") as f:
        res = Results(json.load(f))
    with open(args.machine, encoding="utf-8") as f:
        machine = json.load(f)
    if "load_after" not in machine:
        # First render after the run: record the state the run ended in, so a
        # later re-render of the same JSON (after editing the notes) shows it.
        machine["load_after"] = _load()
        machine["pressure_after"] = _pressure()
        with open(args.machine, "w", encoding="utf-8") as f:
            json.dump(machine, f, indent=1)
    notes = ""
    if args.notes and os.path.exists(args.notes):
        with open(args.notes, encoding="utf-8") as f:
            notes = f.read()
    section = render_section(res, machine, args.command, args.bench_command, notes)
    doc_text = ""
    if os.path.exists(args.doc):
        with open(args.doc, encoding="utf-8") as f:
            doc_text = f.read()
    with open(args.doc, "w", encoding="utf-8") as f:
        f.write(splice(doc_text, section))
    print(f"render_micro: wrote {args.doc} ({len(res.median)} benchmarks, "
          f"{len(res.errors)} errors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
