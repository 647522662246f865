"""The BG/NBD fit reproduces Fader, Hardie & Lee (2005) on the CDNOW sample (weeks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from customer_warehouse.transform import bgnbd
from scipy import integrate

CDNOW = Path(__file__).resolve().parents[1] / "fixtures" / "cdnow_summary.csv"


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(CDNOW)


@pytest.fixture(scope="module")
def fitted(cdnow) -> bgnbd.BgNbdParams:
    return bgnbd.fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])


def test_cdnow_fixture_is_the_published_sample(cdnow):
    assert len(cdnow) == 2357
    assert cdnow["frequency"].sum() == 2457  # repeat transactions in the calibration period


def test_fit_reproduces_published_parameters(fitted):
    assert fitted.customers == 2357
    assert fitted.r == pytest.approx(0.243, abs=0.005)
    assert fitted.alpha == pytest.approx(4.414, abs=0.02)
    assert fitted.a == pytest.approx(0.793, abs=0.01)
    assert fitted.b == pytest.approx(2.426, abs=0.02)
    assert fitted.log_likelihood == pytest.approx(-9582.4, abs=0.1)
    assert fitted.converged


def test_fit_is_the_maximum(cdnow, fitted):
    x, t_x, t = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    best = bgnbd.log_likelihood(fitted.r, fitted.alpha, fitted.a, fitted.b, x, t_x, t).sum()
    for factor in (0.95, 1.05):
        for i in range(4):
            params = [fitted.r, fitted.alpha, fitted.a, fitted.b]
            params[i] *= factor
            assert bgnbd.log_likelihood(*params, x, t_x, t).sum() < best


def test_p_alive_edges(fitted):
    # no repeat purchase: BG/NBD customers can only drop out right after a purchase
    assert bgnbd.p_alive(fitted, [0], [0.0], [30.0])[0] == 1.0
    recent, stale = bgnbd.p_alive(fitted, [5, 5], [29.0, 5.0], [30.0, 30.0])
    assert 0 < stale < recent <= 1


def test_expected_purchases_matches_numerical_integral(fitted):
    """Eq. (10) against a direct integration of the conditional expectation for one customer."""
    from scipy.special import betaln, gammaln

    r, alpha, a, b = fitted.r, fitted.alpha, fitted.a, fitted.b
    x, t_x, t_cal, horizon = 3, 20.0, 38.0, 13.0
    closed = bgnbd.expected_purchases(fitted, horizon, [x], [t_x], [t_cal])[0]

    # E[Y(t) | λ, p, alive] = (1 − exp(−λpt))/p; integrate over the posterior of (λ, p) and P(alive)
    def integrand(p, lam):
        log_prior = ((r - 1) * np.log(lam) - lam * alpha + r * np.log(alpha) - gammaln(r)
                     + (a - 1) * np.log(p) + (b - 1) * np.log1p(-p) - betaln(a, b))
        lik_alive = (1 - p) ** x * lam ** x * np.exp(-lam * t_cal)
        lik_dead = p * (1 - p) ** (x - 1) * lam ** x * np.exp(-lam * t_x)
        expected = (1 - np.exp(-lam * p * horizon)) / p
        return np.exp(log_prior) * np.array([lik_alive * expected, lik_alive + lik_dead])

    numerator = integrate.dblquad(lambda p, lam: integrand(p, lam)[0], 0, 50, 0, 1)[0]
    evidence = integrate.dblquad(lambda p, lam: integrand(p, lam)[1], 0, 50, 0, 1)[0]
    assert closed == pytest.approx(numerator / evidence, rel=1e-3)


def test_fit_refuses_impossible_input():
    with pytest.raises(ValueError):
        bgnbd.fit([1], [5.0], [3.0])  # last purchase after the end of observation
    with pytest.raises(ValueError):
        bgnbd.fit([], [], [])


def test_modified_bgnbd_lets_one_time_buyers_drop_out(cdnow):
    x, t_x, t = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    params = bgnbd.fit(x, t_x, t, variant="mbgnbd")
    assert params.variant == "mbgnbd" and params.converged
    best = bgnbd.log_likelihood(params.r, params.alpha, params.a, params.b, x, t_x, t, "mbgnbd").sum()
    assert best == pytest.approx(params.log_likelihood)
    for i in range(4):
        worse = [params.r, params.alpha, params.a, params.b]
        worse[i] *= 1.05
        assert bgnbd.log_likelihood(*worse, x, t_x, t, "mbgnbd").sum() < best
    one_time = bgnbd.p_alive(params, [0, 0], [0.0, 0.0], [5.0, 38.0])
    assert 0 < one_time[1] < one_time[0] < 1  # the longer the silence, the likelier gone


@pytest.mark.parametrize("variant", bgnbd.VARIANTS)
def test_likelihood_on_distinct_values_is_the_per_customer_formula(cdnow, variant):
    """The fit evaluates each term once per distinct x, t_x or T; that must be exactly eq. (6) per customer."""
    from scipy.special import gammaln

    x, t_x, t = (cdnow[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    r, alpha, a, b = 0.3, 5.0, 0.9, 2.1
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a3 = -(r + x) * np.log(alpha + t)
    if variant == "mbgnbd":
        a2 = gammaln(a + b) + gammaln(b + x + 1) - gammaln(b) - gammaln(a + b + x + 1)
        a4 = np.log(a) - np.log(b + x) - (r + x) * np.log(alpha + t_x)
    else:
        a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
        with np.errstate(divide="ignore"):
            a4 = np.where(x > 0, np.log(a) - np.log(b + x - 1) - (r + x) * np.log(alpha + t_x), -np.inf)
    direct = a1 + a2 + np.logaddexp(a3, a4)
    assert len(np.unique(x)) < len(x) / 10  # the sample repeats values, so the gathering is exercised
    np.testing.assert_array_equal(bgnbd.log_likelihood(r, alpha, a, b, x, t_x, t, variant), direct)
