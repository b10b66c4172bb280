"""Banks: files, DataFrames, pickling, errors that name the line, item and field."""

import pickle

import numpy as np
import pandas as pd
import pytest

import etalon
from conftest import CATR, MIRT


def test_csv_bank_round_trips_through_files_and_dataframes(tmp_path):
    bank = etalon.Bank.read(CATR / "bank_2pl_500.csv")
    assert len(bank) == 500 and bank.item_ids[:2] == ["I1", "I2"]
    assert "I1" in bank and "nope" not in bank
    text = bank.to_csv()
    assert etalon.Bank.from_csv(text).to_csv() == text  # CSV → bank → CSV is byte-identical
    df = bank.to_dataframe()
    assert list(df.columns) == ["id", "model", "a", "b", "status"]
    assert df["a"].iloc[0] == 1.62044152803719
    again = etalon.Bank.from_dataframe(df, id=bank.id)
    assert again.to_csv() == text and again == bank and again.fingerprint == bank.fingerprint
    for name in ("b.json", "b.csv.gz", "b.json.gz"):
        bank.write(tmp_path / name)
        assert etalon.Bank.read(tmp_path / name).to_csv() == text


def test_polytomous_bank_with_codes_and_latent_survives_dataframes():
    fit = etalon.calibrate(etalon.read_responses(MIRT.parent / "data" / "Science.csv"), model="graded", se=True)
    df = fit.bank.to_dataframe()
    assert {"b1", "b2", "b3", "codes", "se_a", "se_b1"} <= set(df.columns)
    assert df["codes"].iloc[0] == "1;2;3;4"
    assert etalon.Bank.from_dataframe(df).to_csv() == fit.bank.to_csv()
    rasch = etalon.calibrate(MIRT.parent / "data" / "LSAT7.csv", model="rasch").bank
    assert rasch.latent is not None
    assert etalon.Bank.from_dataframe(rasch.to_dataframe()).latent == rasch.latent


def test_banks_pickle_compare_and_print():
    bank = etalon.Bank.example()
    copy = pickle.loads(pickle.dumps(bank))
    assert copy == bank and copy.to_json() == bank.to_json() and hash(copy) == hash(bank)
    r = repr(bank)
    assert r.startswith("<etalon.Bank ") and "64 items" in r and "2pl" in r
    item = bank.item(bank.item_ids[0])
    assert item["parameters"]["model"] == "2pl" and "content" in item
    with pytest.raises(KeyError):
        bank.item("nope")
    assert bank.summary()["items"] == 64


def test_invalid_banks_name_every_problem(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,model,a,b,c,d\nq1,2pl,0,0,,\nq2,3pl,1,0,0.5,0.4\nq3,2pl,1,0,,\n")
    with pytest.raises(etalon.BankError) as e:
        etalon.Bank.read(bad)
    assert isinstance(e.value, ValueError) and isinstance(e.value, etalon.EtalonError)
    message = str(e.value)
    assert "bad.csv" in message and "line 2" in message and "`q1`" in message
    problems = e.value.problems
    assert [(p["line"], p["item"]) for p in problems] == [(2, "q1"), (3, "q2")]
    assert problems[0]["field"] == "a" and "slope" in problems[0]["message"]
    with pytest.raises(FileNotFoundError):
        etalon.Bank.read(tmp_path / "none.csv")
    with pytest.raises(etalon.BankError, match="unsupported extension"):
        etalon.Bank.read(tmp_path / "bank.txt")
    df = pd.DataFrame({"id": ["q1"], "model": ["2pl"], "a": [np.nan], "b": [0.0]})
    with pytest.raises(etalon.BankError, match=r"(?s)^frame: .*line 2, item `q1`, field `a`"):
        etalon.Bank.from_dataframe(df, id="frame")


def test_mirt_tables_import_as_the_command_line_does(cli, tmp_path):
    bank = etalon.Bank.from_mirt(MIRT / "SAT12_2PL.csv", "2pl")
    cli("bank", "convert", "--from", "mirt", "--model", "2pl", MIRT / "SAT12_2PL.csv", tmp_path / "b.csv")
    assert bank.to_csv() == (tmp_path / "b.csv").read_text()
