"""Type stubs of the etalon package (the native module ``etalon._etalon`` and its Python layer)."""

import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt
import pandas as pd

__version__: str

_Path = Union[str, os.PathLike]
_Json = Union[Mapping[str, Any], str, os.PathLike, None]

class EtalonError(ValueError):
    """Base class of Etalon's errors; the message names the file, line, item and field."""

class BankError(EtalonError):
    """An unreadable or invalid bank; ``problems``: dicts ``line``, ``item``, ``field``, ``message``."""

    problems: List[Dict[str, Any]]

class DataError(EtalonError): ...
class CalibrationError(EtalonError): ...
class ScoringError(EtalonError): ...
class ConfigError(EtalonError): ...
class SessionError(EtalonError): ...

class Bank:
    """An item bank (logistic metric, no 1.702): P(X = 1 | θ) = c + (d − c) / (1 + exp(−a(θ − b))) for
    Rasch … 4PL; graded P(X ≥ k | θ) = 1 / (1 + exp(−a(θ − b_k))); GPCM P(X = k | θ) ∝ exp(Σ_{v≤k} a(θ − b_v))."""

    @staticmethod
    def read(path: _Path) -> Bank:
        """Read a ``.csv`` or ``.json`` bank (optionally ``.gz``); ``BankError`` lists every problem."""
    def write(self, path: _Path) -> None:
        """Write the bank (format from the extension), replacing the file atomically."""
    @staticmethod
    def from_json(text: str, source: str = "<json>") -> Bank: ...
    def to_json(self) -> str: ...
    @staticmethod
    def from_csv(text: str, id: str = "bank") -> Bank: ...
    def to_csv(self) -> str:
        """CSV text, numbers in shortest round-trip form."""
    @staticmethod
    def from_dataframe(df: pd.DataFrame, id: str = "bank") -> Bank:
        """A bank from the CSV bank's columns (``id, model, a, b, c, d, b1…``, ``competence``,
        ``status``, ``codes``, ``exposure``, ``se_*``, ``latent_mean``, ``latent_variance``)."""
    def to_dataframe(self) -> pd.DataFrame:
        """The CSV bank's columns, one row per item, numbers exactly as in the bank."""
    @staticmethod
    def from_mirt(path: _Path, model: str) -> Bank:
        """Import an R mirt coefficient table (``etalon bank convert --from mirt``)."""
    @staticmethod
    def example() -> Bank:
        """The embedded example bank (64 items, illustrative 2PL parameters)."""
    @property
    def id(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def name(self) -> Optional[str]: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def item_ids(self) -> List[str]: ...
    @property
    def latent(self) -> Optional[Tuple[float, float]]:
        """(mean, variance) of the latent distribution the parameters are scaled to, if recorded."""
    def summary(self) -> Dict[str, Any]: ...
    def warnings(self) -> List[str]: ...
    def item(self, id: str) -> Dict[str, Any]: ...
    def __len__(self) -> int: ...
    def __contains__(self, id: str) -> bool: ...

class Responses:
    """Response data: persons × items, each item's distinct codes (increasing) its categories 0 … K-1."""

    @staticmethod
    def read(path: _Path, format: str = "wide") -> Responses: ...
    @property
    def n_persons(self) -> int: ...
    @property
    def item_ids(self) -> List[str]: ...
    @property
    def persons(self) -> List[str]: ...
    @property
    def codes(self) -> List[List[int]]: ...
    @property
    def layout(self) -> str: ...
    def __len__(self) -> int: ...

def read_responses(path: _Path, format: str = "wide") -> Responses: ...
def responses(
    data: Any,
    *,
    format: Optional[str] = None,
    items: Optional[Sequence[str]] = None,
    persons: Optional[Sequence[Any]] = None,
) -> Responses:
    """From a 2-D array (NaN = missing), a wide or long (``person,item,response``) DataFrame, a file."""

class Calibration:
    """``bank``, ``items``, ``log_likelihood`` (log L = Σ_p log ∫ Π_j P(x_pj | θ) φ(θ) dθ),
    ``aic`` (−2 log L + 2k), ``bic`` (−2 log L + k ln N), ``cycles``, ``converged``, ``item_fit`` (S-X²)."""

    bank: Bank
    model: str
    items: pd.DataFrame
    log_likelihood: float
    aic: float
    bic: float
    parameters: int
    persons: int
    n_items: int
    cycles: int
    converged: bool
    last_change: float
    latent: Tuple[float, float]
    item_fit: pd.DataFrame
    warnings: List[str]
    warning_details: List[Dict[str, Any]]
    dimensions: Optional[List[str]]
    correlations: Optional[npt.NDArray[np.float64]]
    general_loadings: Optional[npt.NDArray[np.float64]]
    general_loadings_se: Optional[List[float]]
    correlations_se: Optional[List[List[float]]]

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
    priors: Optional[Mapping[str, Optional[Tuple[float, float]]]] = None,
    threads: Optional[int] = None,
    progress: Union[None, bool, Callable[[int, float, float], Any]] = None,
    format: Optional[str] = None,
    dimensions: Union[None, _Path, Mapping[str, str]] = None,
) -> Calibration:
    """Marginal maximum likelihood by EM (Bock & Aitkin), mirt's defaults: 61 points on [-6, 6],
    N(0, 1), stop when the largest parameter change < ``tol``. Ctrl-C stops it (KeyboardInterrupt).
    ``dimensions`` (item → dimension, or an ``item,dimension`` file): the between-item
    multidimensional model, dimensions correlated through a general factor (r_kl = λ_k λ_l)."""

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
    levels: _Json = None,
    threads: Optional[int] = None,
    format: Optional[str] = None,
) -> pd.DataFrame:
    """``person, theta, se`` (+ ``level, label, level_probability``): EAP = ∫θ L π / ∫L π (SE =
    posterior SD), MAP, ML (SE = 1/√I(θ̂)), WLE (root of ∂log L/∂θ + J/(2I)). On a multidimensional
    bank: EAP or MAP under N(0, R), ``theta, se`` (the general level) then ``theta_DIM, se_DIM``."""

def draw_thetas(n: int, seed: int = 1) -> npt.NDArray[np.float64]: ...
def simulate(
    bank: Bank,
    thetas: Union[int, Sequence[float], npt.NDArray[np.float64]],
    *,
    config: _Json = None,
    responses: Any = None,
    seed: int = 1,
    threads: Optional[int] = None,
) -> pd.DataFrame:
    """``examinee, true_theta, theta, se, length, items``; ``attrs["summary"]``: mean length, bias, RMSE."""

class Session:
    """One adaptive test's state; JSON-serialisable, resumable, verified by replay."""

    def to_json(self) -> str: ...
    @staticmethod
    def from_json(text: str) -> Session: ...
    @property
    def seed(self) -> int: ...
    @property
    def bank_id(self) -> str: ...
    @property
    def pending(self) -> Optional[str]: ...
    @property
    def finished(self) -> Optional[str]: ...
    @property
    def estimate(self) -> Tuple[float, float]: ...
    @property
    def length(self) -> int: ...
    @property
    def history(self) -> List[Dict[str, Any]]: ...

class CatEngine:
    """A bank and a session configuration (selection ``mfi`` maximises I_j(θ̂) = Σ_k P'_jk²/P_jk)."""

    def __init__(self, bank: Bank, config: _Json = None) -> None: ...
    @property
    def bank(self) -> Bank: ...
    @property
    def config_json(self) -> str: ...
    def start(self, seed: int = 0) -> Session: ...
    def next(self, session: Session) -> Optional[str]: ...
    def record(self, session: Session, item: str, response: int) -> Tuple[float, float]: ...
    def result(self, session: Session) -> Dict[str, Any]: ...
    def verify(self, session: Session) -> None: ...
