"""Calibration: mirt's numbers (the references the Rust tests use), the command line's numbers exactly,
progress, Ctrl-C, errors, pickling."""

import os
import pickle
import signal
import threading
import time

import numpy as np
import pandas as pd
import pytest

import etalon
from conftest import DATA, MIRT


def _mirt_summary(dataset, model):
    s = pd.read_csv(MIRT / "summary.csv")
    return s[(s.dataset == dataset) & (s.model == model)].iloc[0]


@pytest.mark.parametrize("dataset", ["SAT12", "LSAT7", "SAT12_missingNA"])
def test_2pl_matches_mirt(dataset):
    df = pd.read_csv(DATA / f"{dataset}.csv")
    fit = etalon.calibrate(df.to_numpy(dtype=float), model="2pl", se=True)  # NaN = missing
    assert fit.converged
    assert abs(fit.log_likelihood - _mirt_summary(dataset, "2PL").logLik) < 0.01
    ref = pd.read_csv(MIRT / f"{dataset}_2PL.csv")
    items = fit.items.set_index("id").loc[[f"Item.{j + 1}" for j in range(len(ref))]]
    assert np.max(np.abs(items["a"].to_numpy() - ref["a"].to_numpy())) < 0.005
    assert np.max(np.abs(items["b"].to_numpy() - ref["b"].to_numpy())) < 0.005
    se = pd.read_csv(MIRT / f"{dataset}_2PL_se.csv")
    se_a = se[se.par == "a"]["se"].to_numpy()
    assert np.max(np.abs(items["se_a"].to_numpy() / se_a - 1)) < 0.01  # Oakes SEs within 1%


def test_rasch_latent_variance_and_graded_likert_match_mirt():
    fit = etalon.calibrate(DATA / "LSAT7.csv", model="rasch")
    assert abs(fit.latent[1] - 1.021944) < 0.005
    assert fit.bank.latent == fit.latent
    science = pd.read_csv(DATA / "Science.csv")  # Likert codes 1–4
    graded = etalon.calibrate(science, model="graded")
    assert abs(graded.log_likelihood - _mirt_summary("Science", "graded").logLik) < 0.01
    assert graded.items["codes"].iloc[0] == "1;2;3;4"


def test_array_dataframe_and_file_give_identical_fits():
    path = DATA / "SAT12_missingNA.csv"
    df = pd.read_csv(path)
    fits = [
        etalon.calibrate(path),
        etalon.calibrate(df),
        etalon.calibrate(df.to_numpy(dtype=float), items=None),
    ]
    fits[2] = etalon.calibrate(etalon.responses(df.to_numpy(dtype=float), items=list(df.columns)))
    assert len({f.bank.to_csv() for f in fits}) == 1
    assert len({f.log_likelihood for f in fits}) == 1
    # Results do not depend on the thread count.
    one = etalon.calibrate(path, threads=1)
    assert one.bank.to_csv() == fits[0].bank.to_csv() and one.log_likelihood == fits[0].log_likelihood


@pytest.mark.parametrize(
    "data,args,kwargs",
    [
        ("SAT12.csv", ["--model", "2pl"], {"model": "2pl"}),
        ("SAT12_missingNA.csv", ["--model", "3pl", "--se"], {"model": "3pl", "se": True}),
        ("Science.csv", ["--model", "gpcm"], {"model": "gpcm"}),
        ("LSAT7.csv", ["--model", "rasch", "--quadrature", "41", "--tol", "1e-5"], {"model": "rasch", "quadrature": 41, "tol": 1e-5}),
        ("SAT12.csv", ["--model", "2pl", "--prior-slope", "0,0.5"], {"model": "2pl", "priors": {"slope": (0, 0.5)}}),
    ],
)
def test_calibration_reproduces_the_command_line_exactly(cli, tmp_path, data, args, kwargs):
    out = tmp_path / "bank.csv"
    printed = cli("calibrate", DATA / data, *args, "--out", out)
    fit = etalon.calibrate(pd.read_csv(DATA / data), **kwargs)
    assert fit.bank.to_csv() == out.read_text()  # every parameter, to the last digit
    assert fit.log_likelihood == printed["log_likelihood"]
    assert fit.aic == printed["aic"] and fit.bic == printed["bic"]
    assert fit.cycles == printed["cycles"] and fit.converged == printed["converged"]
    assert fit.warnings == printed["warnings"]
    nan_to_none = lambda r: {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
    assert [nan_to_none(r) for r in fit.item_fit.to_dict("records")] == printed["item_fit"]


def test_anchored_calibration_reproduces_the_command_line(cli, tmp_path):
    full = etalon.calibrate(DATA / "SAT12.csv")
    anchor = etalon.Bank.from_dataframe(full.items.iloc[:16])
    anchor.write(tmp_path / "anchor.csv")
    out = tmp_path / "bank.csv"
    cli("calibrate", DATA / "SAT12.csv", "--model", "2pl", "--anchor", tmp_path / "anchor.csv", "--out", out)
    fit = etalon.calibrate(DATA / "SAT12.csv", anchor=anchor)
    assert fit.bank.to_csv() == out.read_text()
    assert fit.items.set_index("id").loc["Item.1", "a"] == full.items.set_index("id").loc["Item.1", "a"]


def test_progress_callback_sees_every_cycle_and_can_stop_the_fit():
    seen = []
    fit = etalon.calibrate(DATA / "SAT12.csv", progress=lambda c, ll, ch: seen.append((c, ll, ch)))
    assert [c for c, _, _ in seen] == list(range(1, fit.cycles + 1))

    class Stop(Exception):
        pass

    def stop(cycle, ll, change):
        if cycle == 3:
            raise Stop()

    with pytest.raises(Stop):
        etalon.calibrate(DATA / "SAT12.csv", progress=stop)


def test_ctrl_c_stops_a_calibration():
    data = etalon.read_responses(DATA / "sim_10000x50.csv.gz")
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            etalon.calibrate(data, tol=1e-300, max_cycles=1_000_000)  # would run for hours
    finally:
        timer.cancel()
    assert time.monotonic() - start < 10


def test_settings_errors_and_warnings():
    with pytest.raises(etalon.CalibrationError, match="quadrature"):
        etalon.calibrate(DATA / "LSAT7.csv", quadrature=1)
    with pytest.raises(etalon.CalibrationError, match="priors.slope"):
        etalon.calibrate(DATA / "LSAT7.csv", priors={"slope": (0, -1)})
    with pytest.raises(etalon.CalibrationError, match="unknown"):
        etalon.calibrate(DATA / "LSAT7.csv", model="5pl")
    fit = etalon.calibrate(DATA / "SAT12.csv", max_cycles=3)
    assert not fit.converged and any("3" in w for w in fit.warnings)
    assert any(w["kind"] == "not_converged" and w["cycles"] == 3 for w in fit.warning_details)


def test_results_pickle_and_print():
    fit = etalon.calibrate(DATA / "LSAT7.csv")
    copy = pickle.loads(pickle.dumps(fit))
    assert copy.bank == fit.bank and copy.log_likelihood == fit.log_likelihood
    assert copy.items.equals(fit.items) and copy.item_fit.equals(fit.item_fit)
    assert repr(fit).startswith("<etalon.Calibration 2pl: 5 items, 1000 persons, log-likelihood -2658.80")
