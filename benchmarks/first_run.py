"""The first five minutes: `mixedformula example sleepstudy` three times on empty caches.

Every cache a first run fills is pointed at a fresh temporary directory: PyTensor's compiledir
(``PYTENSOR_FLAGS=base_compiledir=...``), numba's (``NUMBA_CACHE_DIR``), mixedformula's own
(``MIXEDFORMULA_COMPILE_CACHE``) and matplotlib's (``MPLCONFIGDIR``).  With ``--venv`` it also
creates a fresh virtual environment and ``pip install``s the project into it (network and
~2 minutes of installing; the timings of the three runs are what matter).

Prints, per run: wall seconds, CPU seconds of the child (user + sys), and the machine's load
average before it started (``os.getloadavg``), since timings on a shared machine mean little
without it.  Also prints which phases the CLI reported on stderr.

    python benchmarks/first_run.py            # the current interpreter, empty caches
    python benchmarks/first_run.py --venv     # a fresh venv with `pip install .`
    python benchmarks/first_run.py --runs 3 --keep
"""

from __future__ import annotations

import argparse
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def fresh_env(tmp: pathlib.Path) -> dict:
    env = dict(os.environ)
    for name in ("pytensor", "numba", "mixedformula", "matplotlib"):
        (tmp / name).mkdir(parents=True, exist_ok=True)
    env["PYTENSOR_FLAGS"] = f"base_compiledir={tmp / 'pytensor'}"
    env["NUMBA_CACHE_DIR"] = str(tmp / "numba")
    env["MIXEDFORMULA_COMPILE_CACHE"] = str(tmp / "mixedformula")
    env["MPLCONFIGDIR"] = str(tmp / "matplotlib")
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


def run_once(python: str, env: dict, args: list[str]) -> dict:
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([python, "-m", "mixedformula.cli", "example", "sleepstudy", *args],
                          env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall": wall, "user": after.ru_utime - before.ru_utime,
            "sys": after.ru_stime - before.ru_stime, "load": load, "rc": proc.returncode,
            "stderr": proc.stderr, "stdout": proc.stdout}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", action="store_true", help="fresh venv + pip install .")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("cli_args", nargs="*", help="extra arguments for the example command")
    opts = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="mf-first-run-"))
    try:
        env = fresh_env(tmp)
        if opts.venv:
            python = make_venv(tmp)
        else:
            python = sys.executable
            env["PYTHONPATH"] = os.pathsep.join(
                [str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
        print(f"caches in {tmp}; {os.cpu_count()} cores; uptime: "
              f"{subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
        for k in range(opts.runs):
            r = run_once(python, env, opts.cli_args)
            phases = [ln for ln in r["stderr"].splitlines() if ln.strip()]
            print(f"run {k + 1}: {r['wall']:6.1f} s wall, {r['user']:6.1f} s user + "
                  f"{r['sys']:4.1f} s sys CPU, load before {r['load']:.2f}, exit {r['rc']}")
            for ln in phases:
                print(f"    stderr: {ln}")
            if r["rc"] != 0:
                print(r["stdout"][-2000:])
                break
    finally:
        if opts.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
