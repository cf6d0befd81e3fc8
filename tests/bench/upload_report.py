"""The upload benchmark's one-line progress reports and its summary table, from its results."""

from __future__ import annotations

from typing import Any

RSS_TARGET_MIB = 50
THROUGHPUT_TARGET_MB_S = 100  # decimal megabytes, as in the issue


def run_line(r: dict[str, Any]) -> str:
    if "seconds" not in r:
        return f"upload {r.get('run')}: {r.get('error')}"
    text = (f"upload {r['run']}: {r['status']} in {r['seconds']:.2f}s = {r['mb_per_s']} MB/s; worker RSS "
            f"{r['rss_before_mib']} -> peak {r['rss_peak_sampled_mib']} (VmHWM {r['vmhwm_after_mib']}) MiB")
    return text + (f"  ERROR {r['error']}" if "error" in r else "")


def summary(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = ["",
             (f"Fairshelf upload benchmark — {m['cpus']} CPUs, Python {m['python']}, "
              f"granian {m['granian']}, litestar {m['litestar']}, multipart {m['multipart']}; "
              "client and server share this machine."),
             (f"Targets from the issue: worker RSS growth < {RSS_TARGET_MIB} MiB, throughput >= "
              f"{THROUGHPUT_TARGET_MB_S} MB/s."),
             ""]
    header = (f"{'run':>8} {'status':>6} {'seconds':>8} {'MB/s':>7} {'RSS before':>10} {'peak':>7} "
              f"{'VmHWM':>7} {'growth':>7} {'worker CPU usr+sys':>19} {'client CPU':>10} {'other':>6}  check")
    lines += [header, "-" * len(header)]
    rows = list(results["uploads"]) + list(results.get("profiled_uploads", []))
    for r in rows:
        if "seconds" not in r:
            lines.append(f"{r.get('run')!s:>8} {r.get('error')}")
            continue
        c = r.get("check", {})
        check = (f"{c.get('state')}, {c.get('temp_file_bytes')} B on disk"
                 + (", bytes identical" if c.get("bytes_identical") else "")) if c else ""
        if "error" in r:
            check = f"ERROR {r['error']}"
        cpu = r["worker_cpu_s"]
        lines.append(f"{r['run']!s:>8} {r['status']:>6} {r['seconds']:>8.2f} {r['mb_per_s']:>7.1f} "
                     f"{r['rss_before_mib']:>10.1f} {r['rss_peak_sampled_mib']:>7.1f} "
                     f"{r['vmhwm_after_mib']:>7.1f} "
                     f"{r['rss_growth_mib']:>7.1f} {cpu['user']:>9.2f}+{cpu['system']:<9.2f} "
                     f"{r['client_cpu_s']:>10.2f} {r['other_cores']:>6.2f}  {check}")
    lines.append("(MB = 10^6 bytes of request body; RSS in MiB from /proc/<pid>/status of the Granian "
                 "worker; peak = highest VmRSS sampled every 50 ms; VmHWM reset before each upload; "
                 "'other' = cores used by processes this script did not start)")
    for r in rows:
        if r.get("worker_cpu_by_thread_s"):
            lines.append(f"worker CPU seconds by thread, run {r['run']}: {r['worker_cpu_by_thread_s']}")
    if h := results.get("health_idle"):
        lines.append(f"GET /health every 100 ms with no upload: {h['requests']} answers, "
                     f"p50 {h.get('p50_ms')} ms, max {h.get('max_ms')} ms")
    for r in rows:
        if h := r.get("health_during_upload"):
            lines.append(f"GET /health every 100 ms during run {r['run']}: {h['requests']} answers, p50 "
                         f"{h.get('p50_ms')} ms, max {h.get('max_ms')} ms, {h.get('failures', 0)} failures")
    for r in rows:
        prof = r.get("profile")
        if not prof:
            continue
        if prof["tool"] == "py-spy":
            lines += ["", (f"py-spy: where the worker's Python time goes ({prof['python_samples']} samples "
                           f"running Python; not counted: {prof['not_counted']}; {prof['path']})")]
            lines += [f"    {v:>5}%  {k}" for k, v in prof["parts_pct"].items()]
            lines.append("  hottest leaf frames:")
            lines += [f"    {v:>5}%  {k}" for k, v in prof["top_leaf_pct"].items()]
        else:
            lines += ["", f"perf: the whole worker incl. kernel and Granian's Rust threads ({prof['path']})"]
            lines += [f"    {v:>5}%  {k}" for k, v in prof["by_thread_and_library_pct"].items()]
            lines.append("  hottest symbols:")
            lines += [f"    {v:>5}%  {k}" for k, v in prof["top_symbols_pct"].items()]
    ok = [r for r in results["uploads"] if "error" not in r and "seconds" in r]
    if ok:
        speeds = sorted(r["mb_per_s"] for r in ok)
        growth = max(r["rss_growth_mib"] for r in ok)
        met_speed = "met" if speeds[0] >= THROUGHPUT_TARGET_MB_S else "NOT met"
        met_rss = "met" if growth < RSS_TARGET_MIB else "NOT met"
        lines += ["", (f"throughput {speeds[0]}–{speeds[-1]} MB/s (target >= {THROUGHPUT_TARGET_MB_S}: "
                       f"{met_speed}); worst RSS growth {growth} MiB (target < {RSS_TARGET_MIB}: {met_rss})")]
    if "error" in results:
        lines.append(f"FAILED: {results['error']}")
    lines.append(f"total {results['total_seconds']}s "
                 f"(generating the file: {results.get('generate_seconds')}s)")
    return "\n".join(lines)
