"""Benchmarks of mixedformula against bambi and hand-written PyMC (issue 7).

    python benchmarks/run.py [--quick] [--cases 1,2,3] [--tools mf,pymc,nutpie,bambi]
                             [--timeout 600] [--bambi-python PYTHON]

Every (case, tool) pair runs as a fresh process (``worker.py``) so that imports, graph
building, compilation (with whatever is in the on-disk pytensor/numba cache) and sampling are
all counted. "End to end" is measured with the parent's clock from just before the process is
started until the worker has printed its summary. Peak memory is the largest total RSS of the
worker's process tree (polled from /proc every 0.1 s; PyMC's chains run in child processes),
with the worker's own ``ru_maxrss`` as a cross-check. Results go to
``benchmarks/results/<stamp>.json`` (git-ignored) and, as a markdown table, into
``benchmarks/README.md`` between the RESULTS markers (``--no-readme`` to skip).

Recommended: run everything from one clean environment made from the project's own files,
as a user installs it (bambi 0.17.2 and psutil come with the ``bench`` extra, and no test
extras such as dask, which xarray imports when it is present)::

    python -m venv /tmp/mf-venv && /tmp/mf-venv/bin/pip install ".[bench]"
    /tmp/mf-venv/bin/python benchmarks/run.py

Every tool then runs with that interpreter (mixedformula from this checkout, via PYTHONPATH).
Without bambi in the running environment, ``--bambi-python`` defaults to
``/tmp/bambi-venv/bin/python`` if it exists. ``formulae`` (bambi's formula parser, case 5)
comes with bambi.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from cases import CASES, expand  # noqa: E402

RESULTS = os.path.join(HERE, "results")
DATA = os.path.join(RESULTS, "data")
README = os.path.join(HERE, "README.md")
# bambi runs in the same environment as everything else when it is installed there
# (`pip install ".[bench]"`, the recommended setup); else in a separate venv
DEFAULT_BAMBI = (sys.executable if importlib.util.find_spec("bambi") is not None
                 else "/tmp/bambi-venv/bin/python")
TOOLS = ["mf", "pymc", "nutpie", "bambi"]
TOOL_LABEL = {"mf": "mixedformula (defaults)", "mf_pymc": "mixedformula, sampler=\"pymc\"",
              "mf_c": "mixedformula, backend=\"c\"", "mf_numba": "mixedformula, backend=\"numba\"",
              "mf_noncentred": "mixedformula, parametrization=\"noncentred\"",
              "mf_centred": "mixedformula, parametrization=\"centred\"",
              "pymc": "hand-written PyMC, pm.sample",
              "nutpie": "hand-written PyMC, nutpie", "bambi": "bambi 0.17.2 (`||` model)",
              "formulae": "formulae 0.6.2 (bambi's parser)"}
START, END = "<!-- RESULTS START -->", "<!-- RESULTS END -->"


# ----------------------------------------------------------------------------- memory polling
def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except OSError:
            pass
    return out


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1])
        except OSError:
            pass
    return total * os.sysconf("SC_PAGE_SIZE") / 2**20


class Poller(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, False

    def run(self):
        while not self.stop:
            self.peak = max(self.peak, _rss_mb(_tree(self.pid)))
            time.sleep(0.1)


# ----------------------------------------------------------------------------- one run
def data_path(case_id: str) -> str:
    os.makedirs(DATA, exist_ok=True)
    path = os.path.join(DATA, f"case{case_id}.pkl")
    if not os.path.exists(path):
        CASES[case_id]["data"]().to_pickle(path)
    return path


def run_one(case_id, tool, args, python) -> dict:
    a = {"case": case_id, "tool": tool, "data": data_path(case_id), "draws": args.draws,
         "tune": args.tune, "chains": args.chains, "cores": args.cores, "seed": args.seed}
    cmd = [python, os.path.join(HERE, "worker.py"), json.dumps(a)]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    if tool.startswith("mf") or tool in ("pymc", "nutpie"):
        env["PYTHONPATH"] = os.path.dirname(HERE) + os.pathsep + env.get("PYTHONPATH", "")
    res = {"case": case_id, "tool": tool, "draws": args.draws, "tune": args.tune,
           "chains": args.chains}
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd="/tmp", start_new_session=True)
    poll = Poller(proc.pid)
    poll.start()
    try:
        out, err = proc.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        poll.stop = True
        res.update(status=f"not finished in {args.timeout:.0f} s", peak_mb=round(poll.peak))
        return res
    wall = time.time() - t0
    poll.stop = True
    line = [ln for ln in out.splitlines() if ln.startswith("BENCHJSON ")]
    if proc.returncode != 0 or not line:
        tail = (err or out).strip().splitlines()[-3:]
        res.update(status="failed: " + " | ".join(tail)[-300:], wall=round(wall, 2),
                   peak_mb=round(poll.peak))
        return res
    w = json.loads(line[-1][len("BENCHJSON "):])
    res.update(w)
    res["status"] = "ok"
    res["process_wall"] = round(wall, 2)
    res["e2e"] = round(w["t_printed"] - t0, 2)
    res["startup"] = round(w["t_start"] - t0, 2)
    res["peak_mb"] = round(max(poll.peak, w["maxrss_self_mb"]))
    if "min_ess_bulk" in w:
        s = w["phases"].get("sample") or float("nan")
        res["ess_per_s_e2e"] = w["min_ess_bulk"] / res["e2e"]
        res["ess_per_s_sampling"] = w["min_ess_bulk"] / s if s else float("nan")
    res["summary_text"] = "\n".join(ln for ln in out.splitlines()
                                    if not ln.startswith("BENCHJSON "))[-4000:]
    return res


# ----------------------------------------------------------------------------- table
def _f(x, nd=1):
    if x is None:
        return "–"
    if isinstance(x, str):
        return x
    if x != x:
        return "–"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{nd}f}"


def table(results: list[dict], meta: dict) -> str:
    lines = [f"Run {meta['stamp']}: {meta['chains']} chains × ({meta['tune']} tune + "
             f"{meta['draws']} draws), seed {meta['seed']}, {meta['cores']} cores, timeout "
             f"{meta['timeout']:.0f} s per run. Host: {meta['host']}. Shared machine — other "
             "processes were using the CPU; treat differences under ~20 % as noise.", ""]
    by_case: dict[str, list[dict]] = {}
    for r in results:
        by_case.setdefault(r["case"], []).append(r)
    fit_rows = ["| case | tool | engine / sampler | end to end s | sampling s | CPU s | "
                "min bulk ESS | "
                "ESS/s e2e | ESS/s sampling | max Rhat | leapfrog steps/draw | peak RSS MB | mf ÷ tool (ESS/s e2e) | "
                "mf ÷ tool (ESS/s sampling) |",
                "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    design_rows = ["| case | tool | design step s | import s | end to end s | peak RSS MB | "
                   "result | tool ÷ mf (design s) |", "|---|---|---:|---:|---:|---:|---|---:|"]
    for cid, rows in by_case.items():
        mf = next((r for r in rows if r["tool"] == "mf" and r["status"] == "ok"), None)
        for r in rows:
            label = TOOL_LABEL.get(r["tool"], r["tool"])
            if CASES[cid]["kind"] == "design":
                if r["status"] != "ok":
                    design_rows.append(f"| {cid} | {label} | {r['status']} | | | "
                                       f"{_f(r.get('peak_mb'))} | | |")
                    continue
                d = r["phases"]["design"]
                ratio = d / mf["phases"]["design"] if mf else None
                shape = ", ".join(f"{k} {v}" for k, v in r["shape"].items() if k != "terms")
                if r["tool"] == "mf":
                    shape += f" (sparse Z() {r['phases'].get('design_Z', 0):.2f} s extra)"
                design_rows.append(f"| {cid} | {label} | {_f(d, 2)} | "
                                   f"{_f(r['phases'].get('import'), 2)} | {_f(r['e2e'])} | "
                                   f"{_f(r['peak_mb'])} | {shape} | {_f(ratio)} |")
                continue
            if r["status"] != "ok":
                fit_rows.append(f"| {cid} | {label} | | {r['status']} | | | | | | | | "
                                f"{_f(r.get('peak_mb'))} | | |")
                continue
            eng = r.get("sampler", "")
            if r["tool"].startswith("mf"):
                eng = f"{r.get('likelihood')} / {r.get('sampler')}"
                if r.get("backend"):
                    eng += f" ({r['backend']})"
                cen = [g for g, c in (r.get("parametrization") or {}).items() if c == "centred"]
                if cen:
                    eng += f", centred {', '.join(cen)}"
            r1 = r2 = None
            if mf and r is not mf:
                r1 = mf["ess_per_s_e2e"] / r["ess_per_s_e2e"]
                r2 = mf["ess_per_s_sampling"] / r["ess_per_s_sampling"]
            fit_rows.append(
                f"| {cid} | {label} | {eng} | {_f(r['e2e'])} | {_f(r['phases'].get('sample'))} | "
                f"{_f(r.get('cpu_s'))} | {_f(r['min_ess_bulk'], 0)} | {_f(r['ess_per_s_e2e'])} | "
                f"{_f(r['ess_per_s_sampling'])} | {r['max_rhat']:.3f} | {_f(r.get('mean_leapfrog'))} | "
                f"{_f(r['peak_mb'])} | "
                f"{_f(r1) + '×' if r1 else ''} | {_f(r2) + '×' if r2 else ''} |")
        if cid == "6" and not any(r["tool"] == "bambi" for r in rows):
            fit_rows.append("| 6 | bambi 0.17.2 | cannot fit (no multivariate responses with "
                            "residual correlation) | | | | | | | | | | | |")
    out = lines + fit_rows
    if len(design_rows) > 2:
        out += ["", "Case 5, the design step alone:", ""] + design_rows
    cases = sorted({r["case"] for r in results}, key=lambda c: list(CASES).index(c))
    out += ["", "Cases: " + "; ".join(f"**{c}** {CASES[c]['title']}" for c in cases) + "."]
    return "\n".join(out)


def write_readme(md: str):
    text = open(README).read() if os.path.exists(README) else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in text:
        text += f"\n{START}\n{END}\n"
    pre, rest = text.split(START, 1)
    post = rest.split(END, 1)[1]
    with open(README, "w") as fh:
        fh.write(pre + START + "\n" + md + "\n" + END + post)


def merge(paths: list[str], readme: bool):
    """One table from several result files of the same settings (e.g. cases run separately)."""
    metas, keep = [], {}
    for p in paths:
        d = json.load(open(p))
        metas.append(d["meta"])
        for r in d["results"]:
            keep[(r["case"], r["tool"])] = r
    meta = dict(metas[-1])
    meta["stamp"] = ", ".join(m["stamp"] for m in metas)
    order = list(CASES)
    tool_order = TOOLS + ["mf_c", "mf_numba", "mf_pymc", "formulae"]
    results = sorted(keep.values(), key=lambda r: (order.index(r["case"]),
                                                   tool_order.index(r["tool"])))
    results = [r for r in results if CASES[r["case"]]["kind"] == "design"
               or (r.get("draws"), r.get("chains")) == (meta["draws"], meta["chains"])]
    md = table(results, meta)
    print(md)
    if readme:
        write_readme(md)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="2 chains × (300 + 300), 180 s timeout, small cases only by default")
    ap.add_argument("--cases", default=None, help="e.g. 1,2,3 or 2b (default: all)")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--draws", type=int)
    ap.add_argument("--tune", type=int)
    ap.add_argument("--chains", type=int)
    ap.add_argument("--cores", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("--seed", type=int, default=20240607)
    ap.add_argument("--timeout", type=float)
    ap.add_argument("--repeat", type=int, default=1, help="run each pair this many times")
    ap.add_argument("--bambi-python", default=DEFAULT_BAMBI if os.path.exists(DEFAULT_BAMBI)
                    else None)
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--merge", nargs="+", metavar="JSON",
                    help="no runs: rebuild the README table from saved results files (later "
                         "files win for the same case and tool; runs with other draws/chains "
                         "are dropped)")
    args = ap.parse_args(argv)
    if args.merge:
        return merge(args.merge, not args.no_readme)
    q = args.quick
    args.draws = args.draws or (300 if q else 1000)
    args.tune = args.tune or (300 if q else 1000)
    args.chains = args.chains or (2 if q else 4)
    args.timeout = args.timeout or (180.0 if q else 600.0)
    cases = expand(args.cases or ("1,2a,3,5,6" if q else None))
    tools = args.tools.split(",")
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    meta = dict(stamp=stamp, draws=args.draws, tune=args.tune, chains=args.chains,
                cores=args.cores, seed=args.seed, timeout=args.timeout,
                host=f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    notes = []
    if args.bambi_python is None and "bambi" in tools:
        notes.append("bambi rows skipped: no --bambi-python and /tmp/bambi-venv missing")
    results = []
    os.makedirs(RESULTS, exist_ok=True)
    out_json = os.path.join(RESULTS, f"{stamp}.json")
    for cid in cases:
        case = CASES[cid]
        if case["kind"] == "design":
            plan = [("mf", sys.executable)] if "mf" in tools else []
            if args.bambi_python and ("bambi" in tools or "formulae" in tools):
                plan.append(("formulae", args.bambi_python))
        else:
            plan = []
            for t in tools:
                if t == "bambi":
                    if args.bambi_python and case["bambi"]:
                        plan.append((t, args.bambi_python))
                else:
                    plan.append((t, sys.executable))
        for tool, py in plan:
            for rep in range(args.repeat):
                print(f"[{time.strftime('%H:%M:%S')}] case {cid} / {tool} "
                      f"(rep {rep + 1}) ...", flush=True)
                r = run_one(cid, tool, args, py)
                r["rep"] = rep
                results.append(r)
                msg = r["status"] if r["status"] != "ok" else (
                    f"e2e {r['e2e']:.1f} s, sample {r['phases'].get('sample', float('nan')):.1f} s"
                    + (f", ESS {r['min_ess_bulk']:.0f}, Rhat {r['max_rhat']:.3f}"
                       if "min_ess_bulk" in r else "")
                    + (f", {r.get('likelihood')}/{r.get('sampler')}" if tool == "mf" else "")
                    + f", peak {r['peak_mb']} MB, phases {r['phases']}")
                print("    " + msg, flush=True)
                with open(out_json, "w") as fh:
                    json.dump({"meta": meta, "notes": notes, "results": results}, fh, indent=1,
                              default=str)
    md = table(results, meta)
    if notes:
        md += "\n\n" + "\n".join(f"Note: {n}." for n in notes)
    print(md)
    if not args.no_readme:
        write_readme(md)
    print(f"\nJSON: {out_json}")


if __name__ == "__main__":
    main()
