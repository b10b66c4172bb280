"""Shared fixtures: the repository's reference data (``reference/``, inside the repository: the tests
never read ``../shared``) and the ``etalon`` command line, whose numbers the package must reproduce.

The command line is ``$ETALON_BIN``, else ``target/debug/etalon`` or ``target/release/etalon`` of the
repository. Without one, the comparisons with it are skipped — unless ``ETALON_REQUIRE_CLI=1`` (CI),
which makes them fail instead.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "reference"
DATA = REFERENCE / "data"
MIRT = REFERENCE / "mirt"
CATR = REFERENCE / "catR"
TOOLKIT = REFERENCE / "toolkit"


def read_csv(path, **kwargs):
    """``pandas.read_csv`` with numbers parsed exactly (pandas 3 does by default; older versions need
    ``float_precision="round_trip"``)."""
    if int(pd.__version__.split(".")[0]) < 3:
        kwargs.setdefault("float_precision", "round_trip")
    return pd.read_csv(path, **kwargs)


def _find_cli():
    env = os.environ.get("ETALON_BIN")
    if env:
        return Path(env)
    for profile in ("debug", "release"):
        p = REPO / "target" / profile / "etalon"
        if p.exists():
            return p
    return None


@pytest.fixture(scope="session")
def cli():
    """Run ``etalon ARGS --json`` and return its JSON output (a function)."""
    path = _find_cli()
    if path is None or not path.exists():
        message = "no etalon binary (set ETALON_BIN, or build it with `cargo build --bin etalon`)"
        if os.environ.get("ETALON_REQUIRE_CLI") == "1":
            pytest.fail(message)
        pytest.skip(message)

    def run(*args):
        out = subprocess.run(
            [str(path), "--json", *map(str, args)],
            check=True,
            capture_output=True,
            text=True,
        )
        return json.loads(out.stdout) if out.stdout.strip() else None

    return run
