"""Hand-built posteriors with CONTRACT.md names and known draws (shared by test_results/test_io)."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

import mixedformula as mf
from mixedformula.families import get_family
from mixedformula.priors import Prior, PriorSet, prior
from mixedformula.results import Fit

CHAINS, DRAWS = 4, 500


def _cd():
    return {"chain": np.arange(CHAINS), "draw": np.arange(DRAWS)}


def scalar(values) -> xr.DataArray:
    return xr.DataArray(np.asarray(values, dtype=float).reshape(CHAINS, DRAWS),
                        dims=("chain", "draw"), coords=_cd())


def sample_stats(n_divergent: int = 0) -> xr.Dataset:
    div = np.zeros((CHAINS, DRAWS), dtype=bool)
    div.ravel()[:n_divergent] = True
    return xr.Dataset({"diverging": xr.DataArray(div, dims=("chain", "draw"), coords=_cd())})


def resolved_priors() -> PriorSet:
    """A PriorSet with rows, as the builder leaves it after resolving every parameter."""
    ps = PriorSet([prior("normal(0, 5)", class_="b", coef="Days")])
    ps.resolve("b", Prior("flat", ()), coef="Days")
    ps.resolve("Intercept", Prior("student_t", (3.0, 288.7, 59.3)), "")
    ps.resolve("sd", Prior("student_t", (3.0, 0.0, 59.3)), "", "Subject")
    ps.resolve("cor", Prior("lkj", (1.0,)), "", "Subject")
    ps.resolve("sigma", Prior("student_t", (3.0, 0.0, 59.3)))
    return ps


def sleepstudy_fit(seed: int = 1, n_divergent: int = 0, data=None, info=None):
    """Reaction ~ Days + (Days | Subject) with known draws: every draw has a 2×2 G."""
    rng = np.random.default_rng(seed)
    d = mf.datasets.load("sleepstudy") if data is None else data
    design = mf.design_matrices("Reaction ~ Days + (Days | Subject)", d)
    S = CHAINS * DRAWS
    sd_int = np.abs(rng.normal(27.0, 7.0, S))
    sd_days = np.abs(rng.normal(6.6, 1.5, S))
    cor = np.tanh(rng.normal(0.1, 0.3, S))
    J = design.terms[0].J
    # r_j ~ N(0, G) per draw, G = diag(sd) [[1, cor], [cor, 1]] diag(sd)
    z = rng.normal(size=(S, J, 2))
    r = np.empty_like(z)
    r[..., 0] = sd_int[:, None] * z[..., 0]
    r[..., 1] = sd_days[:, None] * (cor[:, None] * z[..., 0]
                                    + np.sqrt(1 - cor[:, None] ** 2) * z[..., 1])
    post = {
        "b_Intercept": scalar(rng.normal(251.2, 7.3, S)),
        "b_Days": scalar(rng.normal(10.45, 1.67, S)),
        "sd_Subject__Intercept": scalar(sd_int),
        "sd_Subject__Days": scalar(sd_days),
        "cor_Subject__Intercept__Days": scalar(cor),
        "sigma": scalar(rng.normal(25.8, 1.6, S)),
        "r_Subject": xr.DataArray(
            r.reshape(CHAINS, DRAWS, J, 2), dims=("chain", "draw", "Subject", "Subject__coef"),
            coords={**_cd(), "Subject": design.terms[0].levels,
                    "Subject__coef": ["Intercept", "Days"]}),
    }
    idata = az.InferenceData(posterior=xr.Dataset(post), sample_stats=sample_stats(n_divergent))
    info = {"sampler": "nutpie", "draws": DRAWS, "tune": 1000, "chains": CHAINS, "seed": seed,
            "seconds": 1.5} if info is None else info
    return Fit(idata, design, get_family("gaussian"), resolved_priors(), "marginal", info,
               data=d)


def mv_data(n: int = 80, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"y1": rng.normal(size=n), "y2": rng.normal(size=n),
                         "x": rng.normal(size=n), "g": np.repeat(list("abcdefgh"), n // 8),
                         "h": np.repeat(list("AB"), n // 2)})


def mv_fit(seed: int = 2):
    """mvbind(y1, y2) ~ x + (1 + x | p | g) with rescor."""
    rng = np.random.default_rng(seed)
    d = mv_data()
    design = mf.design_matrices("mvbind(y1, y2) ~ x + (1 + x | p | g)", d)
    S = CHAINS * DRAWS
    labs = ["y1_Intercept", "y1_x", "y2_Intercept", "y2_x"]
    post = {}
    for resp in ("y1", "y2"):
        for c in ("Intercept", "x"):
            post[f"b_{resp}_{c}"] = scalar(rng.normal(0, 1, S))
    for k, lab in enumerate(labs):
        post[f"sd_g__{lab}"] = scalar(np.abs(rng.normal(1 + k, 0.2, S)))
    for i in range(4):
        for j in range(i + 1, 4):
            post[f"cor_g__{labs[i]}__{labs[j]}"] = scalar(np.tanh(rng.normal(0.1 * (i - j), 0.2,
                                                                                S)))
    post["sigma_y1"] = scalar(np.abs(rng.normal(1, 0.1, S)))
    post["sigma_y2"] = scalar(np.abs(rng.normal(2, 0.1, S)))
    post["rescor__y1__y2"] = scalar(np.tanh(rng.normal(0.3, 0.1, S)))
    post["r_g"] = xr.DataArray(
        rng.normal(size=(CHAINS, DRAWS, 8, 4)), dims=("chain", "draw", "g", "g__coef"),
        coords={**_cd(), "g": design.terms[0].levels, "g__coef": labs})
    idata = az.InferenceData(posterior=xr.Dataset(post), sample_stats=sample_stats())
    return Fit(idata, design, get_family("gaussian"), PriorSet(), "conditional", {}, data=d)


def by_fit(seed: int = 3, legacy_names: bool = False):
    """y1 ~ x + (1 + x | gr(g, by = h)) + (1 | h): one G per level of h, plus a second factor.
    Correlations named as brms (``cor_g__Intercept:hA__x:hA``), or as fits saved before that
    (``cor_g__Intercept__x:hA``) with ``legacy_names``."""
    rng = np.random.default_rng(seed)
    d = mv_data()
    design = mf.design_matrices("y1 ~ x + (1 + x | gr(g, by = h)) + (1 | h)", d)
    S = CHAINS * DRAWS
    post = {"b_Intercept": scalar(rng.normal(0, 1, S)), "b_x": scalar(rng.normal(1, 1, S))}
    for k, lev in enumerate("AB"):
        post[f"sd_g__Intercept:h{lev}"] = scalar(np.abs(rng.normal(1 + k, 0.1, S)))
        post[f"sd_g__x:h{lev}"] = scalar(np.abs(rng.normal(2 + k, 0.1, S)))
        cor = "cor_g__Intercept__x:h{0}" if legacy_names else "cor_g__Intercept:h{0}__x:h{0}"
        post[cor.format(lev)] = scalar(np.tanh(rng.normal(0.5 - k, 0.1, S)))
    post["sd_h__Intercept"] = scalar(np.abs(rng.normal(0.5, 0.1, S)))
    post["sigma"] = scalar(np.abs(rng.normal(1, 0.1, S)))
    post["r_g"] = xr.DataArray(
        rng.normal(size=(CHAINS, DRAWS, 8, 2)), dims=("chain", "draw", "g", "g__coef"),
        coords={**_cd(), "g": design.terms[0].levels, "g__coef": ["Intercept", "x"]})
    post["r_h"] = xr.DataArray(
        rng.normal(size=(CHAINS, DRAWS, 2, 1)), dims=("chain", "draw", "h", "h__coef"),
        coords={**_cd(), "h": ["A", "B"], "h__coef": ["Intercept"]})
    idata = az.InferenceData(posterior=xr.Dataset(post), sample_stats=sample_stats())
    return Fit(idata, design, get_family("gaussian"), PriorSet(), "conditional", {}, data=d)


def flat(da) -> np.ndarray:
    a = np.asarray(da)
    return a.reshape((-1,) + a.shape[2:])
