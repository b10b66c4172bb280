"""Etalon's Python package against PyPI's mirt (1.2.0), girth and catsim, on the same data.

Run in one go (in a virtual environment with etalon, mirt==1.2.0, girth and catsim installed; not in CI):

    python python/bench/compare.py [--timeout 300] [--repeat 5] [--lines calib10k,calib100k,eap100k,cat1000]

Lines:
  calib10k   2PL calibration (marginal ML by EM, 61 quadrature points) of 10,000 persons × 50 items
  calib100k  the same on 100,000 × 100
  eap100k    EAP scoring (61 points, N(0, 1) prior) of 100,000 × 100 with the true parameters
  cat1000    1,000 simulated adaptive tests on a 500-item 2PL bank (MFI, EAP, stop at SE ≤ 0.3 or 40 items)

Data: simulated 2PL (a ~ lognormal(0, 0.25), b ~ N(0, 1), θ ~ N(0, 1)) drawn once with numpy and given
to every package. Every call runs in a fresh subprocess (imports and data loading are not timed), with a
time limit; a package that cannot do a line is "n/a". Each (line, package) runs `--repeat` times, each
time in a new subprocess (so every run is a first call, as a user's script makes it), and the table
shows the median (a run longer than 10 s is not repeated: its noise is small beside it); the log shows
every run. Ratios are the other package's median seconds over Etalon's. Every package is timed from the same numpy array: Etalon's conversion of it
(`etalon.responses`) is inside the timed call, as mirt's and girth's own conversions are (its share is
in the note).

Same work on every line: 61 quadrature points for calibration and scoring (mirt places them by
Gauss–Hermite, girth on its default bounds, Etalon equally spaced on [-6, 6]). In the CAT line mirt's
`run_batch_simulation` takes its native path (MFI, EAP on 33 Gauss–Hermite nodes spanning ±10.3 — its
`theta_bounds` is not passed to that path — stop at SE ≤ 0.3 or 40 items) and Etalon runs MFI, EAP on
33 points of [-4, 4], the same stopping rule: mean test lengths 19.8 and 19.7 items. catsim has no EAP
(ML by numerical search).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from statistics import median

import numpy as np

LINES = {
    "calib10k": "2PL calibration 10,000 × 50",
    "calib100k": "2PL calibration 100,000 × 100",
    "eap100k": "EAP scoring 100,000 × 100",
    "cat1000": "1,000 CATs, 500-item bank",
}
TOOLS = ["etalon", "mirt", "girth", "catsim"]
SHAPES = {"calib10k": (10_000, 50), "calib100k": (100_000, 100), "eap100k": (100_000, 100), "cat1000": (1_000, 500)}


def make_data(directory: str) -> None:
    """Simulated 2PL data sets, saved as .npz in `directory`."""
    rng = np.random.default_rng(20261124)
    for line, (n, j) in SHAPES.items():
        a = rng.lognormal(0.0, 0.25, j)
        b = rng.normal(0.0, 1.0, j)
        theta = rng.normal(0.0, 1.0, n)
        p = 1.0 / (1.0 + np.exp(-a[None, :] * (theta[:, None] - b[None, :])))
        x = (rng.random((n, j)) < p).astype(np.int8)
        np.savez(os.path.join(directory, f"{line}.npz"), a=a, b=b, theta=theta, x=x)


# --- one timed call per (line, tool); returns seconds, or raises NotImplementedError (n/a) -------------


def run_etalon(line, a, b, theta, x):
    import etalon
    import pandas as pd

    if line.startswith("calib"):
        t = time.perf_counter()
        data = etalon.responses(x)  # one byte per cell, as read from a file
        converted = time.perf_counter() - t
        fit = etalon.calibrate(data, model="2pl")
        seconds = time.perf_counter() - t
        return seconds, f"logL {fit.log_likelihood:.2f}, {fit.cycles} cycles; conversion {converted:.3f} s"
    ids = [f"Item.{k + 1}" for k in range(len(a))]
    bank = etalon.Bank.from_dataframe(pd.DataFrame({"id": ids, "model": "2pl", "a": a, "b": b}))
    if line == "eap100k":
        t = time.perf_counter()
        data = etalon.responses(x)
        converted = time.perf_counter() - t
        s = etalon.score(bank, data, "eap")
        seconds = time.perf_counter() - t
        return seconds, f"mean θ̂ {s['theta'].mean():.4f}; conversion {converted:.3f} s"
    config = {
        "estimator": {"method": "eap", "grid": {"lower": -4, "upper": 4, "points": 33}, "bounds": [-4, 4]},
        "stopping": {"max_items": 40, "se_target": 0.3},
    }
    t = time.perf_counter()
    sim = etalon.simulate(bank, theta, config=config, seed=1)
    return time.perf_counter() - t, f"mean length {sim['length'].mean():.2f}"


def run_mirt(line, a, b, theta, x):
    import mirt

    if line.startswith("calib"):
        t = time.perf_counter()
        fit = mirt.fit_mirt(x, model="2PL", n_quadpts=61, compute_standard_errors=False)
        elapsed = time.perf_counter() - t
        return elapsed, f"logL {getattr(fit, 'log_likelihood', float('nan')):.2f}"
    from mirt.models.dichotomous import TwoParameterLogistic

    model = TwoParameterLogistic(n_items=len(a))
    model.set_parameters(discrimination=a, difficulty=b)
    if hasattr(model, "_is_fitted"):
        model._is_fitted = True
    if line == "eap100k":
        t = time.perf_counter()
        s = mirt.fscores(model, x, method="EAP", n_quadpts=61)
        return time.perf_counter() - t, "EAP"
    from mirt.cat.engine import CATEngine

    engine = CATEngine(model, item_selection="MFI", scoring_method="EAP", se_threshold=0.3, max_items=40,
                       n_quadpts=33, theta_bounds=(-4.0, 4.0), seed=1)
    t = time.perf_counter()
    engine.run_batch_simulation(theta)
    return time.perf_counter() - t, "MFI/EAP batch"


def run_girth(line, a, b, theta, x):
    import girth

    if line.startswith("calib"):
        t = time.perf_counter()
        girth.twopl_mml(x.T.astype(int), options={"quadrature_n": 61})
        return time.perf_counter() - t, "twopl_mml"
    if line == "eap100k":
        t = time.perf_counter()
        girth.ability_eap(x.T.astype(int), b, a, options={"quadrature_n": 61})
        return time.perf_counter() - t, "ability_eap"
    raise NotImplementedError("no adaptive testing")


def run_catsim(line, a, b, theta, x):
    if line != "cat1000":
        raise NotImplementedError("no calibration or batch scoring")
    from catsim.estimation import NumericalSearchEstimator
    from catsim.initialization import FixedPointInitializer
    from catsim.selection import MaxInfoSelector
    from catsim.simulation import Simulator
    from catsim.stopping import MinErrorStopper

    items = np.column_stack([a, b, np.zeros_like(a), np.ones_like(a)])
    sim = Simulator(items, theta)
    t = time.perf_counter()
    sim.simulate(FixedPointInitializer(0.0), MaxInfoSelector(), NumericalSearchEstimator(), MinErrorStopper(0.3))
    return time.perf_counter() - t, "MFI/ML (catsim has no EAP)"


RUNNERS = {"etalon": run_etalon, "mirt": run_mirt, "girth": run_girth, "catsim": run_catsim}


def one(directory: str, line: str, tool: str) -> None:
    d = np.load(os.path.join(directory, f"{line}.npz"))
    try:
        seconds, note = RUNNERS[tool](line, d["a"], d["b"], d["theta"], d["x"])
        print(json.dumps({"seconds": seconds, "note": note}))
    except NotImplementedError as e:
        print(json.dumps({"na": str(e)}))


def run_once(directory: str, line: str, tool: str, timeout: float) -> dict:
    """One timed call in a fresh subprocess: {"seconds", "note"}, {"na"}, {"error"} or {"timeout"}."""
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--one", directory, line, tool],
            capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"timeout": timeout}
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["failed"])[-1]
        return {"error": last[:100]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per call (default 300)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per line and package (default 5)")
    parser.add_argument("--lines", default=",".join(LINES), help="comma-separated lines to run")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated packages to run")
    parser.add_argument("--one", nargs=3, metavar=("DIR", "LINE", "TOOL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(*args.one)
        return
    lines = [l for l in args.lines.split(",") if l]
    tools = [t for t in args.tools.split(",") if t]
    with tempfile.TemporaryDirectory() as directory:
        print("drawing the data sets …", file=sys.stderr)
        make_data(directory)
        results: dict = {}
        for line in lines:
            for tool in tools:
                print(f"{LINES[line]}: {tool} …", file=sys.stderr)
                runs = []
                for _ in range(max(args.repeat, 1)):
                    r = run_once(directory, line, tool, args.timeout)
                    print(f"    {r}", file=sys.stderr)
                    if "seconds" not in r:
                        runs = [r]
                        break
                    runs.append(r)
                    if r["seconds"] > 10.0:
                        break
                if "seconds" in runs[0]:
                    seconds = sorted(r["seconds"] for r in runs)
                    results[line, tool] = {"seconds": median(seconds), "runs": seconds, "note": runs[0]["note"]}
                else:
                    results[line, tool] = runs[0]
    print()
    header = ["line"] + [f"{t} (s)" for t in tools] + [f"{t}/etalon" for t in tools if t != "etalon"]
    rows = []
    for line in lines:
        base = results.get((line, "etalon"), {}).get("seconds")
        cells, ratios = [], []
        for tool in tools:
            r = results[line, tool]
            if "seconds" in r:
                cells.append(f"{r['seconds']:.3f}")
                if tool != "etalon":
                    ratios.append(f"{r['seconds'] / base:.0f}×" if base else "?")
            elif "timeout" in r:
                cells.append(f"> {r['timeout']:.0f}")
                if tool != "etalon":
                    ratios.append(f"> {r['timeout'] / base:.0f}×" if base else "?")
            elif "na" in r:
                cells.append("n/a")
                if tool != "etalon":
                    ratios.append("n/a")
            else:
                cells.append("error")
                if tool != "etalon":
                    ratios.append("error")
        rows.append([LINES[line]] + cells + ratios)
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    errors = {k: v["error"] for k, v in results.items() if "error" in v}
    for (line, tool), e in errors.items():
        print(f"\n{tool} on {LINES[line]}: {e}")


if __name__ == "__main__":
    main()
