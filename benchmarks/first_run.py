"""The first five minutes: `mixedformula example sleepstudy` three times on empty caches.

Issue 21's protocol.  Every cache a first run fills is pointed at a fresh temporary
directory: PyTensor's compiledir (``PYTENSOR_FLAGS=base_compiledir=...``), numba's
(``NUMBA_CACHE_DIR``), mixedformula's own (``MIXEDFORMULA_COMPILE_CACHE``), matplotlib's
(``MPLCONFIGDIR``) and a new ``HOME`` (so nothing under ``~/.pytensor``, ``~/.cache`` or
``~/.config`` is read).  With ``--venv`` it also creates a fresh virtual environment and
``pip install``s the project into it (network and ~2 minutes of installing; the timings of
the three runs are what matter).

Prints, per run: wall seconds, CPU seconds of that child alone (user + sys, ``os.wait4``),
and the machine's 1-minute load average at its start and end (``os.getloadavg``), since
timings on a shared machine mean little without it; then the phases the CLI reported on
stderr, and a line for the issue's table.

    python benchmarks/first_run.py            # the current interpreter, empty caches
    python benchmarks/first_run.py --venv     # a fresh venv with `pip install .`
    python benchmarks/first_run.py --runs 3 --keep
    python benchmarks/first_run.py --profile /tmp/prof   # + cProfile and -X importtime of a
                                                         #   4th, cold run (new caches)
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def fresh_env(tmp: pathlib.Path) -> dict:
    env = dict(os.environ)
    for name in ("pytensor", "numba", "mixedformula", "matplotlib", "home"):
        (tmp / name).mkdir(parents=True, exist_ok=True)
    flags = [f for f in env.get("PYTENSOR_FLAGS", "").split(",")
             if f and not f.startswith(("base_compiledir", "compiledir"))]
    env["PYTENSOR_FLAGS"] = ",".join(flags + [f"base_compiledir={tmp / 'pytensor'}"])
    env["NUMBA_CACHE_DIR"] = str(tmp / "numba")
    env["MIXEDFORMULA_COMPILE_CACHE"] = str(tmp / "mixedformula")
    env["MPLCONFIGDIR"] = str(tmp / "matplotlib")
    env["HOME"] = str(tmp / "home")
    env.pop("XDG_CACHE_HOME", None)
    env.pop("XDG_CONFIG_HOME", None)
    env["PYTHONWARNINGS"] = "default"
    return env


def make_venv(tmp: pathlib.Path) -> str:
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    t0 = time.perf_counter()
    subprocess.run([py, "-m", "pip", "install", "-q", str(ROOT)], check=True)
    print(f"pip install .: {time.perf_counter() - t0:.0f} s wall")
    return py


def run_once(python: str, env: dict, args: list[str], prefix: list[str] = ()) -> dict:
    """One ``mixedformula example sleepstudy`` in a child process: wall seconds, the child's
    own CPU seconds (``os.wait4``: not mixed with other children) and the load at both ends."""
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([python, *prefix, "-m", "mixedformula.cli", "example",
                                 "sleepstudy", *args], env=env, stdout=out, stderr=err,
                                text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    return {"wall": wall, "user": usage.ru_utime, "sys": usage.ru_stime, "load": load,
            "load_end": os.getloadavg()[0], "rc": proc.returncode, "stderr": stderr,
            "stdout": stdout}


def profile_cold(python: str, tmp: pathlib.Path, args: list[str], where: pathlib.Path,
                 extra: dict) -> None:
    """A cold run (its own empty caches) under ``-X importtime`` and cProfile: the profile in
    ``where/cold.prof``, the import times in ``where/importtime.txt``; prints the top of both."""
    where.mkdir(parents=True, exist_ok=True)
    env = {**fresh_env(tmp / "profile"), **extra}
    r = run_once(python, env, args, prefix=["-X", "importtime", "-m", "cProfile", "-o",
                                            str(where / "cold.prof")])
    lines = [ln for ln in r["stderr"].splitlines() if ln.startswith("import time:")]
    (where / "importtime.txt").write_text("\n".join(lines) + "\n")
    print(f"profiled cold run: {r['wall']:.1f} s wall, {r['user'] + r['sys']:.1f} s CPU, "
          f"load {r['load']:.2f} -> {r['load_end']:.2f}; {where}/cold.prof, importtime.txt")
    tops = []
    for ln in lines[1:]:
        parts = ln.split("|")
        try:
            tops.append((int(parts[1]), parts[2].rstrip()))
        except (IndexError, ValueError):
            continue
    for us, name in sorted(tops, reverse=True)[:12]:
        print(f"    import {us / 1e6:6.2f} s cumulative  {name}")
    import pstats
    pstats.Stats(str(where / "cold.prof")).sort_stats("cumulative").print_stats(25)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", action="store_true", help="fresh venv + pip install .")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--profile", metavar="DIR", help="also profile one more cold run "
                    "(cProfile + -X importtime) into DIR")
    ap.add_argument("cli_args", nargs="*", help="extra arguments for the example command")
    opts = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="mf-first-run-"))
    try:
        env = fresh_env(tmp)
        extra = {}
        if opts.venv:
            python = make_venv(tmp)
        else:
            python = sys.executable
            extra["PYTHONPATH"] = os.pathsep.join(
                [str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
        env.update(extra)
        print(f"caches in {tmp}; {os.cpu_count()} cores; load average at start "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        rows = []
        for k in range(opts.runs):
            r = run_once(python, env, opts.cli_args)
            phases = [ln for ln in r["stderr"].splitlines() if ln.strip()]
            print(f"run {k + 1}: {r['wall']:6.1f} s wall, {r['user']:6.1f} s user + "
                  f"{r['sys']:4.1f} s sys CPU, load {r['load']:.2f} at start, "
                  f"{r['load_end']:.2f} at end, exit {r['rc']}")
            for ln in phases:
                print(f"    stderr: {ln}")
            rows.append(r)
            if r["rc"] != 0:
                print(r["stdout"][-2000:])
                break
        print(f"load average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print("\n| run | wall s | CPU s (user + sys) | load at start -> end |\n|---|---:|---:|---|")
        for k, r in enumerate(rows):
            print(f"| {k + 1} | {r['wall']:.1f} | {r['user'] + r['sys']:.1f} "
                  f"({r['user']:.1f} + {r['sys']:.1f}) | {r['load']:.2f} -> "
                  f"{r['load_end']:.2f} |")
        if opts.profile:
            profile_cold(python, tmp, opts.cli_args, pathlib.Path(opts.profile), extra)
    finally:
        if opts.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
