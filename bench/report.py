"""The benchmark's results as JSON and as the Markdown table the README shows."""
import json
import os
import platform
import subprocess
from pathlib import Path

from portal import clock

RESULTS = Path(__file__).resolve().parent / "results"
FLAT = 1.5  # largest network's p95 at most this many times the smallest's


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory = next(ln for ln in Path("/proc/meminfo").read_text().splitlines()
                      if ln.startswith("MemTotal"))
        gib = round(int(memory.split()[1]) / 1024 / 1024, 1)
    except (OSError, StopIteration):
        gib = None
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": gib,
            "os": platform.platform(), "python": platform.python_version(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"],  # noqa: S603, S607
                              capture_output=True, text=True, check=True,
                              cwd=RESULTS.parent.parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def write(results: list[dict], cfg: dict, kind: str, elapsed: float, targets: dict) -> list:
    data = {"when": clock.now().isoformat(timespec="seconds"), "commit": _commit(),
            "machine": machine(), "database": kind, "elapsed_seconds": elapsed,
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in cfg.items()},
            "targets": targets, "sizes": results}
    data["verdicts"] = verdicts(results, targets)
    RESULTS.mkdir(exist_ok=True)
    text = markdown(data)
    paths = []
    sizes = "-".join(str(n) for n in cfg["sizes"])  # the run's name, while it is measured too
    for stem in ("latest", f"{kind}-{sizes}"):
        for suffix, body in ((".json", json.dumps(data, indent=1, ensure_ascii=False)),
                             (".md", text)):
            path = RESULTS / f"{stem}{suffix}"
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(body + "\n")
            tmp.replace(path)
            paths.append(path)
    return paths


def _pages(size: dict) -> dict:
    return {p["name"]: p for p in size["pages"]}


def verdicts(results: list[dict], targets: dict) -> list[dict]:
    """Each PRODUCT.md §3 target at the largest size: met or not, with the figures."""
    largest, smallest = results[-1], results[0]
    pages = [p for p in largest["pages"] if p.get("p95_ms") is not None]
    slow = [f"{p['name']} {p['p95_ms']:.0f} ms" for p in pages
            if p["p95_ms"] >= targets["p95_ms"]]
    low = [f"{p['name']} {p['share_of_hello']:.0%}" for p in pages
           if p["share_of_hello"] < targets["share"]]
    growth = []
    if len(results) > 1:
        first = _pages(smallest)
        for p in pages:
            base = first.get(p["name"], {}).get("p95_ms")
            if base and p["p95_ms"] > FLAT * base:
                growth.append(f"{p['name']} ×{p['p95_ms'] / base:.1f}")
    quarter, pdf = largest["quarter"], largest["pdf"]
    return [
        {"target": f"p95 < {targets['p95_ms']} ms on every key page", "met": not slow,
         "detail": ", ".join(slow) or "all pages"},
        {"target": f"throughput ≥ {targets['share']:.0%} of the hello route", "met": not low,
         "detail": ", ".join(low) or "all pages"},
        {"target": "full-network quarter < 30 s",
         "met": "error" not in quarter and quarter["seconds"] < 30,
         "detail": f"failed: {quarter['error']}" if "error" in quarter else
         f"{quarter['seconds']} s ({quarter['ratio']}× one raw aggregate)"},
        {"target": "one-agency PDF < 1 s", "met": "error" not in pdf and pdf["seconds"] < 1,
         "detail": f"not measured: {pdf['error']}" if "error" in pdf else
         f"{pdf['seconds']} s (first render {pdf['first_seconds']} s)"},
        {"target": f"page time flat with size (≤ ×{FLAT})", "met": not growth,
         "detail": ", ".join(growth) or ("all pages" if len(results) > 1 else "one size only")},
    ]


def _ms(value) -> str:
    return "–" if value is None else f"{value:.1f}"


def markdown(data: dict) -> str:
    m, results = data["machine"], data["sizes"]
    largest = results[-1]
    net = largest["network"]
    lines = [
        "# Benchmark results", "",
        f"{data['when']}, commit {data['commit']}, {largest['server']}; {m['cpu']}, "
        f"{m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, Python {m['python']}; "
        f"load average at the end {m['load_average'][0]} (the machine is shared). "
        f"gunicorn {data['settings']['workers']} workers, wrk {data['settings']['seconds']} s "
        f"× {data['settings']['connections']} connections per URL, on loopback. "
        f"Whole run {data['elapsed_seconds']} s.", "",
        f"## Key pages: {net['agencies']:,} agencies, {net['orders']:,} work orders, "
        f"{net['engineers']:,} engineers", "",
        "p50/p95: one connection (the server's own time); loaded p95 and req/s: "
        f"{data['settings']['connections']} connections, every worker busy.", "",
        "| page | user | SQL | p50 ms | p95 ms | loaded p95 ms | req/s | share of hello "
        "| share of WSGI hello |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for p in largest["pages"]:
        if p.get("single_request"):
            p = {**p, "name": p["name"] + " (one request: none finished within the wrk run)"}
        lines.append(f"| {p['name']} | {p['user']} | {p.get('queries', '–')} | "
                     f"{_ms(p.get('p50_ms'))} | {_ms(p.get('p95_ms'))} | "
                     f"{_ms(p.get('loaded_p95_ms'))} | {p.get('rps', '–')} | "
                     f"{_share(p.get('share_of_hello'))} | "
                     f"{_share(p.get('share_of_wsgi_hello'), 2)} |")
    for name, hello in (("hello (Flask route)", largest["hello"]),
                        ("hello (bare WSGI)", largest["wsgi_hello"])):
        lines.append(f"| {name} | – | 0 | {_ms(hello['p50_ms'])} | {_ms(hello['p95_ms'])} | "
                     f"{_ms(hello['loaded_p95_ms'])} | {hello['rps']} | | |")
    lines += ["", "## Page p95 (ms) as the network grows", "",
              "| page | " + " | ".join(f"{r['network']['agencies']:,} ag. / "
                                       f"{r['network']['orders']:,} orders" for r in results)
              + " |", "|---|" + "--:|" * len(results)]
    for p in largest["pages"]:
        row = [_ms(_pages(r).get(p["name"], {}).get("p95_ms")) for r in results]
        lines.append(f"| {p['name']} | " + " | ".join(row) + " |")
    lines += ["", "## Work that is not a page", "",
              "| measure | " + " | ".join(f"{r['network']['agencies']:,} ag." for r in results)
              + " |", "|---|" + "--:|" * len(results)]
    rows = [
        ("quarter for the whole network (s)",
         lambda r: r["quarter"].get("seconds", "**failed** after "
                                    f"{r['quarter'].get('seconds_to_failure')} s")),
        ("one raw aggregate over the same orders (s)",
         lambda r: r["quarter"].get("raw_seconds", "–")),
        ("ratio quarter / raw aggregate", lambda r: r["quarter"].get("ratio", "–")),
        ("orders completed in that quarter",
         lambda r: f"{r['quarter']['orders']:,}" if "orders" in r["quarter"] else "–"),
        ("settlement of 5,000 orders: open_settlement (s)",
         lambda r: r["settlement_build"]["seconds"]),
        ("one-agency evaluation PDF, zh_CN (s, median)", lambda r: r["pdf"].get("seconds", "–")),
        ("one-agency evaluation PDF, first render (s)",
         lambda r: r["pdf"].get("first_seconds", "–")),
        ("stored report download p95 (ms)",
         lambda r: _ms(_pages(r).get("stored report download", {}).get("p95_ms"))),
        ("synthetic network build (s)", lambda r: r["build"]["seconds"]),
        ("rows written", lambda r: f"{r['build']['steps'].get('rows', 0):,}"),
    ]
    for label, value in rows:
        lines.append(f"| {label} | " + " | ".join(str(value(r)) for r in results) + " |")
    for r in results:
        for problem in [*r["build"].get("failed_jobs", []),
                        *([f"quarter computation: {r['quarter']['error']}"]
                          if "error" in r["quarter"] else [])]:
            lines.append(f"\n**Failed** at {r['network']['agencies']:,} agencies: {problem}")
    lines += ["", "## Targets (PRODUCT.md §3) at the largest size", ""]
    for v in data["verdicts"]:
        lines.append(f"- {'met' if v['met'] else '**not met**'}: {v['target']} — {v['detail']}")
    return "\n".join(lines)


def _share(value, places: int = 0) -> str:
    return "–" if value is None else f"{value:.{places}%}"
