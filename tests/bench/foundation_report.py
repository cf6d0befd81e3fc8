"""The foundation benchmark's summary tables (throughput and latency, CPU, memory), from its results."""

from __future__ import annotations

from typing import Any


def summary(results: dict[str, Any]) -> str:
    m, a = results["machine"], results["argon2"]
    lines = [
        "",
        f"Fairshelf foundation benchmark — {m['cpus']} CPUs, Python {m['python']}, granian {m['granian']}, "
        f"{m['wrk'] or 'no wrk (Python client)'}",
        f"Argon2id m={a['memory_kib']} KiB t={a['time_cost']} p={a['parallelism']}; "
        f"DB pool {results['db_pool']['size']}+{results['db_pool']['max_overflow']} per worker; "
        "client and server share this machine.",
        "Raw Argon2id verifications/s in one process (the ceiling for logins): "
        + ", ".join(f"{v}/s with {k.replace('_', ' ')}"
                    for k, v in a.get("raw_verifications_per_s", {}).items()),
        "",
    ]
    header = (f"{'workers':>7}  {'test':<34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  "
              "errors / statuses")
    lines += [header, "-" * len(header)]
    for run in results["runs"]:
        w = run["workers"]
        if "error" in run:
            lines.append(f"{w:>7}  FAILED: {run['error']}")
        if home := run.get("home"):
            errs = home.get("socket_errors", 0) + home.get("non_2xx_3xx", 0) if home.get("tool") == "wrk" \
                else home["errors"]
            label = f"GET / @{results['params']['connections']} conn"
            lines.append(f"{w:>7}  {label:<34} {home['rps']:>9.1f} {home['p50_ms']:>8.1f} "
                         f"{home['p99_ms']:>8.1f} {home['max_ms']:>8.1f}  {errs} errors")
        for key in ("login_distinct_ip", "login_same_ip"):
            if login := run.get(key):
                label = f"POST /login @{login['clients']} clients, {key.split('_')[1]} IP"
                lines.append(f"{w:>7}  {label:<34} {login['ok_per_s']:>9.1f} {login['p50_ms']:>8.1f} "
                             f"{login['p99_ms']:>8.1f} {login['max_ms']:>8.1f}  {login['statuses']}")
                if login["problems"]:
                    lines.append(f"{'':>9}problems: {login['problems']}")
    lines += ["", "(login req/s counts only 303 = successful verifications; p50/p99 cover every answer)", ""]
    header = (f"{'workers':>7}  {'test':<34} {'app':>6} {'postgres':>9} {'client':>7} {'other':>6}  "
              f"{'app CPU ms/request':>18}")
    lines += ["CPU used during the measured window (cores busy, out of " + str(m["cpus"]) + ")", header,
              "-" * len(header)]
    for run in results["runs"]:
        for key, label in (("home", "GET /"), ("login_distinct_ip", "POST /login, distinct IP"),
                           ("login_same_ip", "POST /login, same IP")):
            cpu = (run.get(key) or {}).get("cpu")
            if cpu:
                lines.append(f"{run['workers']:>7}  {label:<34} {cpu['app_cores']:>6.2f} "
                             f"{cpu['postgres_cores']:>9.2f} {cpu['client_cores']:>7.2f} "
                             f"{cpu['other_cores']:>6.2f}  "
                             f"{cpu.get('app_cpu_ms_per_request', float('nan')):>18.2f}")
    lines.append("('other' = CPU used by processes this script did not start; well above 0 means the figures "
                 "are skewed)\n")
    header = (f"{'workers':>7}  {'process':<10} {'pid':>8} {'RSS idle':>9} {'after /':>9} "
              f"{'after login':>12} {'peak':>8}")
    lines += ["Resident memory (MiB, VmRSS from /proc/<pid>/status; peak = VmHWM)", header, "-" * len(header)]
    for run in results["runs"]:
        if "rss_idle" not in run:
            continue
        phases = [run.get("rss_idle"), run.get("rss_after_home"), run.get("rss_after_login")]
        rows = [("main", [p["main"] if p else {} for p in phases])]
        for i, wk in enumerate(run["rss_idle"]["workers"]):
            rows.append((f"worker {i + 1}", [_find(p, wk["pid"]) for p in phases]))
        for name, snaps in rows:
            last = next((s for s in reversed(snaps) if s), {})
            cells = [f"{s.get('vmrss_mib', float('nan')):>9.1f}" if s else f"{'-':>9}" for s in snaps]
            lines.append(f"{run['workers']:>7}  {name:<10} {snaps[0].get('pid', 0):>8} {cells[0]} {cells[1]} "
                         f"{cells[2]:>12} {last.get('vmhwm_mib', float('nan')):>8.1f}")
    lines.append(f"\ntotal {results['total_seconds']}s")
    return "\n".join(lines)


def _find(phase: dict[str, Any] | None, pid: int) -> dict[str, Any]:
    for wk in (phase or {}).get("workers", []):
        if wk["pid"] == pid:
            return wk
    return {}
