"""brms' ``categorical`` family (multinomial logit, families/categorical.py).

References: scipy.stats.multinomial (n = 1) for the log-density (and mpmath at 50 digits
where scipy's parametrisation would round), brms 2.18 (tests/data/brms_ordinal.json key
categorical_sim, tests/data/brms_categorical_prior.json; scripts in tests/data/r/), and
simulation truth for the recovery check.
"""
import json
from pathlib import Path

import mpmath
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import softmax

import mixedformula as mf
from mixedformula.errors import FamilyError, MixedFormulaError
from mixedformula.families import get_family

DATA = Path(__file__).parent / "data"


def _family(cats=("A", "B", "C")):
    return get_family("categorical").for_response(list(cats))


def _scipy_logpmf(y, eta):
    """log P(y) from scipy.stats.multinomial(1, softmax(η)); the categories are reordered so
    the most probable one is last (scipy replaces p[-1] by 1 − Σ p[:-1], which would cancel for
    a tiny last probability)."""
    out = np.empty(len(y))
    for i, (yi, e) in enumerate(zip(y, eta)):
        order = np.r_[np.delete(np.arange(len(e)), np.argmax(e)), np.argmax(e)]
        x = (order == yi - 1).astype(int)
        out[i] = stats.multinomial(1, softmax(e[order])).logpmf(x)
    return out


def _mpmath_logp(y, eta):
    mpmath.mp.dps = 50
    return np.array([float(mpmath.mpf(e[yi - 1]) - mpmath.log(mpmath.fsum(
        mpmath.exp(mpmath.mpf(v)) for v in e))) for yi, e in zip(y, eta)])


@pytest.mark.parametrize("K", [2, 3, 5])
def test_logpdf_matches_scipy_multinomial(K):
    """log P(y = k) = η_k − log Σ exp η_j with η_1 = 0, against scipy's multinomial with
    n = 1, for moderate and extreme (|η| up to 30) predictors, to 1e-9."""
    rng = np.random.default_rng(K)
    fam = _family([chr(65 + k) for k in range(K)])
    n = 400
    mus = rng.normal(0, 2, size=(n, K - 1))
    mus[: n // 2] = rng.choice([-30.0, -15.0, 0.0, 15.0, 30.0], size=(n // 2, K - 1))
    eta = np.concatenate([np.zeros((n, 1)), mus], axis=1)
    y = rng.integers(1, K + 1, size=n).astype(float)
    params = {d: mus[:, j] for j, d in enumerate(fam.dpars)}
    got = fam.logpdf(y, np.zeros(n), params)
    np.testing.assert_allclose(got, _scipy_logpmf(y.astype(int), eta), rtol=0, atol=1e-9)
    np.testing.assert_allclose(got, _mpmath_logp(y.astype(int), eta), rtol=1e-12, atol=1e-12)
    # the probabilities (epred) sum to one and are the exponentials of the log-density
    p = fam.mean(np.zeros(n), params)
    assert p.shape == (n, K)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(np.log(p[np.arange(n), y.astype(int) - 1]), got, atol=1e-12)
    # a value outside 1..K has probability 0
    assert np.all(fam.logpdf(np.array([0.0, K + 1.0, 1.5]), np.zeros(3),
                             {d: np.zeros(3) for d in fam.dpars}) == -np.inf)


def test_pymc_likelihood_matches_scipy_and_its_gradient():
    """The sampler's log-likelihood (one CustomDist) at extreme predictors equals scipy's, and
    its gradient with respect to μc is the hand-derived 1[y = c] − P(y = c)."""
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt
    fam = _family()
    rng = np.random.default_rng(3)
    n = 60
    mus0 = rng.choice([-30.0, -3.0, 0.0, 2.0, 30.0], size=(n, 2))
    y = rng.integers(1, 4, size=n).astype(float)
    with pm.Model(coords={"obs": np.arange(n)}) as model:
        mu = pt.dmatrix("mu")
        fam.pymc_likelihood("y", 0.0, {"muB": mu[:, 0], "muC": mu[:, 1]}, y)
    logp = model.logp()
    f = pytensor.function([mu], [logp, pt.grad(logp, mu)], on_unused_input="ignore")
    val, grad = f(mus0)
    eta = np.concatenate([np.zeros((n, 1)), mus0], axis=1)
    np.testing.assert_allclose(val, _scipy_logpmf(y.astype(int), eta).sum(), rtol=1e-12)
    p = softmax(eta, axis=1)
    onehot = (y[:, None] == np.arange(1, 4)[None, :]).astype(float)
    np.testing.assert_allclose(grad, (onehot - p)[:, 1:], atol=1e-12)


def test_draws_follow_the_category_probabilities():
    """rvs draws codes 1..K with frequencies P(y = k): a chi-square test at α = 10⁻³ (a
    correct sampler fails 0.1 % of the time for this fixed seed's data, which is fixed)."""
    fam = _family()
    n = 60000
    params = {"muB": np.full(n, 0.5), "muC": np.full(n, -1.0)}
    y = fam.rvs(np.zeros(n), params, np.random.default_rng(0))
    p = softmax(np.array([0.0, 0.5, -1.0]))
    counts = np.bincount(y.astype(int), minlength=4)[1:]
    assert set(np.unique(y)) == {1.0, 2.0, 3.0}
    assert stats.chisquare(counts, p * n).pvalue > 1e-3


# --------------------------------------------------------------------------- response checks

def test_response_coding_and_refusals():
    """Strings (sorted, as R's factor), a pandas Categorical (its order) and integers (sorted
    values) give codes 1..K with the first category the reference; non-integer numbers, a
    single category and labels that cannot name mu<cat> are refused in plain words; a
    category unseen when fitting is refused with its name and count."""
    fam = get_family("categorical")
    codes, labels = fam.response_data(pd.Series(["b", "a", "c", None, "a"]), "y")
    assert labels == ["a", "b", "c"]
    np.testing.assert_array_equal(codes, [2, 1, 3, np.nan, 1])
    codes, labels = fam.response_data(
        pd.Series(pd.Categorical(["lo", "hi", "hi"], categories=["mid", "hi", "lo"])), "y")
    assert labels == ["hi", "lo"] and list(codes) == [2, 1, 1]
    codes, labels = fam.response_data(pd.Series([3, 1, 2, 3]), "y")
    assert labels == ["1", "2", "3"] and list(codes) == [3, 1, 2, 3]
    assert fam.for_response(labels).dpars == ("mu2", "mu3")
    with pytest.raises(FamilyError, match=r"'y' has 2 value\(s\) that are not integers"):
        fam.response_data(pd.Series([1.0, 2.5, 3.0, 0.5]), "y")
    with pytest.raises(FamilyError, match="at least two response categories"):
        fam.for_response(["only"])
    with pytest.raises(FamilyError, match="cannot name a linear predictor"):
        fam.for_response(["a b", "c"])
    fitted = fam.for_response(["A", "B", "C"])
    np.testing.assert_array_equal(fitted.new_response_codes(["C", "A"], "y"), [3, 1])
    with pytest.raises(FamilyError, match=r"2 value\(s\) in categories the model was not "
                                          r"fitted to: 'D'"):
        fitted.new_response_codes(["A", "D", "D"], "y")


def test_model_refusals():
    """Single-category responses, unsupported formula parts and the maximum-likelihood
    engines are refused before anything runs."""
    d = pd.read_csv(DATA / "categorical_sim.csv").iloc[:60]
    with pytest.raises(FamilyError, match="at least two response categories"):
        mf.Model("y ~ x + (1 | g)", d.assign(y="A"), family="categorical")
    with pytest.raises(FamilyError, match="not integers"):
        mf.Model("y ~ x", d.assign(y=d["x"]), family="categorical")
    with pytest.raises(FamilyError, match="offset"):
        mf.Model("y ~ x + offset(x)", d, family="categorical")
    with pytest.raises(FamilyError, match="no parameter 'sigma'"):
        mf.Model("bf(y ~ x, sigma ~ x)", d, family="categorical")
    with pytest.raises(FamilyError, match="no maximum-likelihood path"):
        mf.glmer("y ~ x + (1 | g)", d, family="categorical")
    with pytest.raises(MixedFormulaError, match="family='categorical'"):
        mf.lmer("y ~ x + (1 | g)", d)
    with pytest.raises(FamilyError, match="categories are not known"):
        mf.simulate("y ~ x", d[["x", "g"]], {"b_muB_x": 1.0}, family="categorical")
    sim = mf.simulate("y ~ x", d, {"b_muB_x": 1.0, "b_muC_x": -1.0}, family="categorical",
                      seed=1)           # the categories of the given response column
    assert list(sim["y"].cat.categories) == ["A", "B", "C"]
    with pytest.raises(MixedFormulaError, match="marginal likelihood does not apply: family "
                                                "categorical"):
        mf.Model("y ~ x + (1 | g)", d, family="categorical", likelihood="marginal")
    m = mf.Model("y ~ x + (1 | g)", d, family="categorical")
    assert m.likelihood == "conditional"
    assert "not Gaussian" in m.engine.reason


# --------------------------------------------------------------------------- structure, priors

def _brms_priors(table):
    """brms' get_prior rows per (class, coef, group, dpar) of each parameter, the inherited
    prior filled in as brms does (a row's "" takes the class/group row's, then the class
    row's; "" left is flat)."""
    own = {(r["class"], r["coef"], r["group"], r["dpar"]): r["prior"] for r in table}
    out = {}
    for (cls, coef, group, dpar), prior in own.items():
        if not dpar or (not coef and cls != "Intercept"):
            continue
        for key in ((cls, coef, group, dpar), (cls, "", group, dpar), (cls, "", "", dpar)):
            prior = prior or own.get(key, "")
        out[(cls, coef, group, dpar)] = prior or "(flat)"
    return out


def _our_priors(table):
    return {(r["class"], r["coef"], r["group"], r["dpar"]): r["prior"] for r in table
            if r["dpar"]}


@pytest.mark.parametrize("formula,key", [("y ~ x + (1 | p | g)", "shared_id"),
                                         ("y ~ x + (1 + x | g)", "slopes")])
def test_names_blocks_and_default_priors_are_brms(formula, key):
    """One linear predictor per non-reference category, the formula copied to each: brms'
    names (b_muB_x, sd_g__muB_Intercept; the |p| ID gives one block correlated across
    categories, cor_g__muB_Intercept__muC_Intercept, terms without an ID one block per
    category); prior_summary's per-category rows equal brms 2.18's get_prior."""
    d = pd.read_csv(DATA / "categorical_sim.csv")
    m = mf.Model(formula, d, family="categorical")
    assert m.family.categories == ("A", "B", "C")
    blocks = [(b.group, list(b.labels)) for b in m.built.blocks]
    if key == "shared_id":
        assert blocks == [("g", ["muB_Intercept", "muC_Intercept"])]
    else:
        assert blocks == [("g", ["muB_Intercept", "muB_x"]), ("g", ["muC_Intercept", "muC_x"])]
    ref = json.loads((DATA / "brms_categorical_prior.json").read_text())[key]
    want = _brms_priors(ref)
    ours = m.prior_summary().fillna("")
    got = _our_priors(ours.to_dict("records"))
    assert set(ours.loc[ours["class"] == "cor", "prior"]) == {"lkj(1)"}
    for k, prior in want.items():
        assert got.get(k) == prior, (k, got.get(k), prior)
    assert set(got) == set(want)


# --------------------------------------------------------------------------- fit vs brms

@pytest.fixture(scope="module")
def brms_fit():
    d = pd.read_csv(DATA / "categorical_sim.csv")
    return mf.fit("y ~ x + (1 | p | g)", d, family="categorical", chains=4, draws=1000,
                  tune=1000, seed=11, progressbar=False), d


def test_posterior_means_match_brms(brms_fit):
    """Posterior means within 0.2 posterior sd of brms 2.18's (4 × 1000 draws each: the Monte
    Carlo error of the difference is ≈ 0.05 sd)."""
    fit, _ = brms_fit
    ref = json.loads((DATA / "brms_ordinal.json").read_text())["categorical_sim"]
    post = fit.idata.posterior
    for name, mean in ref["mean"].items():
        z = (float(post[name].mean()) - mean) / ref["sd"][name]
        assert abs(z) < 0.2, (name, z)


def test_results_layer_per_category(brms_fit, tmp_path):
    """epred S × N × K (rows sum to 1; equal to the softmax of the draws' μc computed by hand
    at the population level), response draws in 1..K, predictions/comparisons/slopes with
    one row per category in the `group` column (the category labels), conditional effects per
    category, LOO, summary/fixef/ranef/varcorr with brms' names, pp_check, report,
    save/load."""
    fit, d = brms_fit
    new = d.iloc[:4]
    ep = fit.predict(new, kind="epred", re_formula="~0")
    S = ep.shape[0]
    assert ep.shape == (S, 4, 3)
    np.testing.assert_allclose(ep.sum(-1), 1.0, rtol=1e-12)
    post = fit.idata.posterior
    flat = {k: post[k].values.reshape(-1) for k in
            ("b_muB_Intercept", "b_muB_x", "b_muC_Intercept", "b_muC_x")}
    x = new["x"].to_numpy()
    eta = np.stack([np.zeros((S, 4)),
                    flat["b_muB_Intercept"][:, None] + flat["b_muB_x"][:, None] * x,
                    flat["b_muC_Intercept"][:, None] + flat["b_muC_x"][:, None] * x], -1)
    np.testing.assert_allclose(ep, softmax(eta, axis=-1), rtol=1e-10)
    table = fit.predict(new, kind="epred", summary=True)
    assert list(table.columns.get_level_values(0).unique()) == ["P(Y = A)", "P(Y = B)",
                                                              "P(Y = C)"]
    yrep = fit.predict(new, kind="response", seed=1)
    assert yrep.shape == (S, 4) and set(np.unique(yrep)) <= {1.0, 2.0, 3.0}

    pr = fit.predictions(newdata=new, re_formula="NA")
    assert list(pr["group"].unique()) == ["A", "B", "C"] and len(pr) == 12
    np.testing.assert_allclose(pr["estimate"].to_numpy(),          # marginaleffects: median
                               np.median(ep, axis=0).T.reshape(-1), rtol=1e-10)
    sl = fit.slopes("x", newdata=new.iloc[:1], re_formula="NA")
    assert list(sl["group"]) == ["A", "B", "C"]
    # the probabilities sum to one in every draw, so their slopes sum to zero
    assert np.abs(np.asarray(sl.draws()).sum(axis=0)).max() < 1e-6
    cmp = fit.comparisons("x", newdata=new.iloc[:1], re_formula="NA")
    assert list(cmp["group"]) == ["A", "B", "C"]

    _, ce = fit.conditional_effects("x", resolution=5)
    assert sorted(ce["group"].unique()) == ["A", "B", "C"] and len(ce) == 15
    np.testing.assert_allclose(ce.groupby("x")["Estimate"].sum(), 1.0, rtol=1e-10)

    loo = fit.loo()
    assert np.isfinite(loo.elpd) and loo.unit == "observation"
    text = str(fit.summary())
    assert "Links: muB = logit; muC = logit" in text
    for name in ("muB_Intercept", "muC_x", "sd(muB_Intercept)",
                 "cor(muB_Intercept,muC_Intercept)"):
        assert name in text, name
    fe = fit.fixef()
    assert {"muB_Intercept", "muB_x", "muC_Intercept", "muC_x"} <= set(fe.index)
    re = fit.ranef()["g"]
    assert re.shape[0] == d["g"].nunique()
    assert "muB_Intercept" in str(fit.varcorr())

    fit.pp_check(ndraws=10, seed=1)
    report = tmp_path / "r.html"
    fit.report(report)
    html = report.read_text()
    assert "categorical" in html and "muB_Intercept" in html

    path = tmp_path / "cat.nc"
    mf.save(fit, path)
    back = mf.load(path)
    assert back.family == fit.family and back.family.categories == ("A", "B", "C")
    np.testing.assert_allclose(back.predict(new, kind="epred", re_formula="~0"), ep,
                               rtol=1e-12)


# --------------------------------------------------------------------------- recovery

TRUTH = {"b_muB_Intercept": -0.3, "b_muB_x": 0.8, "b_muC_Intercept": 0.4, "b_muC_x": -0.5,
         "sd_g__muB_Intercept": 0.7, "sd_g__muC_Intercept": 0.6,
         "cor_g__muB_Intercept__muC_Intercept": 0.5}


def test_recovery_with_group_effects_correlated_across_categories():
    """``y ~ x + (1 | p | g)`` (the two categories' intercepts correlated through the shared
    ID), 50 groups × 16 rows simulated at TRUTH with ``mf.simulate``; the 7 truths in
    family-wise intervals (sim.familywise_misses: Bonferroni over k = 7, each at
    1 − 0.01/7, z_crit ≈ 3.19 posterior sd on the log/atanh/identity scale, widened by the
    Monte-Carlo error of z): false-failure rate ≤ 1 % for a correct sampler and any seed
    (MF_TEST_SEED; calibration approximate as the truths are fixed: Bernstein–von Mises with
    800 rows and 50 groups)."""
    from sim import familywise_misses, seeds
    data_seed, sim_seed, fit_seed = seeds("categorical_recovery", 31, 32, 33)
    rng = np.random.default_rng(data_seed)
    base = pd.DataFrame({"x": rng.normal(size=800),
                         "g": np.repeat([f"s{j:02d}" for j in range(50)], 16)})
    fam = _family()
    df = mf.simulate("y ~ x + (1 | p | g)", base, TRUTH, family=fam, seed=sim_seed)
    assert list(df["y"].cat.categories) == ["A", "B", "C"]
    truth_u = df.attrs["true_ranef"]["g"]
    assert list(truth_u.columns) == ["muB_Intercept", "muC_Intercept"]
    fit = mf.fit("y ~ x + (1 | p | g)", df, family="categorical", draws=500, tune=500,
                 chains=2, seed=fit_seed, progressbar=False)
    assert familywise_misses(fit.idata.posterior, TRUTH) == {}
    # mf.recovery_check runs the same loop through the family object (one short simulation:
    # its table, not its coverage, is checked here); on the fit's backend, so it re-uses the
    # fit's compiled model (same structure; its auto choice for 1 × 200 draws, C, compiled
    # the structure a second time), as test_recovery_families' recovery_check does
    table = mf.recovery_check("y ~ x + (1 | p | g)", base, TRUTH, n_sims=1, family=fam,
                              draws=100, tune=100, chains=1, seed=fit_seed,
                              backend=fit.info["backend"])
    assert list(table.index) == list(TRUTH)
    np.testing.assert_allclose(table["truth"], list(TRUTH.values()))


def test_cli_offers_categorical(tmp_path, capsys):
    """``--family categorical`` is offered; a response with one category is a one-line error
    (exit 2) before any sampling."""
    from mixedformula.cli import build_parser, main
    sub = " ".join(build_parser()._subparsers._group_actions[0].choices["fit"]
                   .format_help().split())
    assert "categorical" in sub
    csv = tmp_path / "d.csv"
    pd.DataFrame({"y": ["a"] * 4, "x": [0.1, 0.2, 0.3, 0.4],
                  "g": list("aabb")}).to_csv(csv, index=False)
    rc = main(["fit", str(csv), "y ~ x + (1 | g)", "--family", "categorical"])
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error:")]
    assert rc == 2 and len(errors) == 1 and "at least two response categories" in errors[0]


def test_priors_per_category():
    """brms' ``prior(..., dpar = "muB")`` reaches only that category's predictor; a prior for
    a category the response does not have is refused."""
    from mixedformula.errors import PriorError
    d = pd.read_csv(DATA / "categorical_sim.csv")
    m = mf.Model("y ~ x + (1 | g)", d, family="categorical",
                 priors=[mf.prior("normal(0, 1)", class_="b", dpar="muB"),
                         mf.prior("normal(0, 3)", class_="Intercept", dpar="muC")])
    ps = m.prior_summary().fillna("")
    row = {(r["class"], r["dpar"]): (r["prior"], r["source"])
           for r in ps.to_dict("records") if r["class"] in ("b", "Intercept")}
    assert row == {("b", "muB"): ("normal(0, 1)", "user"),
                   ("Intercept", "muB"): ("student_t(3, 0, 2.5)", "default"),
                   ("b", "muC"): ("(flat)", "default"),
                   ("Intercept", "muC"): ("normal(0, 3)", "user")}
    with pytest.raises(PriorError, match="muD"):
        mf.Model("y ~ x", d, family="categorical",
                 priors=[mf.prior("normal(0, 1)", class_="b", dpar="muD")]).prior_summary()
