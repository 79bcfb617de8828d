"""Measure the wall time of every script's default (quick) run and of the main job from a cold start.

    python benchmarks/run_times.py --out docs/run_times_table.md
    python benchmarks/run_times.py --only train_plrnn sweep_gtf_alpha

Each script runs in a fresh temporary working directory (its ``results/`` go
there), as a user runs it: ``python scripts/NAME.py`` with no options.  The
main job (``scripts/train_plrnn.py``) is also run with an empty numba cache
(``NUMBA_CACHE_DIR`` in a new directory), which is its time on a fresh clone
after the install.  The table is printed and, with ``--out``, written as
markdown with the machine description; docs/run_times.md shows it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import _common as C  # noqa: I001  (first: sets nothing heavy up)

ROOT = C.repo_root()
SCRIPTS = sorted(p.stem for p in (ROOT / "scripts").glob("*.py"))


def run_script(name: str, env: dict | None = None, timeout: float = 3600) -> tuple[float, int]:
    """Wall seconds and exit status of ``python scripts/<name>.py`` in a scratch directory."""
    with tempfile.TemporaryDirectory(prefix=f"run_{name}_") as tmp:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / f"{name}.py")],
            cwd=tmp,
            env={**os.environ, "MPLBACKEND": "Agg", **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
        )
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(f"{name} failed ({proc.returncode}):\n{proc.stderr[-2000:]}", file=sys.stderr)
    return wall, proc.returncode


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", choices=SCRIPTS, help="these scripts only")
    ap.add_argument("--out", help="write the markdown table here")
    args = ap.parse_args(argv)
    rep = C.Report()
    rep.add(f"- **command**: `{C.command_line()}`")
    rep.add(C.key_value_list(C.machine_info()))
    rep.add(f"- **revision**: {C.git_revision(ROOT)}\n")
    rows = []
    names = args.only or SCRIPTS
    if "train_plrnn" in names:
        with tempfile.TemporaryDirectory(prefix="numba_cold_") as cache:
            wall, rc = run_script("train_plrnn", env={"NUMBA_CACHE_DIR": cache})
        rows.append(("`python scripts/train_plrnn.py` (main job), empty numba cache", C.fmt(wall, 3),
                     "ok" if rc == 0 else f"exit {rc}"))
    for name in names:
        wall, rc = run_script(name)
        rows.append((f"`python scripts/{name}.py`", C.fmt(wall, 3), "ok" if rc == 0 else f"exit {rc}"))
        print(rows[-1], flush=True)
    rep.add(C.markdown_table(["command (quick default)", "wall s", "status"], rows, "lrl"))
    if args.out:
        rep.write(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
