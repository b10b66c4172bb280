"""Scoring: mirt's fscores (the references the Rust tests use) and the command line's numbers exactly."""

import numpy as np
import pandas as pd
import pytest

import etalon
from conftest import DATA, MIRT, TOOLKIT, read_csv


@pytest.fixture(scope="module")
def sat12_bank():
    return etalon.Bank.from_mirt(MIRT / "SAT12_2PL.csv", "2pl")


def test_eap_map_ml_wle_match_mirt_fscores(sat12_bank):
    data = pd.read_csv(DATA / "SAT12.csv")
    ref = pd.read_csv(MIRT / "SAT12_2PL_fscores_all.csv")
    for method, tol in (("eap", 1e-4), ("map", 1e-4), ("ml", 1e-3), ("wle", 1e-3)):
        # mirt bounds modal estimates at ±20 (max_theta); the command line's default range is ±6.
        s = etalon.score(sat12_bank, data, method, theta_range=(-20, 20) if method in ("ml", "wle") else (-6, 6))
        expected = ref[method.upper()].to_numpy()
        got = s["theta"].to_numpy()
        assert np.array_equal(np.isinf(got), np.isinf(expected)), method
        finite = np.isfinite(expected)
        assert np.max(np.abs(got[finite] - expected[finite])) < tol, method
        assert np.all(np.sign(got[~finite]) == np.sign(expected[~finite]))
        se = ref[f"{method.upper()}_SE"].to_numpy()
        ok = np.isfinite(se)
        assert np.max(np.abs(s["se"].to_numpy()[ok] - se[ok])) < tol * 10, method


@pytest.mark.parametrize("method", ["eap", "map", "ml", "wle"])
def test_scores_reproduce_the_command_line_exactly(cli, tmp_path, sat12_bank, method):
    sat12_bank.write(tmp_path / "bank.csv")
    out = tmp_path / "scores.csv"
    printed = cli("score", "--bank", tmp_path / "bank.csv", "--responses", DATA / "SAT12_missingNA.csv",
                  "--method", method, "--out", out)
    expected = read_csv(out, dtype={"person": str})
    got = etalon.score(sat12_bank, pd.read_csv(DATA / "SAT12_missingNA.csv"), method)
    assert got["person"].tolist() == expected["person"].tolist()
    assert np.array_equal(got["theta"].to_numpy(), expected["theta"].to_numpy())
    assert np.array_equal(got["se"].to_numpy(), expected["se"].to_numpy(), equal_nan=True)
    assert got.attrs["summary"]["mean_theta"] == printed["mean_theta"]


def test_options_and_levels_reproduce_the_command_line(cli, tmp_path):
    fit = etalon.calibrate(DATA / "LSAT7.csv", model="rasch")  # a latent variance: the default prior
    fit.bank.write(tmp_path / "bank.csv")
    levels = {"cuts": [-1.0, 0.0, 1.0], "labels": ["low", "mid", "good", "top"]}
    (tmp_path / "levels.json").write_text(__import__("json").dumps(levels))
    out = tmp_path / "scores.csv"
    cli("score", "--bank", tmp_path / "bank.csv", "--responses", DATA / "LSAT7.csv", "--quadrature", "121",
        "--quadrature-rule", "trapezoid", "--theta-range=-5,5", "--levels", tmp_path / "levels.json", "--out", out)
    expected = read_csv(out, dtype={"person": str})
    got = etalon.score(fit.bank, DATA / "LSAT7.csv", quadrature=121, rule="trapezoid", theta_range=(-5, 5),
                       levels=levels)
    assert list(got.columns) == ["person", "theta", "se", "level", "label", "level_probability"]
    for column in ("theta", "se", "level_probability"):
        assert np.array_equal(got[column].to_numpy(), expected[column].to_numpy()), column
    assert got["level"].tolist() == expected["level"].tolist()
    assert got["label"].tolist() == expected["label"].tolist()
    assert got.attrs["summary"]["prior"]["sd"] == pytest.approx(np.sqrt(fit.latent[1]))


def test_scoring_errors():
    bank = etalon.Bank.from_mirt(MIRT / "LSAT7_2PL.csv", "2pl")
    with pytest.raises(etalon.ConfigError, match="unknown method"):
        etalon.score(bank, DATA / "LSAT7.csv", "mle")
    with pytest.raises(etalon.ScoringError, match="estimator"):
        etalon.score(bank, DATA / "LSAT7.csv", quadrature=1)
    with pytest.raises(etalon.DataError, match="items not in the bank"):
        etalon.score(bank, DATA / "SAT12.csv")


def test_multidimensional_calibration_and_scoring_reproduce_the_command_line(cli, tmp_path):
    # A bank of three correlated competences (calibrated by the command line), scored under its N(0, R):
    # the general level then every competence, with levels, the same numbers as `etalon score`.
    bank_path = tmp_path / "md.json"
    printed = cli("calibrate", TOOLKIT / "md_train.csv", "--model", "2pl", "--dimensions",
                  TOOLKIT / "md_train_dims.csv", "--max-cycles", "5", "--se", "--out", bank_path)
    bank = etalon.Bank.read(bank_path)
    # The package's multidimensional calibration is the command line's, number for number (from the
    # file or from a dict).
    dims = read_csv(TOOLKIT / "md_train_dims.csv")
    for given in (TOOLKIT / "md_train_dims.csv", dict(zip(dims["item"], dims["dimension"]))):
        fit = etalon.calibrate(TOOLKIT / "md_train.csv", model="2pl", dimensions=given, max_cycles=5, se=True)
        assert fit.bank.to_dataframe().equals(bank.to_dataframe())
        assert fit.log_likelihood == printed["log_likelihood"] and fit.cycles == printed["cycles"] == 5
        assert fit.dimensions == printed["dimensions"] == ["F1", "F2", "F3"]
        assert np.array_equal(fit.correlations, np.array(printed["correlations"]))
        assert np.array_equal(fit.general_loadings, np.array(printed["general_loadings"]))
        assert fit.correlations_se == printed["correlations_se"]
    with pytest.raises(etalon.CalibrationError, match="anchor"):
        etalon.calibrate(TOOLKIT / "md_train.csv", dimensions=given, anchor=bank)
    with pytest.raises(etalon.CalibrationError, match="21 × 21"):
        etalon.calibrate(TOOLKIT / "md_train.csv", dimensions=given, quadrature=31)
    bad = tmp_path / "bad_dims.csv"
    bad.write_text("item,dimension\nM01,F1\nM01,F2\n")
    with pytest.raises(etalon.CalibrationError, match="line 3"):
        etalon.calibrate(TOOLKIT / "md_train.csv", dimensions=bad)
    levels = {"cuts": [-0.5, 0.5], "labels": ["low", "mid", "high"]}
    (tmp_path / "levels.json").write_text(__import__("json").dumps(levels))
    for method in ("eap", "map"):
        out = tmp_path / f"{method}.csv"
        printed = cli("score", "--bank", bank_path, "--responses", TOOLKIT / "md_train.csv", "--method", method,
                      "--levels", tmp_path / "levels.json", "--out", out)
        expected = read_csv(out, dtype={"person": str})
        got = etalon.score(bank, TOOLKIT / "md_train.csv", method, levels=levels)
        assert list(got.columns) == list(expected.columns), method
        assert list(got.columns)[:9] == ["person", "theta", "se", "level", "label", "level_probability",
                                         "theta_F1", "se_F1", "level_F1"]
        for column in expected.columns:
            if column == "person" or column.startswith("label"):
                assert got[column].tolist() == expected[column].tolist(), (method, column)
            else:
                assert np.array_equal(got[column].to_numpy(dtype=float), expected[column].to_numpy(dtype=float)), (
                    method, column)
        assert got.attrs["summary"]["dimensions"] == ["F1", "F2", "F3"] == printed["dimensions"]
        assert got.attrs["summary"]["mean_theta"] == printed["mean_theta"]
    # One-θ methods and priors do not apply to it.
    with pytest.raises(etalon.ScoringError, match="estimates one θ"):
        etalon.score(bank, TOOLKIT / "md_train.csv", "ml")
    with pytest.raises(etalon.ConfigError, match="one-θ prior"):
        etalon.score(bank, TOOLKIT / "md_train.csv", prior_mean=0.5)
