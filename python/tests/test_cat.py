"""Adaptive tests: catR's item sequences (the reference the Rust tests use), the command line's
simulations exactly, sessions saved and resumed, refusals that leave the session unchanged."""

import json
import pickle

import numpy as np
import pandas as pd
import pytest

import etalon
from conftest import CATR, read_csv

CATR_EAP = {
    "estimator": {
        "method": "eap",
        "prior": {"mean": 0, "sd": 1},
        "grid": {"lower": -4, "upper": 4, "points": 33, "rule": "trapezoid"},
        "bounds": [-4, 4],
    },
    "stopping": {"max_items": 40, "min_items": 1, "se_target": 0.3},
}


@pytest.fixture(scope="module")
def catr():
    bank = etalon.Bank.read(CATR / "bank_2pl_500.csv")
    thetas = pd.read_csv(CATR / "thetas_1000.csv")["theta"].to_numpy()
    responses = pd.read_csv(CATR / "responses_1000x500.csv.gz")
    return bank, thetas, responses


@pytest.mark.parametrize("method,file", [("eap", "catR_EAP_results.csv"), ("ml", "catR_ML_results.csv")])
def test_item_sequences_match_catr(catr, method, file):
    bank, thetas, responses = catr
    config = json.loads(json.dumps(CATR_EAP))
    config["estimator"]["method"] = method
    sim = etalon.simulate(bank, thetas, config=config, responses=responses, seed=1)
    ref = pd.read_csv(CATR / file)
    same = (sim["items"] == ref["items"]).sum()
    assert same >= 950, same
    assert abs(sim["length"].mean() - ref["length"].mean()) <= 0.3
    rmse = np.sqrt(np.mean((sim["theta"] - sim["true_theta"]) ** 2))
    ref_rmse = np.sqrt(np.mean((ref["theta"] - ref["true_theta"]) ** 2))
    assert abs(rmse - ref_rmse) <= 0.01
    assert sim.attrs["summary"]["examinees"] == 1000


def test_simulations_reproduce_the_command_line_exactly(cli, tmp_path, catr):
    bank, thetas, responses = catr
    out = tmp_path / "sim.csv"
    printed = cli("simulate", "--bank", CATR / "bank_2pl_500.csv", "--examinees", 300, "--seed", 7,
                  "--exposure", "randomesque:3", "--out", out)
    expected = read_csv(out)
    config = {"selection": {"exposure": {"method": "randomesque", "k": 3}},
              "estimator": {"bounds": [-6, 6]}}
    got = etalon.simulate(bank, 300, seed=7, config=config)
    assert got["items"].tolist() == expected["items"].tolist()
    for column in ("true_theta", "theta", "se", "length"):
        assert np.array_equal(got[column].to_numpy(), expected[column].to_numpy()), column
    assert got.attrs["summary"]["rmse"] == printed["rmse"]
    # The command line's defaults without a configuration.
    cli("simulate", "--bank", CATR / "bank_2pl_500.csv", "--thetas", CATR / "thetas_1000.csv", "--seed", 3, "--out", out)
    expected = read_csv(out)
    got = etalon.simulate(bank, thetas, seed=3, threads=1)
    assert got["items"].tolist() == expected["items"].tolist()
    assert np.array_equal(got["theta"].to_numpy(), expected["theta"].to_numpy())


def test_a_session_driven_by_hand_is_the_simulated_one(catr):
    bank, thetas, responses = catr
    engine = etalon.CatEngine(bank, CATR_EAP)
    sim = etalon.simulate(bank, thetas[:5], config=CATR_EAP, responses=responses.iloc[:5], seed=1)
    # examinee i's session seed is derived from the run's; its answers are the pre-drawn ones.
    for i in range(5):
        session = engine.start(seed=0)
        items = []
        while (item := engine.next(session)) is not None:
            items.append(item)
            engine.record(session, item, int(responses.iloc[i][item]))
        result = engine.result(session)
        assert ";".join(result["items"]) == sim["items"].iloc[i]
        assert result["theta"] == sim["theta"].iloc[i] and result["reason"] == session.finished


def test_sessions_resume_from_json_and_pickle():
    bank = etalon.Bank.example()
    engine = etalon.CatEngine(bank, {"selection": {"exposure": {"method": "pix"}}})
    session = engine.start(seed=11)
    answers = [1, 0, 1]
    for a in answers:
        engine.record(session, engine.next(session), a)
    saved = session.to_json()
    resumed = etalon.Session.from_json(saved)
    pickled = pickle.loads(pickle.dumps(session))
    assert resumed == session and pickled == session
    follow = [engine.next(s) for s in (session, resumed, pickled)]
    assert len(set(follow)) == 1
    engine2 = pickle.loads(pickle.dumps(engine))
    assert engine2.next(etalon.Session.from_json(saved)) == follow[0]
    assert "3 answers" in repr(session) and f"pending `{follow[0]}`" in repr(session)
    assert [h["response"] for h in session.history] == answers


def test_refused_calls_leave_the_session_unchanged():
    bank = etalon.Bank.example()
    engine = etalon.CatEngine(bank)
    session = engine.start(seed=1)
    item = engine.next(session)
    before = session.to_json()
    other = next(i for i in bank.item_ids if i != item)
    with pytest.raises(etalon.SessionError, match="was not offered"):
        engine.record(session, other, 1)
    with pytest.raises(etalon.SessionError, match="not one of its codes"):
        engine.record(session, item, 7)
    assert session.to_json() == before
    with pytest.raises(etalon.SessionError, match="not a saved session"):
        etalon.Session.from_json("{}")
    tampered = json.loads(before)
    tampered["seed"] = 2
    with pytest.raises(etalon.SessionError):
        engine.next(etalon.Session.from_json(json.dumps(tampered)))
    with pytest.raises(etalon.ConfigError, match="max_items"):
        etalon.CatEngine(bank, {"stopping": {"max_items": 0}})
    with pytest.raises(etalon.ConfigError, match="unknown field"):
        etalon.CatEngine(bank, {"stoping": {}})
