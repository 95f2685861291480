"""brms' unstr(time, gr) (issue 23): parsing, bad input, and the conditional engine's log
density against scipy's multivariate normal / multivariate t per group (1e-9) at random points.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedformula as mf
from mixedformula.design import design_matrices
from mixedformula.design.unstr import MAX_TIMES, time_patterns
from mixedformula.errors import DataError, FamilyError, FormulaError
from sim import constrained_value as _value


def _data(seed=0, G=12, T=3):
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(G):
        for t in range(T):
            if (g % 4 == 1 and t == 1) or (g % 4 == 2 and t == 0):
                continue                                   # missing time points
            rows.append(dict(g=f"s{g}", t=t + 1, x=rng.normal()))
    d = pd.DataFrame(rows).sample(frac=1.0, random_state=2)  # shuffled order
    d["y"] = 1 + 0.5 * d.x + rng.normal(size=len(d))
    return d


def test_patterns():
    D = design_matrices("y ~ x + unstr(t, g)", _data())
    pats = time_patterns(D.autocor)
    assert sorted(p.times for p in pats) == [(0, 1, 2), (0, 2), (1, 2)]
    assert D.autocor.times == ("1", "2", "3")


@pytest.mark.parametrize("formula, message", [
    ("y ~ x + unstr(t)", "needs both time and gr"),
    ("y ~ x + unstr(t + 1, g)", "takes a column name"),
    ("y ~ x + unstr(t, g, p = 2)", "unknown argument"),
])
def test_formula_refusals(formula, message):
    with pytest.raises(FormulaError, match=message):
        design_matrices(formula, _data())


def test_bad_input():
    d = _data()
    dup = pd.concat([d, d.iloc[:1]])
    with pytest.raises(DataError, match="repeat a time point.*must be unique"):
        design_matrices("y ~ x + unstr(t, g)", dup)
    long = pd.DataFrame({"t": np.arange(MAX_TIMES + 1), "g": "a", "x": 0.0, "y": 1.0})
    with pytest.raises(DataError, match=f"limited to T <= {MAX_TIMES}"):
        design_matrices("y ~ x + unstr(t, g)", long)
    frac = d.assign(t=d.t + 0.5)
    with pytest.raises(DataError, match="whole numbers"):
        design_matrices("y ~ x + unstr(t, g)", frac)
    pois = d.assign(y=np.arange(len(d)) % 3)
    with pytest.raises(FamilyError, match="supported for the gaussian and student"):
        _ = mf.Model("y ~ x + unstr(t, g)", pois, family="poisson").pymc_model
    # brms' multivariate t of unstr() has one nu: a nu formula (a nu per row) is refused
    with pytest.raises(FamilyError, match="one nu per model"):
        _ = mf.Model(mf.bf("y ~ x + unstr(t, g)", nu="~ x"), d, family="student").pymc_model


@pytest.mark.parametrize("family, het", [("gaussian", False), ("gaussian", True),
                                         ("student", False)])
def test_logp_matches_scipy(family, het):
    d = _data()
    formula = (mf.bf("y ~ x + unstr(t, g)", sigma="~ 0 + factor(t)") if het
               else "y ~ x + unstr(t, g)")
    m = mf.Model(formula, d, family=family)
    M = m.pymc_model
    D = m.design
    y = D.y[:, 0]
    logp_y = M.compile_fn(M.logp(vars=[M["y"]], sum=True), inputs=M.value_vars,
                          on_unused_input="ignore")
    outs = M.replace_rvs_by_values([M["_beta"], M["_corr__cortime"]]
                                   + ([M["_beta_sigma"]] if het else []))
    extra = M.compile_fn(outs, inputs=M.value_vars, on_unused_input="ignore")
    rng = np.random.default_rng(5)
    point0 = M.initial_point()
    for _ in range(3):
        p = {k: rng.normal(size=np.shape(v)) * 0.7 for k, v in point0.items()}
        got = float(logp_y(p))
        out = extra(p)
        beta, C = out[0], out[1]
        sig = (np.exp(D.dpar_X[("sigma", 0)][0] @ out[2]) if het
               else np.full(len(y), float(_value(M, p, "sigma"))))
        mu = D.X @ beta
        want = 0.0
        for pat in time_patterns(D.autocor):
            Cs = C[np.ix_(pat.times, pat.times)]
            for rows in pat.rows:
                S = np.outer(sig[rows], sig[rows]) * Cs
                if family == "student":
                    nu = float(_value(M, p, "nu"))
                    want += stats.multivariate_t(mu[rows], S, df=nu).logpdf(y[rows])
                else:
                    want += stats.multivariate_normal(mu[rows], S).logpdf(y[rows])
        assert got == pytest.approx(want, rel=1e-9, abs=1e-9)


def _orthodont():
    from pathlib import Path
    d = pd.read_csv(Path(__file__).parent / "data" / "orthodont.csv")
    d["time"] = d.groupby("Subject").age.rank().astype(int)     # 1..4, as the R script
    d["a"] = d.age - 11
    return d


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_lmer_matches_nlme_corsymm(method):
    """mf.lmer with unstr(time, Subject) = nlme's lme(..., correlation = corSymm(~ time |
    Subject)) on Orthodont (tests/data/r/unstr_nlme.R; a random slope on age − 11, since
    corSymm beside a random intercept of the same subject is not identified): β, σ, the
    slope's sd, the six correlations and logLik within 1e-4 relative."""
    import json
    from pathlib import Path
    ref = json.loads((Path(__file__).parent / "data" / "unstr_nlme.json").read_text())[method]
    fit = mf.lmer("distance ~ age + (0 + a | Subject) + unstr(time, Subject)", _orthodont(),
                  reml=method == "reml")
    assert np.asarray(fit.beta) == pytest.approx(ref["beta"], rel=1e-4)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-4)
    vc = fit.varcorr()
    assert float(vc.sdcor[vc.grp == "Subject"].iloc[0]) == pytest.approx(ref["sd_Subject"],
                                                                         rel=1e-4)
    assert fit.logLik == pytest.approx(ref["logLik"], rel=1e-4)
    assert fit.n_params == ref["df"]
    cp = fit.corpars()
    assert list(cp.columns) == ["grp", "structure", "parameter", "estimate"]
    assert list(cp.parameter) == ["cortime__1__2", "cortime__1__3", "cortime__2__3",
                                  "cortime__1__4", "cortime__2__4", "cortime__3__4"]
    assert set(cp.grp) == {"Residual"} and set(cp.structure) == {"unstr"}
    assert cp.estimate.to_numpy() == pytest.approx(ref["cor"], rel=1e-4)


def test_unstr_whitening_is_exact():
    """The lmer parametrisation and whitening (linalg/unstr_corr.py) against a dense
    hand computation: C positive definite from any a, WᵀW = R⁻¹ and log|R| on the patterns
    of _data() (missing time points)."""
    from mixedformula.linalg.unstr_corr import UnstrCorrelation
    D = design_matrices("y ~ x + unstr(t, g)", _data())
    rc = UnstrCorrelation(D.autocor)
    a = np.random.default_rng(3).normal(size=rc.n_par) * 2
    C = rc.value(a)
    assert np.allclose(np.diag(C), 1) and np.all(np.linalg.eigvalsh(C) > 0)
    n = len(D.autocor.codes)
    R = np.zeros((n, n))
    for p in time_patterns(D.autocor):
        for rows in p.rows:
            R[np.ix_(rows, rows)] = C[np.ix_(p.times, p.times)]
    W = rc.whiten(np.eye(n), C)
    assert W.T @ W == pytest.approx(np.linalg.inv(R), abs=1e-10)
    assert rc.logdet(C) == pytest.approx(np.linalg.slogdet(R)[1], rel=1e-12)
    assert rc.correlations(C) == pytest.approx(C[np.triu_indices(3, 1)], rel=1e-12)


def test_loo_and_response_draws_refused():
    """The rows of a group are correlated: pointwise LOO and independent response draws
    would be wrong numbers, so both are refused in plain words (epred is the mean, fine)."""
    import warnings

    from mixedformula.errors import MixedFormulaError
    d = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mf.fit("y ~ x + unstr(t, g)", d, chains=1, draws=30, tune=30, seed=1,
                     progressbar=False)
        with pytest.raises(MixedFormulaError, match="do not factorize"):
            fit.loo()
        with pytest.raises(MixedFormulaError, match="correlated within groups"):
            fit.predict(kind="response")
        ep = fit.predict(kind="epred")
    assert np.all(np.isfinite(np.asarray(ep.mean() if hasattr(ep, "mean") else ep)))
