"""BG/NBD (Fader, Hardie & Lee 2005) fitted by maximum likelihood on (x, t_x, T).

``variant="mbgnbd"`` gives the modified BG/NBD (Batislam, Denizel & Filiztekin 2007): a customer
may also drop out right after the first purchase, so one-time buyers get P(alive) < 1 (in plain
BG/NBD they are alive with certainty, which makes P(alive) a weak churn ranking where many
customers bought once).

Only the four parameters are fitted here; the per-customer quantities (P(alive), expected
purchases) are computed in SQL by dbt from the stored parameters, so the heavy part scales with
the warehouse. The Python versions of those formulas below exist to check the SQL against.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize
from scipy.special import gammaln, hyp2f1


@dataclass(frozen=True)
class BgNbdParams:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int
    converged: bool
    variant: str = "bgnbd"

    def as_dict(self) -> dict:
        return asdict(self)


def _arrays(x, t_x, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    if not (x.shape == t_x.shape == T.shape):
        raise ValueError("x, t_x and T must have the same length")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(T < t_x):
        raise ValueError("need x >= 0 and 0 <= t_x <= T for every customer")
    return x, t_x, T


VARIANTS = ("bgnbd", "mbgnbd")


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")


@dataclass(frozen=True)
class _Sample:
    """A sample as its distinct values plus, per customer, indices into them.

    Every term of the likelihood is a function of x, of T or of t_x alone, and a customer base has
    few distinct values of each (purchase counts; whole days in the project's time unit), so the
    costly gammaln/log calls run on the distinct values and each customer gathers its own. The
    gathered numbers are the per-customer ones bit for bit, so the optimiser's path and the fitted
    parameters are those of the plain per-customer formula; each evaluation is several times cheaper.
    """

    x: np.ndarray
    x_index: np.ndarray
    t_x: np.ndarray
    t_x_index: np.ndarray
    T: np.ndarray
    T_index: np.ndarray

    @classmethod
    def of(cls, x, t_x, T) -> _Sample:
        x, t_x, T = _arrays(x, t_x, T)
        ux, ix = np.unique(x, return_inverse=True)
        utx, itx = np.unique(t_x, return_inverse=True)
        uT, iT = np.unique(T, return_inverse=True)
        return cls(ux, ix, utx, itx, uT, iT)

    @property
    def size(self) -> int:
        return int(self.x_index.size)


def log_likelihood(r: float, alpha: float, a: float, b: float, x, t_x, T, variant: str = "bgnbd") -> np.ndarray:
    """Per-customer log-likelihood (methods.md, equation 6 of the paper; or the MBG/NBD one)."""
    _check_variant(variant)
    return _log_likelihood(r, alpha, a, b, _Sample.of(x, t_x, T), variant)


def _log_likelihood(r: float, alpha: float, a: float, b: float, sample: _Sample, variant: str) -> np.ndarray:
    x = sample.x  # distinct values: the terms below that depend on x alone are per distinct x
    rx = r + x
    a1 = gammaln(rx) - gammaln(r) + r * np.log(alpha)
    if variant == "mbgnbd":
        a2 = gammaln(a + b) + gammaln(b + x + 1) - gammaln(b) - gammaln(a + b + x + 1)
        a4_x = np.log(a) - np.log(b + x)
    else:
        a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
        repeat = x > 0
        # b + x - 1 is only meaningful for repeaters; the others cannot have dropped out
        a4_x = np.where(repeat, np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0)), -np.inf)
    rx_c = rx[sample.x_index]
    a3 = -rx_c * np.log(alpha + sample.T)[sample.T_index]
    a4 = a4_x[sample.x_index] - rx_c * np.log(alpha + sample.t_x)[sample.t_x_index]
    return (a1 + a2)[sample.x_index] + np.logaddexp(a3, a4)


def fit(x, t_x, T, *, initial: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
        variant: str = "bgnbd") -> BgNbdParams:
    """Maximum-likelihood r, α, a, b; optimised on log-parameters so they stay positive."""
    _check_variant(variant)
    sample = _Sample.of(x, t_x, T)
    if sample.size == 0:
        raise ValueError("cannot fit BG/NBD on zero customers")

    def negative_ll(log_params: np.ndarray) -> float:
        r, alpha, a, b = np.exp(log_params)
        value = -float(np.sum(_log_likelihood(r, alpha, a, b, sample, variant)))
        return value if np.isfinite(value) else 1e300

    start = np.log(np.asarray(initial, dtype=float))
    # bounds keep degenerate samples (a handful of customers) from driving a parameter to
    # 0 or infinity and overflowing; real data sits far inside e^±15
    bounds = [(-15.0, 15.0)] * 4
    result = optimize.minimize(negative_ll, start, method="Nelder-Mead", bounds=bounds,
                               options={"xatol": 1e-8, "fatol": 1e-8, "maxiter": 20_000, "maxfev": 20_000})
    # polish with a gradient method from the simplex optimum; keep whichever is better
    polished = optimize.minimize(negative_ll, result.x, method="L-BFGS-B", bounds=bounds)
    best = polished if polished.fun <= result.fun else result
    r, alpha, a, b = (float(v) for v in np.exp(best.x))
    return BgNbdParams(r, alpha, a, b, -float(best.fun), sample.size, bool(result.success or polished.success),
                       variant)


def _dead_odds(params: BgNbdParams, x, t_x, T) -> np.ndarray:
    """Odds of having dropped out after the last purchase versus being alive."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if params.variant == "mbgnbd":
        return a / (b + x) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    return np.where(x > 0, a / np.maximum(b + x - 1, 1e-300) * ((alpha + T) / (alpha + t_x)) ** (r + x), 0.0)


def p_alive(params: BgNbdParams, x, t_x, T) -> np.ndarray:
    """P(still active | x, t_x, T)."""
    x, t_x, T = _arrays(x, t_x, T)
    return 1.0 / (1.0 + _dead_odds(params, x, t_x, T))


def expected_purchases(params: BgNbdParams, t: float, x, t_x, T) -> np.ndarray:
    """E[purchases in (T, T+t] | x, t_x, T] (equation 10 of the paper), using scipy's ₂F₁."""
    x, t_x, T = _arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = t / (alpha + T + t)
    shift = 1.0 if params.variant == "mbgnbd" else 0.0  # MBG/NBD: b+x+1 and a+b+x in place of b+x, a+b+x-1
    hyp = hyp2f1(r + x, b + x + shift, a + b + x - 1 + shift, z)
    numerator = (a + b + x - 1 + shift) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
    return numerator / (1 + _dead_odds(params, x, t_x, T))
