"""``python -m bot bench [--quick] [--postgres URL]``: run the scenarios, print a table with ratios
against the baselines measured in the same run, and write ``bench/results.json``.

Quick: a 1,000-check-in burst on SQLite and small reply/scale runs (< 3 min). Full: 1,000 and
10,000 bursts at 0 and 20 ms of server latency on SQLite and PostgreSQL (``--postgres`` or
``TEST_DATABASE_URL``), the naive APScheduler peer, the rate-limited run, 5,000 replies alone and
during a 10,000-check-in wave, and 100,000 patients / 1,000,000 check-in rows (< 20 min).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bot.bench import parsing, scenarios
from bot.bench.naive import run_naive
from bot.bench.server import chat_of, start_server
from bot.logs import configure_logging

#: In the folder the bench is run from (a clone's root: its ignored bench/ folder), not in the
#: installed package.
RESULTS = Path.cwd() / "bench" / "results.json"
#: The bot's and the fake servers' logs during a run (WARNING and above): kept out of the table.
LOG = RESULTS.with_name("bench.log")
#: The issue's targets. Dispatch: share of the client ceiling measured in the same run at the
#: same latency (0 ms / 20 ms). Replies: answers per second per backend, alert and advice p99.
TARGETS: dict[str, Any] = {
    "ceiling_ratio": {0.0: 0.80, 20.0: 0.70},
    "max_stall_ms": 100.0,
    "rate_ratio": 0.95,
    "answers_per_s": {"sqlite": 250.0, "postgresql": 500.0},
    "alert_p99_ms": 250.0,
    "advice_p99_ms": 1000.0,
    "startup_s": 5.0,
    "rss_mb": 200.0,
    "idle_tick_growth": 1.5,
    # Per ordinary reply (the replies rows without a wave), on average.
    "statements_per_reply": 3.0,
    "commits_per_reply": 1.0,
}


_T0 = time.perf_counter()


def _say(text: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.0f} s] {text}", flush=True)


def _naive(jobs: int, latency: float, *, tuned: bool, limit: float) -> dict[str, Any]:
    server = start_server(jobs, latency=latency)
    store = Path(tempfile.mkdtemp(prefix="cryo-naive-")) / "jobs.sqlite"
    try:
        result = run_naive(server.api_url, server.token, jobs, store, tuned=tuned, limit=limit)
        since = result.get("due_at", 0.0) - 1.0 if not result.get("hung") else 0.0
        stats = asyncio.run(server.stats(since))
    finally:
        server.stop()
    counts = [stats["per_chat"].get(str(chat_of(i)), 0) for i in range(1, jobs + 1)]
    delivered = sum(1 for c in counts if c)
    span = (stats["last"] or 0.0) - result.get("due_at", 0.0)
    return {
        "jobs": jobs,
        "latency_ms": latency * 1000,
        "settings": "tuned" if tuned else "default",
        **result,
        "delivered": delivered,
        "lost": jobs - delivered,
        "duplicates": sum(c - 1 for c in counts if c > 1),
        "msgs_per_s": delivered / span if delivered and span > 0 else 0.0,
    }


SECTIONS = ("ceiling", "dispatch", "naive", "rate_limited", "replies", "scale", "parsing")


def run(*, quick: bool, postgres: str | None, only: tuple[str, ...] = SECTIONS) -> dict[str, Any]:
    """Run the scenarios of ``only`` (all by default); bench/results.json is rewritten after
    each section, keeping the other sections of an earlier run when ``only`` is given."""
    started = time.perf_counter()
    backends: list[str | None] = [None] if quick or not postgres else [None, postgres]
    bursts = [1000] if quick else [1000, 10_000]
    latencies = [0.0, 0.02]
    results: dict[str, Any] = {name: [] for name in SECTIONS}
    if only != SECTIONS and RESULTS.exists():
        results.update(json.loads(RESULTS.read_text(encoding="utf-8")))
    results["machine"] = {
        "cpus": psutil.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": os.getloadavg(),
    }
    results["quick"] = quick

    def section(name: str) -> list[Any]:
        fresh: list[Any] = []
        results[name] = fresh
        return fresh

    def save() -> None:
        results["total_seconds"] = time.perf_counter() - started
        RESULTS.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")

    if "ceiling" in only or "dispatch" in only:  # a dispatch ratio needs this run's ceiling
        out = section("ceiling")
        for latency in latencies:
            _say(f"ceiling: PTB send_message at {latency * 1000:.0f} ms ...")
            out.append(asyncio.run(scenarios.ceiling(1000, latency=latency)))
        save()
    if "dispatch" in only:
        out = section("dispatch")
        ceilings = {c["latency_ms"]: c["best"] for c in results["ceiling"]}
        for backend in backends:
            for n in bursts:
                for latency in latencies:
                    name = "postgresql" if backend else "sqlite"
                    _say(f"dispatch: {n} check-ins, {name}, {latency * 1000:.0f} ms ...")
                    row = asyncio.run(scenarios.dispatch_wave(n, latency=latency, postgres=backend))
                    row["ceiling_msgs_per_s"] = ceilings[row["latency_ms"]]
                    row["ratio"] = row["msgs_per_s"] / row["ceiling_msgs_per_s"]
                    out.append(row)
                    save()
    if "naive" in only:
        out = section("naive")
        naive_runs = [(1000, 0.0, False, 40.0), (1000, 0.02, True, 40.0)]
        if not quick:
            naive_runs += [(1000, 0.02, False, 60.0), (1000, 0.0, True, 60.0)]
            naive_runs.append((10_000, 0.0, True, 240.0))
        for jobs, latency, tuned, limit in naive_runs:
            kind = "tuned" if tuned else "default"
            _say(f"naive peer: {jobs} jobs, {kind}, {latency * 1000:.0f} ms")
            out.append(_naive(jobs, latency, tuned=tuned, limit=limit))
            save()
    if "rate_limited" in only:
        _say("rate limiter on, Telegram's limits enforced ...")
        limited = 300 if quick else 900
        section("rate_limited").append(
            asyncio.run(
                scenarios.dispatch_wave(limited, latency=0.0, postgres=None, rate_limit=True)
            )
        )
        save()
    if "replies" in only:
        out = section("replies")
        answering, wave = (1000, 1000) if quick else (5000, 10_000)
        for backend in backends:
            for during in (0, wave):
                _say(f"replies: {answering} answers, wave {during} ...")
                out.append(asyncio.run(scenarios.replies(answering, wave=during, postgres=backend)))
                save()
    if "scale" in only:
        out = section("scale")
        for backend in backends:
            for size in [1000] if quick else [1000, 100_000]:
                _say(f"scale: {size} patients ...")
                out.append(asyncio.run(scenarios.scale(size, postgres=backend)))
                save()
    if "parsing" in only:
        _say("parsing: red-flag scan of a patient message ...")
        section("parsing").append(parsing.parsing_speed(300 if quick else 3000))
        save()
    save()
    return results


def _ok(good: bool) -> str:
    return "ok" if good else "MISSED"


def _dispatch_target(row: dict[str, Any]) -> float:
    """The share of the ceiling a dispatch row must reach (the 20 ms target above 0 ms)."""
    by_latency: dict[float, float] = TARGETS["ceiling_ratio"]
    return by_latency[0.0] if row["latency_ms"] == 0 else by_latency[20.0]


def table(results: dict[str, Any]) -> str:
    """The human summary, with ratios against the baselines of the same run."""
    lines = [
        f"machine: {results['machine']['cpus']} CPUs, {results['machine']['memory_gb']} GB, "
        f"Python {results['machine']['python']}, load average "
        + " ".join(f"{v:.1f}" for v in results["machine"]["load_average"]),
        "",
        "ceiling (PTB send_message, best of concurrency 1/8/64/128, httpx or aiohttp transport):",
    ]
    for c in results["ceiling"]:
        by = ", ".join(f"{k}: {v:.0f}/s" for k, v in c["by_concurrency"].items())
        lines.append(f"  {c['latency_ms']:>4.0f} ms  best {c['best']:7.0f} msg/s   ({by})")
    lines += ["", "dispatch burst (all due at once; one tick loop, the bench's):"]
    lines.append(
        "  db          n       lat  msg/s  ceiling  ratio  target  lost  dup  stall ms  all sent"
    )
    for d in results["dispatch"]:
        target = _dispatch_target(d)
        ratio = d.get("ratio", float("nan"))
        good = ratio >= target and d["lost"] == 0 and d["duplicates"] == 0
        good = good and d["max_stall_ms"] < TARGETS["max_stall_ms"]
        good = good and d.get("tick_sent_all", False)
        lines.append(
            f"  {d['backend']:<10} {d['checkins']:>6} {d['latency_ms']:>5.0f}  {d['msgs_per_s']:6.0f}"
            f"  {d.get('ceiling_msgs_per_s', float('nan')):7.0f}  {ratio:5.0%}  >= {target:.0%}"
            f"  {d['lost']:>4} {d['duplicates']:>4}  {d['max_stall_ms']:8.1f}"
            f"  {'yes' if d.get('tick_sent_all') else 'NO'} {d['sent']:>6}  {_ok(good)}"
        )
    lines += ["", "naive peer (one APScheduler job per check-in, SQLAlchemyJobStore):"]
    for p in results["naive"]:
        state = (
            f"HUNG (killed after {p['limit_s']:.0f} s)"
            if p.get("hung")
            else f"{p['msgs_per_s']:6.0f} msg/s  stall {p.get('max_stall_ms', 0):7.0f} ms  "
            f"missed {p.get('missed', 0)} errors {p.get('error', 0)}"
        )
        lines.append(
            f"  {p['jobs']:>6} jobs {p['latency_ms']:>3.0f} ms {p['settings']:<8} delivered "
            f"{p['delivered']:>6}  lost {p['lost']:>6}  dup {p['duplicates']}  {state}"
        )
    lines += ["", "rate limiter on (AIORateLimiter, fake server enforces Telegram's limits):"]
    for r in results["rate_limited"]:
        ratio = r["msgs_per_s"] / 30
        lines.append(
            f"  {r['checkins']} check-ins: {r['msgs_per_s']:.1f} msg/s = {ratio:.0%} of 30/s, "
            f"429s: {r['http_429']}, lost {r['lost']}, dup {r['duplicates']}  "
            f"{_ok(ratio >= 0.95 and r['http_429'] == 0)}"
        )
    lines += ["", "replies (everyone answers at once; 1 % report a pain of 9 → staff alert):"]
    alert_target, advice_target = TARGETS["alert_p99_ms"], TARGETS["advice_p99_ms"]
    for r in results["replies"]:
        rate_target: float = TARGETS["answers_per_s"][r["backend"]]
        lines.append(
            f"  {r['backend']:<10} {r['patients']} answers, wave {r['wave']:>5}: saved {r['saved']}, "
            f"lost {r['lost']} {_ok(r['lost'] == 0)}, dup {r['duplicates']} "
            f"{_ok(r['duplicates'] == 0)}, stall {r['max_stall_ms']:.0f} ms "
            f"{_ok(r['max_stall_ms'] < TARGETS['max_stall_ms'])}"
        )
        lines.append(
            f"      {r['answers_per_s']:6.0f} answers/s (>= {rate_target:.0f}) "
            f"{_ok(r['answers_per_s'] >= rate_target)};  staff card p50 {r['alert_p50_ms']:.0f} ms"
            f" p99 {r['alert_p99_ms']:.0f} ms (< {alert_target:.0f}) "
            f"{_ok(r['alert_p99_ms'] < alert_target)};  advice p99 {r['advice_p99_ms']:.0f} ms "
            f"(< {advice_target:.0f}) {_ok(r['advice_p99_ms'] < advice_target)}"
        )
        if "statements_per_reply" in r:
            statements, commits = r["statements_per_reply"], r["commits_per_reply"]
            line = f"      {statements:.1f} SQL statements and {commits:.2f} commits per reply"
            if r["wave"]:
                line += " (the wave's included)"
            else:
                line += (
                    f" (<= {TARGETS['statements_per_reply']:.0f} "
                    f"{_ok(statements <= TARGETS['statements_per_reply'])}, "
                    f"<= {TARGETS['commits_per_reply']:.0f} "
                    f"{_ok(commits <= TARGETS['commits_per_reply'])})"
                )
            lines.append(line)
    lines += ["", "scale:"]
    for s in results["scale"]:
        good = s["startup_s"] < 5 and s["rss_mb"] < 200
        lines.append(
            f"  {s['backend']:<10} {s['patients']:>7} patients / {s['checkin_rows']:>8} rows: "
            f"start-up {s['startup_s']:.2f} s, RSS {s['rss_mb']:.0f} MB, tick idle "
            f"{s['tick_idle_ms']:.1f} ms, tick with 100 due {s['tick_100_due_ms']:.0f} ms  "
            f"{_ok(good)}"
        )
        lines.append("    query plans of the tick's statements on checkins (EXPLAIN):")
        for plan in s["claim_plan"]:
            lines.append(f"      {plan}")
    growth_target: float = TARGETS["idle_tick_growth"]
    for backend in ("sqlite", "postgresql"):
        runs = sorted(
            (s for s in results["scale"] if s["backend"] == backend),
            key=lambda s: s["checkin_rows"],
        )
        if len(runs) >= 2 and runs[0]["tick_idle_ms"] > 0:
            small, large = runs[0], runs[-1]
            growth = large["tick_idle_ms"] / small["tick_idle_ms"]
            rows = large["checkin_rows"] / max(small["checkin_rows"], 1)
            lines.append(
                f"  {backend}: an idle tick costs {growth:.1f}x more with {rows:.0f}x the rows "
                f"(<= {growth_target}x)  {_ok(growth <= growth_target)}"
            )
    lines += ["", "parsing (red-flag scan of a message, against a naive keyword scan):"]
    for r in results.get("parsing", []):
        lines.append(
            f"  {r['chars']} characters, {r['phrases']} phrases: {r['scan_us']:.0f} µs per message"
            f" (< {parsing.TARGET_US:.0f}) {_ok(r['scan_us'] < parsing.TARGET_US)}; naive "
            f"{r['naive_us']:.0f} µs, ratio {r['ratio']:.1f}x"
        )
    lines.append("")
    lines.append(f"total {results['total_seconds']:.0f} s; results in {RESULTS}")
    return "\n".join(lines)


def main(*, quick: bool, postgres: str | None, only: str | None = None) -> int:
    """Entry point of ``python -m bot bench``."""
    postgres = postgres or os.environ.get("TEST_DATABASE_URL") or None
    sections = tuple(only.split(",")) if only else SECTIONS
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"--only: unknown section(s) {sorted(unknown)}; known: {SECTIONS}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    os.environ["BENCH_LOG"] = str(LOG)  # the fake servers' output (bench/server.py)
    with LOG.open("a", encoding="utf-8") as log:
        configure_logging("console", "WARNING", stream=log)
        _say(f"logs (WARNING and above) go to {LOG}")
        results = run(quick=quick, postgres=postgres, only=sections)
    print("\n" + table(results), flush=True)
    return 0
