"""pandas glue for the native module: banks as DataFrames and back, through the CSV bank format
(numbers in shortest round-trip form both ways, so a bank survives the trip exactly)."""

from __future__ import annotations

import io

import pandas as pd

#: pandas 3 parses floats exactly by default (and deprecates ``float_precision``).
_PANDAS_MAJOR = int(pd.__version__.split(".")[0])

#: Columns of the CSV bank that hold text, never numbers.
TEXT_COLUMNS = ("id", "model", "competence", "status", "codes")


def csv_to_dataframe(text: str) -> pd.DataFrame:
    """The CSV bank `text` as a DataFrame: text columns as strings, numbers parsed exactly."""
    header = text.split("\n", 1)[0].split(",")
    dtypes = {c: str for c in TEXT_COLUMNS if c in header}
    exact = {} if _PANDAS_MAJOR >= 3 else {"float_precision": "round_trip"}
    return pd.read_csv(io.StringIO(text), dtype=dtypes, keep_default_na=False, na_values=[""], **exact)


def dataframe_to_csv(df) -> str:
    """A DataFrame with the CSV bank's columns as CSV text (NaN and missing cells empty)."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"Bank.from_dataframe needs a pandas DataFrame, not {type(df).__name__}")
    if "id" not in df.columns and df.index.name == "id":
        df = df.reset_index()
    return df.to_csv(index=False, na_rep="", lineterminator="\n")
