"""Response data from arrays and DataFrames equal what the command line reads from the same table."""

import numpy as np
import pandas as pd
import pytest

import etalon
from conftest import DATA


def _same(a, b):
    assert a.item_ids == b.item_ids and a.persons == b.persons and a.codes == b.codes
    assert a.layout == b.layout


def test_arrays_and_dataframes_equal_the_file():
    from_file = etalon.read_responses(DATA / "SAT12_missingNA.csv")
    df = pd.read_csv(DATA / "SAT12_missingNA.csv")
    _same(etalon.responses(df), from_file)
    _same(etalon.responses(df.to_numpy(dtype=float), items=list(df.columns)), from_file)
    assert etalon.responses(df.to_numpy(dtype=float)).item_ids[:2] == ["Item.1", "Item.2"]
    # Integer, boolean and Fortran-ordered arrays.
    full = pd.read_csv(DATA / "SAT12.csv")
    _same(etalon.responses(full.to_numpy(dtype=np.int8), items=list(full.columns)), etalon.read_responses(DATA / "SAT12.csv"))
    _same(etalon.responses(np.asfortranarray(full.to_numpy(dtype=bool)), items=list(full.columns)), etalon.read_responses(DATA / "SAT12.csv"))
    # Likert codes 1–4 keep their codes.
    science = etalon.responses(pd.read_csv(DATA / "Science.csv"))
    assert science.codes[0] == [1, 2, 3, 4]
    _same(science, etalon.read_responses(DATA / "Science.csv"))


def test_person_ids_and_long_tables(tmp_path):
    df = pd.DataFrame({"person": ["a", "b", "c"], "q1": [0, 1, np.nan], "q2": [1, 1, 0]})
    r = etalon.responses(df)
    assert r.persons == ["a", "b", "c"] and r.item_ids == ["q1", "q2"]
    assert etalon.responses(df.set_index("person")).persons == ["a", "b", "c"]
    long = df.melt(id_vars="person", var_name="item", value_name="response")
    rl = etalon.responses(long)
    long.astype({"response": "Int64"}).to_csv(tmp_path / "long.csv", index=False)
    _same(rl, etalon.read_responses(tmp_path / "long.csv", format="long"))
    assert rl.layout == "long" and rl.persons == ["a", "b", "c"]
    dup = pd.DataFrame({"person": ["a", "a"], "item": ["q1", "q1"], "response": [1, 0]})
    with pytest.raises(etalon.DataError, match="two responses"):
        etalon.responses(dup)


def test_bad_cells_are_located_errors():
    with pytest.raises(etalon.DataError) as e:
        etalon.responses(pd.DataFrame({"q1": [0, 1], "q2": [1, 0.5]}))
    assert isinstance(e.value, ValueError)
    assert str(e.value) == "<DataFrame>: column `q2`: row 2: `0.5` is not an integer response code"
    with pytest.raises(etalon.DataError, match="duplicate item column"):
        etalon.responses(np.zeros((2, 2)), items=["q", "q"])
    with pytest.raises(etalon.DataError, match="2-D"):
        etalon.responses(np.zeros(3))
    with pytest.raises(etalon.DataError, match="`x` is not an integer"):
        etalon.responses(pd.DataFrame({"person": ["a"], "item": ["q"], "response": ["x"]}))
    with pytest.raises(FileNotFoundError):
        etalon.read_responses(DATA / "none.csv")
