"""Etalon from numpy and pandas: item banks, IRT calibration, ability estimation and adaptive tests.

Built from the same Rust crates as the ``etalon`` command line (PyO3), with no psychometrics of its
own: every number comes from the library calls the command line makes, with the same defaults, so
the package reproduces the command line's numbers exactly.

>>> import etalon, numpy as np
>>> fit = etalon.calibrate(np.array(data, dtype=float), model="2pl")   # NaN = missing
>>> fit.items                                                         # a, b (and SEs with se=True)
>>> scores = etalon.score(fit.bank, data, method="eap")                # DataFrame person, theta, se

Long calls run without the GIL; a calibration stops on Ctrl-C (KeyboardInterrupt) and reports its
progress to an optional callback. Errors are ``etalon.EtalonError`` subclasses (``ValueError``)
whose message names the file, line, item and field where it can.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from . import _etalon
from ._etalon import (
    Bank,
    BankError,
    CalibrationError,
    CatEngine,
    ConfigError,
    DataError,
    EtalonError,
    Responses,
    ScoringError,
    Session,
    SessionError,
    __version__,
)

__all__ = [
    "Bank",
    "Responses",
    "Calibration",
    "CatEngine",
    "Session",
    "responses",
    "read_responses",
    "calibrate",
    "score",
    "simulate",
    "draw_thetas",
    "EtalonError",
    "BankError",
    "DataError",
    "CalibrationError",
    "ScoringError",
    "ConfigError",
    "SessionError",
    "__version__",
]

_NATIVE_DTYPES = (
    np.float64,
    np.float32,
    np.int64,
    np.int32,
    np.int16,
    np.int8,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.bool_,
)


def read_responses(path: Union[str, os.PathLike], format: str = "wide") -> Responses:
    """Read a response file as ``etalon calibrate`` and ``etalon score`` read it.

    ``format="wide"``: a header of item ids (optional first column ``person``), one row per person,
    empty or ``NA`` missing. ``format="long"``: ``person,item,response``, one row per answer. Either
    optionally gzip-compressed. Each item's distinct codes, in increasing order, are its categories
    0 … K-1; the original codes are kept.
    """
    return Responses.read(os.fspath(path), format)


def _array_cells(a: np.ndarray) -> np.ndarray:
    if a.ndim != 2:
        raise DataError(f"response data must be a 2-D array (persons × items), got {a.ndim} dimensions")
    if a.dtype.type not in _NATIVE_DTYPES:
        try:
            a = a.astype(np.float64)
        except (TypeError, ValueError) as e:
            raise DataError(f"response data must be numeric (NaN = missing): {e}") from None
    return np.ascontiguousarray(a)


def _is_long(df: pd.DataFrame) -> bool:
    cols = {str(c).strip().lower() for c in df.columns}
    return {"person", "item", "response"} <= cols and len(cols) == 3


def responses(
    data: Any,
    *,
    format: Optional[str] = None,
    items: Optional[Sequence[str]] = None,
    persons: Optional[Sequence[Any]] = None,
) -> Responses:
    """Response data as Etalon holds them, from any of:

    - a 2-D numpy array (persons × items): floats with NaN as missing, integers or booleans; items
      are named by ``items`` (default ``Item.1`` … ``Item.J``), persons by ``persons`` (default their
      1-based row);
    - a wide DataFrame (columns = item ids; a ``person`` column, or else a non-default index, names
      the persons);
    - a long DataFrame with the columns ``person``, ``item``, ``response`` (one answer per row);
    - a path to a CSV file (``format="wide"`` or ``"long"``);
    - a ``Responses`` object (returned as it is).

    The result equals what the command line reads from the same table written as CSV: each item's
    distinct codes, in increasing order, are its categories.
    """
    if isinstance(data, Responses):
        return data
    if isinstance(data, (str, os.PathLike)):
        return read_responses(data, format or "wide")
    if isinstance(data, pd.DataFrame):
        if format == "long" or (format is None and _is_long(data)):
            cols = {str(c).strip().lower(): c for c in data.columns}
            missing = [c for c in ("person", "item", "response") if c not in cols]
            if missing:
                raise DataError(f"<DataFrame>: a long table needs the columns person, item, response (missing {', '.join(missing)})")
            response = pd.to_numeric(data[cols["response"]], errors="coerce")
            bad = response.isna() & data[cols["response"]].notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise DataError(
                    f"<DataFrame>: column `response`: row {row + 1}: "
                    f"`{data[cols['response']].iloc[row]}` is not an integer response code"
                )
            return _etalon.responses_long(
                data[cols["person"]].astype(str).tolist(),
                data[cols["item"]].astype(str).tolist(),
                np.ascontiguousarray(response.to_numpy(dtype=np.float64, na_value=np.nan)),
                "<DataFrame>",
            )
        df = data
        person_ids = None
        person_cols = [c for c in df.columns if str(c).strip().lower() == "person"]
        if person_cols:
            person_ids = df[person_cols[0]].astype(str).tolist()
            df = df.drop(columns=person_cols[:1])
        elif persons is not None:
            person_ids = [str(p) for p in persons]
        elif not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1):
            person_ids = [str(p) for p in df.index]
        item_ids = [str(c) for c in df.columns]
        dtypes = set(df.dtypes)
        if dtypes and all(isinstance(t, np.dtype) and t.type in _NATIVE_DTYPES for t in dtypes) and len(dtypes) == 1:
            cells = df.to_numpy()
        else:
            try:
                cells = df.apply(pd.to_numeric, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError) as e:
                raise DataError(f"<DataFrame>: response cells must be numbers (NaN = missing): {e}") from None
        return _etalon.responses_wide(_array_cells(np.asarray(cells)), item_ids, person_ids, "<DataFrame>")
    a = np.asarray(data)
    cells = _array_cells(a)
    item_ids = [str(i) for i in items] if items is not None else [f"Item.{j + 1}" for j in range(cells.shape[1])]
    person_ids = [str(p) for p in persons] if persons is not None else None
    return _etalon.responses_wide(cells, item_ids, person_ids, "<array>")


class Calibration:
    """The outcome of :func:`calibrate`.

    Attributes:
        bank: the calibrated :class:`Bank` (anchor items included, unchanged).
        items: DataFrame of the item parameters (the CSV bank's columns; ``se_*`` with ``se=True``).
        log_likelihood: marginal log-likelihood log L = Σ_p log ∫ Π_j P(x_pj | θ) φ(θ) dθ.
        aic: −2 log L + 2k.  bic: −2 log L + k ln N (k estimated parameters, N persons).
        parameters: k.  persons: N (persons with at least one answer).  n_items: items calibrated.
        cycles: EM cycles.  converged: whether the largest parameter change fell below ``tol``.
        last_change: largest parameter change of the last cycle.
        latent: (mean, variance) of the latent distribution (estimated for Rasch and anchored fits).
        item_fit: DataFrame of S-X² per item (``item, s_x2, df, p_value, rmsea``; Orlando & Thissen).
        warnings: sentences (degenerate items, dropped persons, non-convergence).
        warning_details: the same as dicts with a ``kind`` and their fields.
    """

    def __init__(self, result: Mapping[str, Any]):
        self.bank: Bank = result["bank"]
        self.model: str = result["model"]
        self.log_likelihood: float = result["log_likelihood"]
        self.aic: float = result["aic"]
        self.bic: float = result["bic"]
        self.parameters: int = result["parameters"]
        self.persons: int = result["persons"]
        self.n_items: int = result["items"]
        self.cycles: int = result["cycles"]
        self.converged: bool = result["converged"]
        self.last_change: float = result["last_change"]
        self.latent: Tuple[float, float] = tuple(result["latent"])
        fit = result["item_fit"]
        self.item_fit: pd.DataFrame = pd.DataFrame(fit, columns=["item", "s_x2", "df", "p_value", "rmsea"])
        self.warnings: list = list(result["warnings"])
        self.warning_details: list = list(result["warning_details"])
        self.items: pd.DataFrame = self.bank.to_dataframe()
        # Multidimensional fits (``dimensions=``): the dimensions, their correlations and loadings on
        # the general factor (with their SEs when ``se=True``); None otherwise.
        self.dimensions: Optional[list] = result.get("dimensions")
        self.correlations: Optional[np.ndarray] = (
            np.array(result["correlations"]) if "correlations" in result else None
        )
        self.general_loadings: Optional[np.ndarray] = (
            np.array(result["general_loadings"]) if "general_loadings" in result else None
        )
        self.general_loadings_se = result.get("general_loadings_se")
        self.correlations_se = result.get("correlations_se")

    def __repr__(self) -> str:
        state = "converged" if self.converged else "NOT converged"
        return (
            f"<etalon.Calibration {self.model}: {self.n_items} items, {self.persons} persons, "
            f"log-likelihood {self.log_likelihood:.4f}, AIC {self.aic:.2f}, BIC {self.bic:.2f}, "
            f"{self.cycles} EM cycles, {state}, {len(self.warnings)} warnings"
            + (f", dimensions {', '.join(self.dimensions)}" if self.dimensions else "")
            + ">"
        )


def _text_progress(cycle: int, log_likelihood: float, change: float) -> None:
    sys.stderr.write(f"\rcycle {cycle:4d}  log-likelihood {log_likelihood:.4f}  largest change {change:.2e}")
    sys.stderr.flush()


def _prior(name: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {"mean": float(value["mean"]), "sd": float(value["sd"])}
    try:
        mean, sd = value
    except (TypeError, ValueError):
        raise CalibrationError(f"priors.{name}: give (mean, sd), a dict with mean and sd, or None") from None
    return {"mean": float(mean), "sd": float(sd)}


def calibrate(
    data: Any,
    model: str = "2pl",
    *,
    items: Optional[Mapping[str, str]] = None,
    quadrature: int = 61,
    tol: float = 1e-4,
    max_cycles: int = 500,
    se: bool = False,
    anchor: Optional[Bank] = None,
    priors: Optional[Mapping[str, Any]] = None,
    threads: Optional[int] = None,
    progress: Union[None, bool, Callable[[int, float, float], Any]] = None,
    format: Optional[str] = None,
    dimensions: Union[None, str, os.PathLike, Mapping[str, str]] = None,
) -> Calibration:
    """Fit item parameters by marginal maximum likelihood with EM (Bock & Aitkin 1981), as
    ``etalon calibrate`` does, on mirt's defaults.

    The E-step integrates over ``quadrature`` equally spaced points θ_q on [-6, 6] with N(0, 1)
    weights (the latent variance is estimated for Rasch; mean and variance for anchored fits); the
    M-step maximises Σ_q Σ_k r_jqk log P_jk(θ_q) per item (Fisher scoring), accelerated by SQUAREM;
    EM stops when the largest parameter change is below ``tol`` or after ``max_cycles`` cycles.

    Args:
        data: a 2-D numpy array (NaN = missing), a wide or long DataFrame, a file, or ``Responses``
            (see :func:`responses`).
        model: ``rasch``, ``1pl``, ``2pl``, ``3pl``, ``4pl``, ``graded`` or ``gpcm`` (every item);
            ``items`` maps item ids to other models.
        se: standard errors by Oakes' identity (``se_*`` columns of ``items``).
        anchor: a bank whose items keep their parameters and set the scale.
        priors: Bayes modal priors, each ``(mean, sd)`` or ``None``: ``slope`` (log a ~ N),
            ``intercept`` (d ~ N), ``guessing`` (logit g ~ N; default (-1.5, 1) for 3PL/4PL),
            ``upper`` (logit u ~ N; default (1.5, 1) for 4PL).
        threads: worker threads (default all cores; results do not depend on it).
        progress: ``progress(cycle, log_likelihood, largest_change)`` after every EM cycle, or
            ``True`` for a line on stderr. KeyboardInterrupt (Ctrl-C) stops the fit and is raised.
        dimensions: item → dimension (a dict, or an ``item,dimension`` CSV file as ``etalon calibrate
            --dimensions`` reads), each item measuring one dimension: the between-item
            multidimensional model, its dimensions correlated through a general factor
            (r_kl = λ_k λ_l), on 21 × 21 Gauss–Hermite nodes per dimension (``quadrature`` does not
            apply; ``anchor`` is refused). The bank records the dimensions and correlations (write it
            as JSON to keep them); :func:`score` then scores every competence.

    Returns:
        :class:`Calibration`.
    """
    r = responses(data, format=format)
    em: dict = {"quadrature": int(quadrature), "tol": float(tol), "max_cycles": int(max_cycles)}
    if priors:
        unknown = set(priors) - {"slope", "intercept", "guessing", "upper"}
        if unknown:
            raise CalibrationError(f"priors: unknown {', '.join(sorted(unknown))} (slope, intercept, guessing, upper)")
        em["priors"] = {k: _prior(k, v) for k, v in priors.items()}
    spec = {"model": str(model).lower(), "items": dict(items or {}), "em": em, "standard_errors": bool(se)}
    callback = _text_progress if progress is True else (progress or None)
    import json

    if dimensions is not None:
        if int(quadrature) != 61:
            raise CalibrationError(
                "quadrature sets the unidimensional grid; a multidimensional calibration uses 21 × 21 "
                "Gauss–Hermite nodes per dimension"
            )
        if isinstance(dimensions, (str, os.PathLike)):
            dimensions = _etalon.read_dimensions(os.fspath(dimensions))
        else:
            dimensions = {str(k): str(v) for k, v in dict(dimensions).items()}
    try:
        result = _etalon.calibrate(r, json.dumps(spec), anchor, threads, callback, dimensions)
    finally:
        if progress is True:
            sys.stderr.write("\n")
    return Calibration(result)


def score(
    bank: Bank,
    data: Any,
    method: str = "eap",
    *,
    quadrature: int = 61,
    rule: str = "rectangle",
    theta_range: Tuple[float, float] = (-6.0, 6.0),
    prior_mean: Optional[float] = None,
    prior_sd: Optional[float] = None,
    levels: Any = None,
    threads: Optional[int] = None,
    format: Optional[str] = None,
) -> pd.DataFrame:
    """Every person's ability estimate θ̂ and its SE, as ``etalon score`` computes them.

    - ``eap``: posterior mean ∫ θ L(θ) π(θ) dθ / ∫ L(θ) π(θ) dθ on ``quadrature`` points of
      ``theta_range`` (``rule``: ``rectangle`` as mirt, ``trapezoid`` as catR, ``gauss-hermite``);
      SE = posterior SD.
    - ``map``: posterior mode; SE = 1/√(−∂² log posterior/∂θ²).
    - ``ml``: likelihood maximum, ±inf for all-lowest/all-highest patterns; SE = 1/√I(θ̂).
    - ``wle``: Warm's weighted likelihood, the root of ∂log L/∂θ + J(θ)/(2I(θ)); finite always.

    The prior π is N(``prior_mean``, ``prior_sd``²), by default the bank's latent distribution
    (N(0, 1) when it records none). Modal estimates are bounded to ``theta_range``.

    Returns a DataFrame ``person, theta, se`` (NaN for persons who could not be scored), with a level
    map (``levels``: dict ``{"cuts": [...], "labels": [...]}``, JSON text or file) also ``level,
    label, level_probability``; ``df.attrs["summary"]`` holds the counts ``etalon score`` prints.

    A multidimensional bank (its ``latent`` names dimensions and their correlations R) is scored as
    ``etalon score`` scores it: ``eap`` (the posterior mean and covariance on 21 Gauss–Hermite nodes
    per dimension, up to three dimensions) or ``map`` (the posterior mode and its Laplace covariance)
    under N(0, R); the columns are ``theta, se`` for the general level (the mean of the competences,
    SE √(1ᵀC1)/D) then ``theta_DIM, se_DIM`` per dimension, each followed by ``level, label,
    level_probability`` with levels (a dimension on its competence's map). ``ml``, ``wle`` and a
    ``prior_mean``/``prior_sd`` are refused; ``quadrature``, ``rule`` and ``theta_range`` apply to
    one-θ banks only.
    """
    r = responses(data, format=format)
    out = _etalon.score(
        bank,
        r,
        method=method,
        quadrature=int(quadrature),
        rule=rule,
        theta_range=(float(theta_range[0]), float(theta_range[1])),
        prior_mean=prior_mean,
        prior_sd=prior_sd,
        levels=levels,
        threads=threads,
    )
    summary = out.pop("summary")
    df = pd.DataFrame(out)
    if "level" in df:
        df["level"] = df["level"].astype("Int64").where(df["level"] >= 0)
    df.attrs["summary"] = summary
    return df


def draw_thetas(n: int, seed: int = 1) -> np.ndarray:
    """``n`` true abilities from N(0, 1), the stream ``etalon simulate --examinees n --seed seed`` draws."""
    return _etalon.draw_thetas(int(n), int(seed))


def simulate(
    bank: Bank,
    thetas: Union[int, Sequence[float], np.ndarray],
    *,
    config: Any = None,
    responses: Any = None,
    seed: int = 1,
    threads: Optional[int] = None,
) -> pd.DataFrame:
    """Simulate adaptive tests, as ``etalon simulate`` does.

    ``thetas``: the true abilities, or a number of examinees whose abilities are drawn from N(0, 1)
    with ``seed`` (as ``--examinees``). Each examinee's seed derives from ``seed`` and its index, so
    results do not depend on the thread count. Answers are drawn as catR does, X = 1{P(θ) ≥ U} with
    U ~ U(0, 1), or taken from ``responses`` (pre-drawn: one row per examinee, wide). ``config`` is a
    session configuration (dict, JSON text or file); by default ``etalon simulate``'s (EAP on 61
    points of [-6, 6], estimates bounded there, MFI, at most 40 items, stop at SE ≤ 0.3, start at 0).

    Returns a DataFrame ``examinee, true_theta, theta, se, length, items`` (items joined by ``;``);
    ``df.attrs["summary"]`` holds what ``etalon simulate`` prints (mean length, bias, RMSE, exposure).
    """
    if isinstance(thetas, (int, np.integer)):
        thetas = draw_thetas(int(thetas), seed)
    t = np.ascontiguousarray(np.asarray(thetas, dtype=np.float64).ravel())
    predrawn = None
    if responses is not None:
        predrawn = globals()["responses"](responses, format="wide")
    out = _etalon.simulate(bank, t, config=config, responses=predrawn, seed=int(seed), threads=threads)
    summary = out.pop("summary")
    df = pd.DataFrame(out)
    df.attrs["summary"] = summary
    return df
