"""Design + family + priors → ``pm.Model`` (conditional or marginal likelihood).

Parameters (shared by both engines; brms' parametrisation):

* Fixed part, brms' centring rule: with an intercept, the other columns are centred,
  ``X_c = X - x̄``, and the sampler sees ``eta = Intercept + X_c b``; the reported
  ``b_Intercept = Intercept - x̄ᵀ b`` is on the original scale.
* Each covariance block (see :mod:`mixedformula.design.reterms`) with Q coefficients:
  correlated → ``pm.LKJCholeskyCov`` (``chol = diag(sd) L``, ``L Lᵀ ~ LKJ(eta)``, sd from the sd
  priors), uncorrelated → independent ``sd``; one of these per level of a ``gr(by=)`` factor.
* Conditional engine, per block either non-centred: ``z ~ N(0, I)`` of shape (J, Q),
  ``u_j = chol_{h(j)} z_j``; or (hierarchically) centred: ``v_j ~ N(m, chol chol')`` sampled,
  where ``m_c`` is the fixed coefficient (original scale) that group coefficient c varies
  around (0 if there is none), and ``u_j = v_j - m``. Either way row i adds
  ``Σ_c X_k[i, c] u[codes_k[i], offset + c]`` — a gather by integer codes, never a dense Z —
  and ``u__<block>`` is the same deterministic. Which one: :func:`choose_parametrization`
  (``parametrization="auto"``: centred where every level carries enough information).
* Marginal engine (Gaussian): u integrated out, ``y ~ N(Xβ, Z G Zᵀ + σ² I)`` from sufficient
  statistics (:mod:`.marginal`); u is drawn exactly afterwards.

Internal variable names: ``Intercept``, ``b`` (or ``b__<coef>`` for coefficient-specific priors),
``chol__<block>`` (+ ``_corr__``/``_std__`` deterministics), ``sd__<block>``, ``z__<block>``
(non-centred) or ``v__<block>`` (centred), ``u__<block>`` (deterministic, both),
``sigma``/``nu``/``shape`` (``sigma__<resp>`` in multivariate models). :mod:`.names` turns them
into brms names after sampling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...design import Design
from ...errors import FamilyError, MixedFormulaError
from ...families import Family
from ...priors import Prior, PriorSet, pymc_dist, pymc_rv
from ...design.reterms import CovBlock as Block
from ...design.reterms import covariance_blocks as build_blocks


@dataclass
class Built:
    """A built model and what is needed to name and post-process its draws.

    ``stats``: marginal engine, the statistics its likelihood reads (univariate
    :class:`~mixedformula.design.crossprod.MarginalStats` or multivariate
    :class:`.marginal_mv.MvStats`); ``parametrization``: conditional engine, block key →
    (``"centred"``/``"noncentred"``, reason); ``residual_by``: ``rescor_by`` levels and codes.
    """

    model: object                    # pm.Model
    design: Design
    family: Family
    priors: PriorSet
    likelihood: str
    blocks: list[Block]
    stats: object = None
    parametrization: dict = field(default_factory=dict)
    residual_by: "ResidualBy | None" = None
    #: one block's effects integrated out per row (:mod:`.partial_marginal`); the only block
    #: when ``likelihood == "marginal"`` (se(sigma = TRUE): the marginal likelihood per row)
    integrated: str | None = None

    @property
    def reads_rows(self) -> bool:
        """The log-density reads the rows at every gradient (conditional engine, or the
        per-row marginal of se(sigma = TRUE)), not sufficient statistics."""
        return self.likelihood != "marginal" or self.integrated is not None

    @property
    def multivariate_marginal(self) -> bool:
        """The marginal engine with several responses (group effects recovered jointly)."""
        return self.likelihood == "marginal" and self.design.y.shape[1] > 1

    @property
    def extras(self) -> dict:
        """The typed fields above as the dict older callers read (read-only copy)."""
        out: dict = {"residual_by": self.residual_by}
        if not self.reads_rows:
            out["stats"] = self.stats
            if self.multivariate_marginal:
                out["mv"] = True
        else:
            out["parametrization"] = self.parametrization
        return out


@dataclass
class ResidualBy:
    """``rescor_by``: the residual covariance R estimated per level of a factor."""

    column: str
    levels: list[str]
    codes: np.ndarray        # (n,) level of each row


PARAMETRIZATIONS = ("auto", "centred", "noncentred")
#: ``parametrization="auto"`` centres a block when the median over its levels of the smallest
#: per-coefficient Fisher information (:func:`level_information`) is at least this. With a group
#: sd of about 1 on the link scale this is the data-to-prior precision ratio; for a Bernoulli
#: intercept it takes about 20-25 rows per level (p(1-p) <= 1/4).
CENTRED_MIN_INFORMATION = 5.0


def normalise_parametrization(value):
    """``"auto"``/``"centred"``/``"noncentred"`` (spelling variants accepted), or a dict
    grouping factor (or block key) → one of those, for a choice per factor (factors not named
    are ``"auto"``)."""
    from ...errors import MixedFormulaError
    if isinstance(value, dict):
        return {str(k): normalise_parametrization(v) for k, v in value.items()}
    v = {"centered": "centred", "non-centred": "noncentred", "noncentered": "noncentred",
         "non-centered": "noncentred"}.get(value, value)
    if v not in PARAMETRIZATIONS:
        raise MixedFormulaError("parametrization must be one of "
                                f"{', '.join(PARAMETRIZATIONS)} (or a dict grouping factor -> "
                                f"one of them), not {value!r}")
    return v


def _block_modes(blocks: list[Block], parametrization) -> dict[str, str]:
    """Block key → the asked mode: the one string, or the dict's entry for the block's
    grouping factor or key (``"auto"`` when absent); a dict key naming no block is an error."""
    mode = normalise_parametrization(parametrization)
    if not isinstance(mode, dict):
        return {b.key: mode for b in blocks}
    known = {b.group for b in blocks} | {b.key for b in blocks}
    unknown = sorted(set(mode) - known)
    if unknown:
        raise MixedFormulaError(f"parametrization names {', '.join(map(repr, unknown))}, not a "
                                "grouping factor of the sampled group terms (these are: "
                                f"{', '.join(sorted({b.group for b in blocks})) or 'none'})")
    return {b.key: mode.get(b.key, mode.get(b.group, "auto")) for b in blocks}


def level_information(design: Design, family: Family, b: Block,
                      gaussian_ratios: dict | None = None) -> np.ndarray | None:
    """Approximate Fisher information about each group coefficient of each level, (J, Q),
    summed over the block's parts: ``I_jc = Σ_{i in level j} w_i X[i, c]²`` with w the
    information per row about the linear predictor the part enters — the mean's GLM working
    weights at the intercept-only fit (``family.working_weights``), a Gaussian identity-link
    mean's ŝ²/σ̂² (``gaussian_ratios``, :func:`gaussian_variance_ratios` of the blocks; of b
    alone when not given), a distributional formula's
    ``family.dpar_working_weight`` (2 for a Gaussian log σ); None when a part has no rule
    (non-centred is kept)."""
    out = np.zeros((b.J, b.Q))
    for part in b.parts:
        t = design.terms[part.term]
        rows = design.rows(part.response)
        fam = family.response(part.response)
        y = np.asarray(design.y[rows, part.response], dtype=float)
        if part.dpar is not None:
            w0 = fam.dpar_working_weight(part.dpar)
            w = None if w0 is None else np.full(len(y), float(w0))
        elif fam.gaussian and fam.link == "identity" and design.autocor is None \
                and design.se is None:
            # (not with ar()/cosy() residuals, which a group intercept's variance is
            # confounded with, nor se(), where σ is not the within-level scatter)
            if gaussian_ratios is None:
                gaussian_ratios = gaussian_variance_ratios(design, [b])
            w = np.full(len(y), gaussian_ratios[(b.key, part.response)])
        else:
            w = fam.working_weights(y, None if design.trials is None else design.trials[rows])
        if w is None:
            return None
        full = np.zeros(design.y.shape[0])
        full[rows] = w
        X = np.asarray(t.X, dtype=float)
        has = np.asarray(t.codes) >= 0               # -1: the row has no level of g
        full = np.where(np.isfinite(full), full, 0.0)
        for c in range(part.q):
            out[:, part.offset + c] += np.bincount(t.codes[has],
                                                   weights=(full * X[:, c] ** 2)[has],
                                                   minlength=b.J)
    return out


def gaussian_variance_ratios(design: Design, blocks: list[Block],
                             sweeps: int = 10) -> dict[tuple[str, int], float]:
    """(block key, response) → ŝ²/σ̂² for the Gaussian identity-link mean parts: a level's
    information per row about its coefficient over the prior's (n_j/σ² against 1/s² for an
    intercept, s the group sd). A rough scale, not a fit: ŝ_k² and σ̂² are one-way
    random-effects ANOVA (moment) estimates on each factor k in turn, of the partial
    residuals r = y − ȳ − Σ_{l≠k} ê_l (backfitting, ``sweeps`` rounds; slopes ignored),

        σ̂² = Σ_j Σ_{i∈j} (r_i − r̄_j)² / (n − J),
        ŝ² = max(0, [Σ_j n_j (r̄_j − r̄)² − (J − 1) σ̂²] / (n − Σ_j n_j²/n)),
        ê_j = n_j ŝ² / (n_j ŝ² + σ̂²) · (r̄_j − r̄)     (the shrunken level means),

    so that a factor crossed with, or partly nested in, another (InstEval's dept and
    instructors d) is not credited with the other's variance: on y alone, dept's statistic
    at the 3 % InstEval simulation (true sd 0.08, σ 1.18) ranged 2.6–30 over data sets, and
    the centred dept then left chains stuck (R-hat 1.5) in ~10 % of them."""
    out: dict[tuple[str, int], float] = {}
    for k in range(design.y.shape[1]):
        rows = design.rows(k)
        y = np.asarray(design.y[rows, k], dtype=float)
        factors = {}
        for b in blocks:
            part = next((p for p in b.parts if p.response == k and p.dpar is None), None)
            if part is not None:
                factors[b.key] = np.asarray(design.terms[part.term].codes)[rows]
        keep = np.isfinite(y)                   # rows with a level of every factor (-1: none)
        for codes in factors.values():
            keep &= codes >= 0
        y = y[keep]
        factors = {key: codes[keep] for key, codes in factors.items()}
        effects = {key: np.zeros(len(y)) for key in factors}
        ratios = dict.fromkeys(factors, 0.0)
        for _ in range(sweeps if len(factors) > 1 else 1):
            for key, codes in factors.items():
                r = y - y.mean() - sum(e for other, e in effects.items() if other != key)
                ratios[key], effects[key] = _one_way_anova(r, codes)
        out.update({(key, k): v for key, v in ratios.items()})
    return out


def _one_way_anova(r: np.ndarray, codes: np.ndarray) -> tuple[float, np.ndarray]:
    """(ŝ²/σ̂², ê per row) of :func:`gaussian_variance_ratios`' formulas."""
    J = int(codes.max()) + 1 if len(codes) else 0
    n_j = np.bincount(codes, minlength=J).astype(float)
    used = n_j > 0
    n, J_used = len(r), int(used.sum())
    if not n > J_used > 1:
        return 0.0, np.zeros(n)
    mean_j = np.bincount(codes, weights=r, minlength=J) / np.maximum(n_j, 1.0)
    within = float(np.sum((r - mean_j[codes]) ** 2)) / (n - J_used)
    between = float(np.sum(n_j[used] * (mean_j[used] - r.mean()) ** 2))
    s2 = max(0.0, (between - (J_used - 1) * within) / (n - np.sum(n_j ** 2) / n))
    if within <= 0:
        return 0.0, np.zeros(n)
    shrink = n_j * s2 / (n_j * s2 + within)
    return s2 / within, (shrink * (mean_j - r.mean()))[codes]


def choose_parametrization(design: Design, family: Family, blocks: list[Block],
                           parametrization: str = "auto") -> dict[str, tuple[str, str]]:
    """Block key → (``"centred"``/``"noncentred"``, reason).

    Non-centred (brms' only choice) samples well when the data say little about each level's
    effects; when every level's data pin its effects down much more tightly than the group
    sd, the posterior of (sd, z) becomes a funnel and the centred form (each level's
    coefficients sampled around the fixed effects) samples better (Papaspiliopoulos, Roberts &
    Sköld 2007). ``"auto"``: centred iff every part of the block has an information rule
    (:func:`level_information`: binomial, bernoulli, Poisson and zero_inflated_poisson with
    log link, cumulative, Gaussian identity-link means, Gaussian ``sigma ~`` formulas) and
    the median over levels of
    ``min_c I_jc`` is at least :data:`CENTRED_MIN_INFORMATION`, and the block's grouping
    factor is not nested in, or nesting, another block's on the same linear predictor (same
    rows): then the data inform the sum of the two factors' effects, not each one, I_jc
    overstates what is known about either, and the centred pair mixes badly (lme4's
    grouseticks, BROOD within LOCATION, 4 × (1000 + 1000): min bulk ESS 61 centred vs 444
    non-centred; benchmarks/parametrization_glmm.py).

    Gaussian means measured: InstEval's shape in the partial engine (benchmarks/README.md,
    issue 24): d (≈ 65 rows per instructor, statistic 6.1) and dept (≈ 5000 rows per
    department, 39) centred mix sd_d, sd_dept and b_Intercept 4–7× better per draw than
    non-centred; benchmarks case ``dpar`` (``bf(y ~ x + (1 | g), sigma ~ x + (1 | g))``,
    100 groups × 20 rows, 4 × (1000 + 1000), conditional engine): min bulk ESS 401
    non-centred, 1712 with both blocks centred; case 8 (zero_inflated_poisson) 375 → 4588;
    case 7 (cumulative, intercept around −τ̄) 1137 → 1769.
    """
    modes = _block_modes(blocks, parametrization)
    ratios = gaussian_variance_ratios(design, blocks) \
        if "auto" in modes.values() \
        and any(family.response(k).gaussian for k in range(design.y.shape[1])) else None
    out = {}
    for b in blocks:
        mode = modes[b.key]
        if b.cov_factor is not None:
            out[b.key] = ("noncentred", "gr(cov = ...): u = L_A z T' (brms)")
            continue
        if mode != "auto":
            out[b.key] = (mode, f"parametrization={mode!r}")
            continue
        info = level_information(design, family, b, ratios)
        if info is None:
            out[b.key] = ("noncentred", f"no information rule for family {family.name}")
            continue
        other = _nested_with(design, blocks, b)
        if other is not None:
            out[b.key] = ("noncentred", f"levels nested with those of {other}")
            continue
        covariate = _level_covariate(design, b)
        if covariate is not None:
            out[b.key] = ("noncentred", f"fixed effect {covariate} is constant within the "
                                        f"levels of {b.group}")
            continue
        stat = float(np.median(info.min(axis=1))) if b.J else 0.0
        choice = "centred" if stat >= CENTRED_MIN_INFORMATION else "noncentred"
        out[b.key] = (choice, f"median per-level information {stat:.3g} "
                              f"{'>=' if choice == 'centred' else '<'} "
                              f"{CENTRED_MIN_INFORMATION:g}")
    return out


def _part_fixed(design: Design, part) -> tuple:
    """(X, names) of the fixed part of the linear predictor ``part`` enters: its response's
    mean, or its distributional formula's."""
    if part.dpar is None:
        return design.fixed(part.response)
    return design.dpar_fixed(part.dpar, part.response)


def _level_covariate(design: Design, b: Block) -> str | None:
    """A fixed-effect column of one of b's linear predictors (other than the intercept and
    b's own coefficients) that is constant within every level of b's factor (a level-level
    predictor, e.g. salamanders' ``mined`` per ``site``), or None. Centred around the fixed
    intercept alone, the levels' v_j then trade off with that coefficient (the data inform
    only b_mined + v_j on the mined sites): brms' salamanders zero_inflated_poisson
    ``count ~ mined + (1 | site)``, 4 × (500 + 1000), min bulk ESS of sd_site 203–599
    centred against 420–561 non-centred over 3 seeds, and the brms comparison's Monte-Carlo
    risk above its bound."""
    for part in b.parts:
        t = design.terms[part.term]
        X, names = _part_fixed(design, part)
        rows = np.zeros(design.y.shape[0], dtype=bool)
        rows[design.rows(part.response)] = True
        codes = np.asarray(t.codes)
        rows &= codes >= 0
        if not rows.any():
            continue
        X = np.asarray(X, dtype=float)[rows]
        c = codes[rows]
        n_j = np.bincount(c, minlength=b.J)
        for j, name in enumerate(names):
            if name == "Intercept" or name in t.coef_names:
                continue
            col = X[:, j]
            mean_j = np.bincount(c, weights=col, minlength=b.J) / np.maximum(n_j, 1)
            if np.ptp(col) > 0 and np.allclose(col, mean_j[c], rtol=0.0,
                                               atol=1e-12 * max(1.0, np.abs(col).max())):
                return name
    return None


def _nested_with(design: Design, blocks: list[Block], b: Block) -> str | None:
    """The grouping factor of another block on one of b's linear predictors (a part with the
    same response and distributional parameter) whose levels nest b's or are nested in b's
    (every level of one occurs with a single level of the other on the rows both use), or
    None. ``(1 | g)`` in the mean and in ``sigma ~`` are two blocks of the same factor on
    different predictors: not nested."""
    def codes(block):
        part = block.parts[0]
        used = np.zeros(design.y.shape[0], dtype=bool)
        used[design.rows(part.response)] = True
        return design.terms[part.term].codes, used

    cb, used_b = codes(b)
    targets = {(p.response, p.dpar) for p in b.parts}
    for o in blocks:
        if o is b or not targets & {(p.response, p.dpar) for p in o.parts}:
            continue
        co, used_o = codes(o)
        both = used_b & used_o
        if not both.any():
            continue
        pairs = np.unique(np.stack([cb[both], co[both]]), axis=1)
        if pairs.shape[1] in (len(np.unique(pairs[0])), len(np.unique(pairs[1]))):
            return o.group
    return None


def build_model(design: Design, family: Family, priors: PriorSet,
                likelihood: str = "conditional", rescor: bool | None = None,
                residual_by: ResidualBy | None = None, stats=None,
                parametrization: str = "auto", integrate: str | None = None) -> Built:
    import pymc as pm
    import pytensor.tensor as pt

    y = design.y
    n, r = y.shape
    resp = list(design.response_names)
    multivariate = r > 1
    mixed = getattr(family, "families", None) is not None   # one family per response
    if multivariate and not family.gaussian and not mixed:
        raise FamilyError(f"multivariate responses (mvbind) with family {family.name!r} are "
                          "not supported yet: gaussian (with residual correlation) and the "
                          "families without it (poisson, bernoulli, negbinomial, ...: one "
                          "likelihood per response, brms' MV(poisson, poisson)) are")
    if mixed:
        _check_mixed(design, family)
    for k in range(r):
        rows = design.rows(k)
        family.response(k).check_response(y[rows, k], design.trials, resp[k])
    if rescor is None:                   # brms' default: rescor only for one family
        rescor = multivariate and not mixed
    if multivariate and rescor:
        from ...design.additions import rescor_refusal
        why = rescor_refusal(design)
        if why:
            raise MixedFormulaError(why)
        if design.response_parts is not None and design.observed is not None:
            raise MixedFormulaError("se() / weights() with correlated residuals (rescor) and "
                                    "responses missing in some rows are not supported (brms "
                                    "drops those rows): drop them, or fit with rescor=False")
        if design.response_parts is not None and residual_by is not None:
            raise MixedFormulaError("rescor_by together with se() / weights() is not "
                                    "supported")
    blocks = build_blocks(design, r, resp)
    cells = None if integrate is None or multivariate or design.dpar_keys \
        or getattr(design, "autocor", None) is not None \
        else predictor_cells(design, [b for b in blocks if b.key != integrate])
    coords = {"obs": np.arange(n), "response": resp}
    for b in blocks:
        coords[f"{b.key}__level"] = b.levels
        coords[f"{b.key}__coef"] = b.labels
        if b.by_levels:
            coords[f"{b.key}__by"] = b.by_levels

    with pm.Model(coords=coords) as model:
        # ---- fixed part, per response (its own X with bf() formulas; centred over the rows
        # where the response is observed)
        etas, betas = [], []
        extra_dpars: dict = {}
        threshold_means: dict = {}        # ordinal response → mean threshold τ̄
        for k in range(r):
            sfx = f"__{resp[k]}" if multivariate else ""
            rname = resp[k] if multivariate else ""
            X, X_names = design.fixed(k)
            if cells is not None:            # η over the distinct predictor rows (cells)
                X = X[cells.first]
            rows = design.rows(k)
            fam_k = family.response(k)
            if fam_k.thresholds:      # ordinal: K − 1 thresholds replace the intercept
                eta_k, beta_k, extra_dpars["thres"] = _threshold_part(
                    family, X, X_names, lambda cols: design.column_means(k, cols), priors,
                    sfx, rname, y[rows, k], design.cs_names)
                if extra_dpars["thres"].ndim == 1:       # without cs(): one τ per category
                    threshold_means[k] = extra_dpars["thres"].mean()
            else:
                eta_k, beta_k = _linear_part(
                    X, X_names, lambda cols: design.column_means(k, cols), priors, sfx, rname, "",
                    lambda: fam_k.default_intercept(y[rows, k], design.response_centre(k)))
            betas.append(beta_k)
            etas.append(eta_k)
        # ---- distributional formulas (sigma ~ x): their own fixed part, on the link scale
        detas, dbetas = {}, {}
        for d, k in design.dpar_keys:
            sfx = f"__{resp[k]}" if multivariate else ""
            X, X_names = design.dpar_fixed(d, k)
            detas[(d, k)], dbetas[(d, k)] = _linear_part(
                X, X_names, lambda cols, d=d, k=k: design.dpar_column_means(d, k, cols),
                priors, f"_{d}{sfx}", resp[k] if multivariate else "", d,
                lambda d=d: family.default_dpar_intercept(d))

        # ---- covariance blocks
        scale = {k: family.response(k).default_sd_scale(y[design.rows(k), k],
                                                        design.response_centre(k))
                 for k in range(r)}
        chols = {}
        for b in blocks:
            chols[b.key] = _block_covariance(b, priors, scale, resp, multivariate)

        # ---- distributional parameters
        ys = [(y[design.rows(k), k], design.response_centre(k)) for k in range(r)]
        if mixed:
            dpars = _mixed_dpars(family, priors, ys, resp, _se_only(design, family))
        else:
            dpars = _dpars(family, priors, ys, resp, multivariate, rescor,
                           residual_by, predicted=set(detas),
                           sigma_fixed=_se_only(design, family),
                           rescor_se=any(p.se is not None for p in design.response_parts or ()))
        dpars.update(extra_dpars)

        from_stats = likelihood == "marginal" and integrate is None
        if from_stats and getattr(stats, "kind", None) == "structured":
            # ar() / cosy() residuals, gr(cov = A): :mod:`.marginal_structured`
            from .marginal_structured import add_structured_likelihood
            stats = add_structured_likelihood(design, family, blocks, chols, betas, dpars,
                                              stats, priors)
            chosen = {}
        elif from_stats:
            from .marginal_model import add_marginal_likelihood
            stats = add_marginal_likelihood(design, blocks, chols, betas, dpars, resp, stats)
            chosen = {}
        else:
            sampled = [b for b in blocks if b.key != integrate]   # integrate: partial_marginal
            choice = choose_parametrization(design, family, sampled, parametrization)
            chosen = {b.key: choice[b.key] for b in sampled}
            stats = None
            centred_coefs: set = set()   # each fixed coefficient is the mean of one block only
            for b in sampled:
                T = chols[b.key]   # (H, Q, Q) lower-triangular or (H, Q) sds
                dims = (f"{b.key}__level", f"{b.key}__coef")
                if choice[b.key][0] == "centred":
                    m = _block_mean(b, design, betas, dbetas, threshold_means, centred_coefs)
                    u = _centred_effects(b, T, m, dims)
                else:
                    z = pm.Normal(f"z__{b.key}", 0.0, 1.0, dims=dims)
                    if b.correlated and b.Q > 1:
                        Tj = T[b.by_codes] if b.by_levels else T[0]
                        if b.by_levels:
                            u = pt.sum(Tj * z[:, None, :], axis=-1)
                        else:
                            u = pt.dot(z, Tj.T)
                    else:
                        sd = T[b.by_codes] if b.by_levels else T[0]
                        u = z * sd
                    if b.cov_factor is not None:   # gr(cov = A): u = L_A z Tᵀ, Cov = A ⊗ Σ
                        u = pt.dot(_data(f"Lcov__{b.key}", b.cov_factor), u)
                pm.Deterministic(f"u__{b.key}", u, dims=dims)
                for part in b.parts:
                    t = design.terms[part.term]
                    if cells is not None:
                        t = cells.term(t)
                    codes = _data(f"codes__{part.term}", np.asarray(t.codes, dtype=np.int64))
                    add = _gather_effects(u, part, t, codes)
                    if part.dpar is None:
                        etas[part.response] = etas[part.response] + add
                    else:
                        detas[(part.dpar, part.response)] = \
                            detas[(part.dpar, part.response)] + add
            if design.offset is not None:      # offset(): eta += offset ((n, r) multivariate)
                off = np.asarray(design.offset, dtype=float)
                off = _data("offset", off if cells is None else off[cells.first])
                if multivariate:
                    etas = [e + off[:, k] for k, e in enumerate(etas)]
                else:
                    etas[0] = etas[0] + off
            if detas:
                from .dpar_terms import predicted_dpars
                predicted_dpars(family, detas, dpars, n, r, rescor)
            if multivariate and rescor and design.response_parts is not None:
                _rescor_se_rows(dpars, design, n)
            if integrate is not None:
                from .partial_marginal import add_partial_likelihood
                eta_rows = etas[0] if cells is None else etas[0][_data("cell_of_row",
                                                                               cells.of_row)]
                add_partial_likelihood(design, next(b for b in blocks if b.key == integrate),
                                       chols[integrate], eta_rows, dpars["sigma"][0][0], _data)
            elif getattr(design, "autocor", None) is not None:     # ar() / cosy()
                from .autocor import add_autocor_likelihood, check_autocor_family
                check_autocor_family(design.autocor, family)
                params = {k: dpars[k] for k in family.dpars if k != "sigma"}
                # per row with a sigma formula (brms' *_time_het for the covariance forms,
                # normal_lpdf(Y | mu, sigma) with a sigma vector for the regression forms)
                params["sigma"] = dpars["sigma"][0] if dpars.get("per_row") \
                    else dpars["sigma"][0][0]
                if design.autocor.kind in ("unstr", "cov_arma"):
                    params["sigma"] = dpars["sigma"][0]
                if design.autocor.kind in ("cov_arma", "unstr") \
                        and ("nu", 0) in design.dpar_keys:
                    raise FamilyError(f"{design.autocor.text} with a formula for nu: brms' "
                                      "multivariate t of the covariance form has one nu per "
                                      "model (a scalar); remove the nu formula")
                add_autocor_likelihood(design.autocor, family, etas[0], params,
                                       _data("y", y[:, 0]), priors, _data)
            elif (design.response_parts is not None or mixed) and not rescor:
                _per_response_likelihood(family, etas, dpars, y, design, resp, residual_by)
            elif design.observed is not None:
                _partially_observed_likelihood(etas, dpars, y, design.observed, resp, rescor,
                                               residual_by)
            else:
                _conditional_likelihood(family, etas, dpars, y, design.trials, multivariate,
                                        rescor, residual_by, design=design)
    priors.check_all_used()
    return Built(model=model, design=design, family=family, priors=priors,
                 likelihood=likelihood, blocks=blocks, stats=stats, parametrization=chosen,
                 residual_by=residual_by, integrated=integrate)


#: the partial engine evaluates η over the distinct predictor rows when there are at most this
#: share of the rows (:func:`predictor_cells`)
CELLS_MAX_SHARE = 0.5


@dataclass
class Cells:
    """Rows grouped by their predictor: same fixed-effect row, same codes and Z values of every
    sampled group term, same offset. ``first``: one row of each cell (C,); ``of_row``: the cell
    of each row (n,)."""

    first: np.ndarray
    of_row: np.ndarray

    def term(self, t):
        """A group term's codes and Z on the cells (what :func:`_gather_effects` reads)."""
        from types import SimpleNamespace
        return SimpleNamespace(X=np.asarray(t.X)[self.first],
                               codes=np.asarray(t.codes)[self.first], coef_names=t.coef_names)


def predictor_cells(design: Design, sampled: list[Block]) -> "Cells | None":
    """The partial engine's linear predictor of the sampled part, η_i = x_iᵀβ + Σ_b z_iᵀu_b[g_i]
    (+ offset), takes one value per distinct (x_i, g_i, z_i, offset_i): computed on those C
    cells and gathered to the rows, η = η_cells[cell(i)], it is the same vector (exactly: a
    cell's rows hold identical values), and the gradient's per-row work shrinks from one
    gather + one scatter per sampled term plus the fixed part's products to one gather and one
    scatter (InstEval: 73 361 rows, 6 426 (d, dept, service) cells). None when the cells are
    more than :data:`CELLS_MAX_SHARE` of the rows (no gain)."""
    n = design.y.shape[0]
    cols = [np.asarray(design.fixed(0)[0], dtype=float)]
    for b in sampled:
        for part in b.parts:
            t = design.terms[part.term]
            cols += [np.asarray(t.codes, dtype=float)[:, None], np.asarray(t.X, dtype=float)]
    if design.offset is not None:
        cols.append(np.asarray(design.offset, dtype=float).reshape(n, -1))
    key = np.column_stack(cols)
    _, first, of_row = np.unique(key, axis=0, return_index=True, return_inverse=True)
    if len(first) > CELLS_MAX_SHARE * n:
        return None
    return Cells(first=first.astype(np.int64), of_row=np.ravel(of_row).astype(np.int64))


def _threshold_part(family: Family, X, X_names, column_means, priors: PriorSet, sfx: str,
                    rname: str, y, cs_names=()):
    """Ordinal families: η = X_c b (no intercept: the K − 1 thresholds take its place) and the
    centred thresholds τ_c (:func:`_thresholds`); brms reports b_Intercept[k] = τ_c[k] + x̄ᵀb
    (registered as ``_thres``). Registers ``_beta<sfx>`` (0 in the intercept's column and in
    the cs() columns); returns (η, β, thresholds).

    Category-specific effects (``cs_names``, brms' Xcs, not centred): a matrix B_cs
    (Kcs × (K − 1), ``_bcs``; prior ``class = "b"`` per coefficient, flat by default) and per
    row the thresholds τ_c − Xcs_i B_cs (brms: ``Intercept - transpose(mucs[n])``)."""
    import pymc as pm
    import pytensor.tensor as pt
    has_int = "Intercept" in X_names
    int_col = X_names.index("Intercept") if has_int else None
    cs_cols = [X_names.index(c) for c in cs_names]
    others = [j for j in range(X.shape[1]) if j != int_col and j not in cs_cols]
    means = column_means(others) if has_int else np.zeros(len(others))
    Xc = X[:, others] - means
    eta, b_vec = 0.0, None
    if others:
        b_vec = _fixed_coefficients(priors, [X_names[j] for j in others], rname, sfx)
        eta = pt.dot(_data(f"X{sfx}", Xc), b_vec)
    thres_c = _thresholds(family, priors, y, has_int)
    pm.Deterministic("_thres", thres_c + (pt.dot(_data("means", means), b_vec) if others
                                          else 0.0))
    full = [None] * X.shape[1]
    for j in [int_col] * has_int + cs_cols:
        full[j] = pt.constant(0.0)
    for i, j in enumerate(others):
        full[j] = b_vec[i]
    beta = pt.stack(full) if full else pt.zeros(0)
    pm.Deterministic(f"_beta{sfx}", beta)
    if not cs_cols:
        return eta, beta, thres_c
    K1 = family.n_categories(y) - 1
    flat = Prior("flat", (), "b")
    bcs = pt.stack([pymc_rv(f"bcs__{c}", [priors.resolve("b", flat, coef=c, resp=rname).prior]
                            * K1, shape=K1) for c in cs_names])          # (Kcs, K − 1)
    pm.Deterministic("_bcs", bcs)
    return eta, beta, thres_c[None, :] - pt.dot(_data("Xcs", X[:, cs_cols]), bcs)


def _linear_part(X, X_names, column_means, priors: PriorSet, sfx: str, rname: str, dpar: str,
                 intercept_default):
    """η = Intercept + X_c b of one linear predictor (a response's mean, or a distributional
    parameter ``dpar`` on its link scale), brms' centring: X_c = X − x̄ over the response's
    rows. Registers ``_beta<sfx>`` (the coefficients on the original scale, X's order);
    returns (η, β)."""
    import pymc as pm
    import pytensor.tensor as pt
    has_int = "Intercept" in X_names
    int_col = X_names.index("Intercept") if has_int else None
    others = [j for j in range(X.shape[1]) if j != int_col]
    means = column_means(others) if has_int else np.zeros(len(others))
    Xc = X[:, others] - means
    fixed_names = [X_names[j] for j in others]
    eta = 0.0
    b_vec = None
    if others:
        b_vec = _fixed_coefficients(priors, fixed_names, rname, sfx, dpar)
        eta = pt.dot(_data(f"X{sfx}", Xc), b_vec)
    full = [None] * X.shape[1]
    if has_int:
        p_int = priors.resolve("Intercept", intercept_default(), resp=rname, dpar=dpar)
        icpt = pymc_rv(f"Intercept{sfx}", [p_int.prior])
        eta = eta + icpt
        full[int_col] = icpt - (pt.dot(_data(f"means{sfx}", means), b_vec) if others
                                else 0.0)
    for i, j in enumerate(others):
        full[j] = b_vec[i]
    beta = pt.stack(full) if full else pt.zeros(0)
    pm.Deterministic(f"_beta{sfx}", beta)
    return eta, beta


#: Prefix of the conditional engine's data held in shared variables (y, X, group codes and
#: columns): their values are data, swapped in by nutpie's ``with_data`` when a model of the
#: same structure is fitted again, and their lengths (the number of rows) are not part of the
#: structure key (:func:`.sampling.structure_key`), so re-fits compile once.
DATA_PREFIX = "data__"


def _data(name: str, value: np.ndarray):
    """``value`` as a named shared variable of the current model (``pm.Data``; no static
    shape); the existing one when a term's data are used again (mvbind: every response)."""
    import pymc as pm
    known = pm.modelcontext(None).named_vars.get(DATA_PREFIX + name)
    return known if known is not None else pm.Data(DATA_PREFIX + name, np.asarray(value))


def _gather_effects(u, part, term, codes):
    """Σ_c Z[i, c] u[codes[i], offset + c] for one group term, one vector gather per
    coefficient: the gradient is then a vector scatter, which PyTensor's C backend runs
    compiled (a matrix ``u[codes]``'s gradient falls back to ``np.add.at`` in Python: 1 ms per
    call at InstEval's 73k rows).  A column named ``Intercept`` (all ones by construction) is
    gathered without the product, so ``(1 | g)`` is u[codes] alone — the graph a PyMC user
    writes; the other columns of Z are one shared (N, q') matrix."""
    Zt = np.asarray(term.X, dtype=float)
    cols = range(part.q)
    ones = [c for c in cols if term.coef_names[c] == "Intercept" and np.all(Zt[:, c] == 1.0)]
    rest = [c for c in cols if c not in ones]
    add = 0.0
    for c in ones:
        add = add + u[:, part.offset + c][codes]
    if rest:
        Zr = _data(f"Z__{part.term}", Zt[:, rest])
        for j, c in enumerate(rest):
            add = add + Zr[:, j] * u[:, part.offset + c][codes]
    return add


def _block_mean(b: Block, design: Design, betas: list, dbetas: dict, threshold_means: dict,
                taken: set):
    """Vector (Q,) of the fixed coefficients (original scale) the block's coefficients vary
    around in the centred form: those of the linear predictor each part enters (the mean's,
    ``betas[response]``, or a distributional formula's, ``dbetas[(dpar, response)]``); for
    an ordinal response's intercept −τ̄, minus the mean threshold (P(y ≤ k) = F(τ_k − η), and
    τ_k − u_j = (τ_k − τ̄) − (u_j − τ̄): the thresholds' common location moves into the
    levels' mean, as an intercept does); 0 where that fixed part has no such column or where
    an earlier centred block already uses it (any mean gives the same model: u = v − m)."""
    import pytensor.tensor as pt
    parts = []
    for part in b.parts:
        t = design.terms[part.term]
        names = list(_part_fixed(design, part)[1])
        beta = betas[part.response] if part.dpar is None \
            else dbetas[(part.dpar, part.response)]
        for coef in t.coef_names:
            key = (part.response, part.dpar, coef)
            if coef in names and key not in taken:
                taken.add(key)
                if part.dpar is None and coef == "Intercept" \
                        and part.response in threshold_means:
                    parts.append(-threshold_means[part.response])
                else:
                    parts.append(beta[names.index(coef)])
            else:
                parts.append(pt.constant(0.0))
    return pt.stack(parts)


def _centred_effects(b: Block, T, m, dims):
    """Centred group effects: ``v__<block>`` (J, Q) with v_j ~ N(m, chol_h(j) chol_h(j)')
    (uncorrelated: N(m, diag(sd²))); returns u = v - m.

    The correlated log-density uses z = chol⁻¹ (v_j - m) by forward substitution written
    elementwise over the Q columns (Q is small): a ``solve_triangular`` or ``dot`` on the
    sampled v cost 8-16x more per gradient here (benchmarks/param_case3.py).
    """
    import pymc as pm
    import pytensor.tensor as pt
    J, Q = b.J, b.Q
    if not (b.correlated and Q > 1):
        sd = T[b.by_codes] if b.by_levels else pt.broadcast_to(T[0], (J, Q))
        v = pm.Normal(f"v__{b.key}", mu=pt.broadcast_to(m, (J, Q)), sigma=sd, dims=dims)
        return v - m
    # without by-levels one (Q, Q) factor and a (Q,) mean, broadcast over the J levels by
    # the signature (no (J, Q, Q) copy in the gradient)
    L = T[b.by_codes] if b.by_levels else T[0]
    op = _centred_mvnormal_op(Q)
    v = pm.modelcontext(None).register_rv(op(m, L, size=(J,)), f"v__{b.key}", dims=dims)
    return v - m


_CENTRED_OPS: dict = {}


def _centred_mvnormal_op(Q: int):
    """The random-variable op of ``v_j ~ N(mu, L Lᵀ)`` (signature ``(q),(q,q)->(q)``), one per Q
    per process: ``pm.CustomDist`` makes a new op class per call, and ops hash by class, so a
    fresh op would make every centred model miss the compiled-model cache
    (:func:`.sampling.structure_key`)."""
    op = _CENTRED_OPS.get(Q)
    if op is not None:
        return op
    import pymc as pm
    import pytensor.tensor as pt

    def logp(value, mu_, L_):
        d = value - mu_
        zs, out = [], 0.0
        for c in range(Q):
            acc = d[..., c]
            for k in range(c):
                acc = acc - L_[..., c, k] * zs[k]
            zc = acc / L_[..., c, c]
            zs.append(zc)
            out = out - 0.5 * zc ** 2 - pt.log(L_[..., c, c])
        return out - 0.5 * Q * np.log(2 * np.pi)

    def random(mu_, L_, rng=None, size=None):
        shape = np.broadcast_shapes(mu_.shape, L_.shape[:-1])
        if size is not None:
            shape = tuple(size) + shape[-1:]
        z = rng.standard_normal(shape)
        return mu_ + np.einsum("...ck,...k->...c", L_, z)

    def support_point(rv, size, mu_, L_):
        return pt.zeros(rv.shape) + mu_

    proto = pm.CustomDist.dist(np.zeros(Q), np.eye(Q), logp=logp, random=random,
                               support_point=support_point, signature="(q),(q,q)->(q)",
                               class_name=f"CentredMvNormal{Q}")
    op = _CENTRED_OPS[Q] = proto.owner.op
    return op


def _fixed_coefficients(priors: PriorSet, names: list[str], resp: str, sfx: str,
                        dpar: str = ""):
    """Vector b of the non-intercept coefficients; coefficient-specific priors get their own RV."""
    import pytensor.tensor as pt
    flat = Prior("flat", (), "b")
    rows = [priors.resolve("b", flat, coef=c, resp=resp, dpar=dpar) for c in names]
    shared = [i for i, rw in enumerate(rows) if rw.source == "default" or not rw.prior.coef]
    parts = [None] * len(names)
    if shared:
        groups: dict[str, list[int]] = {}
        for i in shared:
            groups.setdefault(str(rows[i].prior), []).append(i)
        for g, idx in enumerate(groups.values()):
            name = f"b{sfx}" if g == 0 else f"b{sfx}__{g}"
            vec = pymc_rv(name, [rows[i].prior for i in idx], shape=len(idx))
            for m, i in enumerate(idx):
                parts[i] = vec[m]
    for i, rw in enumerate(rows):
        if parts[i] is None:
            parts[i] = pymc_rv(f"b{sfx}__{names[i]}", [rw.prior])
    return pt.stack(parts)


def _block_covariance(b: Block, priors: PriorSet, scale: dict, resp: list[str],
                      multivariate: bool):
    """Cholesky factors (H, Q, Q) of a correlated block, or sds (H, Q) of an uncorrelated one."""
    import pymc as pm
    import pytensor.tensor as pt
    sd_priors = []
    for part in b.parts:
        rname = resp[part.response] if multivariate else ""
        head = "_".join(x for x in (part.dpar, rname) if x)
        for c, label in enumerate(b.labels[part.offset:part.offset + part.q]):
            coef = label[len(head) + 1:] if head else label
            # brms: the sd of a distributional parameter's group effects student_t(3, 0, 2.5)
            s_ = scale[part.response] if part.dpar is None else DPAR_SD_SCALE
            d = Prior("student_t", (3.0, 0.0, s_), "sd")
            sd_priors.append(priors.resolve("sd", d, coef=coef, group=b.group,
                                            resp=rname, dpar=part.dpar or "").prior)
    H = b.H
    if b.structure in ("ar1", "cs", "toep") and b.Q > 1:   # glmmTMB structures (covstruct.py)
        from .covstruct import structured_factor
        return structured_factor(b, sd_priors, priors)
    if b.correlated and b.Q > 1:
        eta_prior = priors.resolve("cor", Prior("lkj", (1.0,), "cor"), group=b.group).prior
        eta = eta_prior.args[0]
        chols = []
        for h in range(H):
            sfx = f"__{h}" if b.by_levels else ""
            chol, corr, std = pm.LKJCholeskyCov(
                f"chol__{b.key}{sfx}", n=b.Q, eta=eta,
                sd_dist=pymc_dist(sd_priors, lower=0.0, shape=b.Q, data=f"chol__{b.key}{sfx}"),
                compute_corr=True)
            pm.Deterministic(f"_corr__{b.key}{sfx}", corr)
            pm.Deterministic(f"_std__{b.key}{sfx}", std)
            chols.append(chol)
        return pt.stack(chols)
    sds = []
    for h in range(H):
        sfx = f"__{h}" if b.by_levels else ""
        sds.append(pymc_rv(f"sd__{b.key}{sfx}", sd_priors, lower=0.0, shape=b.Q))
    return pt.stack(sds)


#: scale of brms' default sd prior for group effects in a distributional formula
DPAR_SD_SCALE = 2.5


def _se_only(design, family: Family) -> set:
    """The responses k of ``y | se(sei)`` without ``sigma = TRUE``: no σ parameter, σ ≡ 0
    (brms); multivariate: per response (its bf() part)."""
    parts = design.response_parts or [design]
    out = set()
    for k, part in enumerate(parts):
        if getattr(part, "se", None) is None:
            continue
        if "sigma" not in family.response(k).dpars:
            from ...errors import FamilyError
            raise FamilyError(f"se() needs a family with a residual sd sigma (gaussian, "
                              f"student), not {family.response(k).name!r}")
        if not part.formula.additions.se_sigma:
            out.add(k)
    return out


def _dpars(family: Family, priors: PriorSet, ys: list, resp: list[str], multivariate: bool,
           rescor: bool, residual_by: ResidualBy | None, predicted: set = frozenset(),
           sigma_fixed: set = frozenset(), rescor_se: bool = False) -> dict:
    """(``predicted``: (dpar, response) of the distributional formulas: those are not scalars,
    :mod:`.dpar_terms`; ``sigma_fixed``: se() without sigma = TRUE, σ ≡ 0.) sigma (per response; with ``rescor`` the whole R = diag(σ) Ω diag(σ) via LKJCholeskyCov;
    with ``residual_by`` one of these per level), then every other parameter of
    ``family.dpars`` (nu, shape, phi, zi, ...) within ``family.dpar_bounds``; default priors
    from the family
    (``ys``: per response (y, centre) for brms' data-based defaults)."""
    import pymc as pm
    import pytensor.tensor as pt
    out: dict = {}
    r = len(resp)
    levels = residual_by.levels if residual_by is not None else [None]
    names = {d for d, _ in predicted}          # (dpar, response) keys of dpar formulas
    if "sigma" in names:
        from .dpar_terms import residual_scales
        out.update(residual_scales(family, priors, ys, resp, multivariate, rescor, predicted))
    elif "sigma" in family.dpars and multivariate and rescor and rescor_se:
        # se() with rescor: R_i = diag(s_i) Ω diag(s_i), s_ik = √(σ_k² + se_ik²) per row
        # (brms' LSigma[n] = diag_pre_multiply(sigma[n], Lrescor)): σ_k scalars, Ω ~ LKJ
        from .dpar_terms import residual_scales
        out.update(residual_scales(family, priors, ys, resp, multivariate, rescor,
                                   {("sigma", k) for k in sigma_fixed}))
        for k in sigma_fixed:              # se() without sigma = TRUE: sigma_<resp> is 0
            out["sigma"][k] = pt.stack([pm.Deterministic(f"sigma__{resp[k]}",
                                                         pt.as_tensor_variable(0.0))])
    elif "sigma" in family.dpars and sigma_fixed and not multivariate:
        # se() without sigma = TRUE: the residual sd is se alone; sigma is 0 (brms reports 0)
        out["sigma"] = [pt.stack([pm.Deterministic("sigma", pt.as_tensor_variable(0.0))])]
    elif "sigma" in family.dpars:
        rows = [priors.resolve("sigma", family.default_prior("sigma", *ys[k]),
                               resp=resp[k] if multivariate else "") for k in range(r)]
        if multivariate and rescor:
            eta = priors.resolve("rescor", Prior("lkj", (1.0,), "rescor")).prior.args[0]
            chols = []
            for h, _ in enumerate(levels):
                hs = f"__{h}" if residual_by is not None else ""
                chol, corr, std = pm.LKJCholeskyCov(
                    f"chol__rescor{hs}", n=r, eta=eta,
                    sd_dist=pymc_dist([rw.prior for rw in rows], lower=0.0, shape=r,
                                      data=f"chol__rescor{hs}"),
                    compute_corr=True)
                pm.Deterministic(f"_corr__rescor{hs}", corr)
                pm.Deterministic(f"_std__rescor{hs}", std)
                chols.append(chol)
            out["chol_R"] = pt.stack(chols)          # (H, r, r)
            out["sigma"] = [pt.sqrt(pt.sum(out["chol_R"][:, k, :] ** 2, axis=-1))
                            for k in range(r)]
        else:
            sig = []
            for k in range(r):
                name = "sigma" + (f"__{resp[k]}" if multivariate else "")
                if k in sigma_fixed:        # se() without sigma = TRUE: sigma_<resp> is 0
                    zero = pm.Deterministic(name, pt.as_tensor_variable(0.0))
                    sig.append(pt.stack([zero] * len(levels)))
                elif residual_by is None:
                    sig.append(pt.stack([pymc_rv(name, [rows[k].prior], lower=0.0)]))
                else:
                    sig.append(pymc_rv(name + "__by", [rows[k].prior] * len(levels),
                                       lower=0.0, shape=len(levels)))
            out["sigma"] = sig                          # per response: (H,)
    for d in family.dpars:               # nu, shape, phi, zi, hu, ndt, ...: one scalar each
        if d == "sigma" or d in names or (d == "thres" and family.thresholds):
            continue
        out[d] = _scalar_dpar(family, d, priors, ys[0], d, "")
    return out


def _scalar_dpar(family: Family, d: str, priors: PriorSet, y_centre: tuple, name: str,
                 resp: str):
    """One scalar distributional parameter ``name`` (nu, shape, phi, zi, ...): the family's
    fixed value where it has one (ordinal disc without a formula: 1), else a random variable
    within ``family.dpar_bounds`` with the user's prior or the family's default (brms' rule on
    ``y_centre`` = (y, centre) of the response)."""
    import pytensor.tensor as pt
    if d in family.fixed_dpars:
        return pt.as_tensor_variable(np.float64(family.fixed_dpars[d]))
    lower, upper = family.dpar_bounds(d, y_centre[0])
    prior = priors.resolve(d, family.default_prior(d, *y_centre), resp=resp).prior
    return pymc_rv(name, [prior], lower=lower, upper=upper)


def _check_mixed(design, family) -> None:
    """What a model with one family per response (``MV(poisson, gaussian)``) does not fit
    yet: distributional formulas, autocorrelation terms, rescor_by."""
    from ...errors import MixedFormulaError
    if design.dpar_keys:
        raise MixedFormulaError(f"distributional formulas (sigma ~ ...) in a model with one "
                                f"family per response ({family.name}) are not supported yet")
    if getattr(design, "autocor", None) is not None:
        raise MixedFormulaError(f"autocorrelation terms in a model with one family per "
                                f"response ({family.name}) are not supported")


def _mixed_dpars(family, priors: PriorSet, ys: list, resp: list[str],
                 sigma_fixed: set = frozenset()) -> dict:
    """The distributional parameters of a model with one family per response
    (:class:`~mixedformula.families.multivariate.MultivariateFamily`): response k's own
    ``family.response(k).dpars``, each one scalar ``<dpar>__<resp>`` (brms' ``sigma_y2``,
    ``shape_y1``) with the default prior of that response's family (brms' rule on that
    response's y) and its bounds. ``out["sigma"][k]``: (1,) σ_k, or None when response k has
    no sigma; ``out["by_response"][k]``: that response's other parameters."""
    import pymc as pm
    import pytensor.tensor as pt
    sig, own = [], []
    for k, rname in enumerate(resp):
        fam = family.response(k)
        params: dict = {}
        for d in fam.dpars:
            name = f"{d}__{rname}"
            if d == "sigma" and k in sigma_fixed:       # se() without sigma = TRUE: σ ≡ 0
                params[d] = pm.Deterministic(name, pt.as_tensor_variable(0.0))
            else:
                params[d] = _scalar_dpar(fam, d, priors, ys[k], name, rname)
        sig.append(pt.stack([params.pop("sigma")]) if "sigma" in params else None)
        own.append(params)
    return {"sigma": sig, "by_response": own}


def _thresholds(family: Family, priors: PriorSet, y: np.ndarray, has_int: bool):
    """The K − 1 thresholds of an ordinal family (``Intercept``, for the centred predictors),
    prior ``class = "Intercept"`` (brms' default student_t(3, 0, 2.5)); ordered by PyMC's
    ``ordered`` transform (log increments) where the family needs it (cumulative), started at
    the logistic quantiles of equal category shares."""
    import pymc as pm
    if not has_int:
        raise FamilyError(f"family {family.name!r} needs the intercept: its thresholds take the "
                          "intercept's place (remove 0 + / - 1 from the formula)")
    K = family.n_categories(y)
    p_int = priors.resolve("Intercept", family.default_intercept(y), resp="")
    # brms' rows ``class = Intercept, coef = 1``, ``coef = 2``, ...: one prior per threshold
    # (the class prior unless a threshold has its own)
    rows = [priors.resolve("Intercept", p_int.prior, coef=str(k), resp="")
            for k in range(1, K)]
    kw = {"initval": family.threshold_init(K)}
    if family.ordered_thresholds:
        kw["transform"] = pm.distributions.transforms.ordered
    dist = (pymc_dist([p_int.prior], shape=K - 1) if all(rw.source == "default" for rw in rows)
            else pymc_dist([rw.prior for rw in rows], shape=K - 1))
    return pm.modelcontext(None).register_rv(dist, "Intercept", **kw)


def _partially_observed_likelihood(etas, dpars, y, observed, resp, rescor,
                                   residual_by: ResidualBy | None):
    """Gaussian responses with missing entries: each row contributes the marginal density of
    its observed components.

    Rows are grouped by their pattern S of observed responses; with residual covariance
    R = L Lᵀ, y_S ~ N(μ_S, R_SS) (the sub-matrix; chol(R_SS) recomputed, as L_S· is not
    triangular), one observed variable ``y__<r1>_<r2>`` per pattern. Without rescor every
    response is its own Normal on its observed rows (``y__<resp>``).
    """
    import pymc as pm
    import pytensor.tensor as pt
    from .mvnormal import add_mvnormal
    n, r = y.shape
    codes = residual_by.codes if residual_by is not None else np.zeros(n, dtype=int)
    if dpars.get("per_row"):             # a sigma formula: sigma and chol_R per row
        codes = np.arange(n)
    if not rescor:
        for k in range(r):
            rows = np.nonzero(observed[:, k])[0]
            pm.Normal(f"y__{resp[k]}", mu=etas[k][rows], sigma=dpars["sigma"][k][codes[rows]],
                      observed=y[rows, k])
        return
    mu = pt.stack(etas, axis=1)
    chol = dpars["chol_R"]                                     # (H, r, r)
    # H from the data, not from chol's static shape (which may be unknown)
    n_levels = len(residual_by.levels) if residual_by is not None else 1
    patterns, which = np.unique(observed, axis=0, return_inverse=True)
    for p, pattern in enumerate(patterns):
        S = np.nonzero(pattern)[0]
        if len(S) == 0:
            continue
        rows = np.nonzero(which.ravel() == p)[0]
        if len(S) == r:
            chol_S = chol
        elif dpars.get("per_row"):      # R_SS = diag(σ_S) Ω_SS diag(σ_S) per row
            sig = pt.stack(dpars["sigma"], axis=1)[:, S]
            Om = dpars["chol_corr"]
            chol_S = sig[:, :, None] * pt.linalg.cholesky(pt.dot(Om[S], Om[S].T))[None]
        else:
            L = chol[:, S, :]
            chol_S = pt.stack([pt.linalg.cholesky(pt.dot(L[h], L[h].T))
                               for h in range(n_levels)])
        c = chol_S[0] if residual_by is None and not dpars.get("per_row") \
            else chol_S[codes[rows]]
        add_mvnormal("y__" + "_".join(resp[k] for k in S), mu[rows][:, S], c,
                     y[np.ix_(rows, S)])


def _rescor_se_rows(dpars: dict, design, n: int) -> None:
    """se() with rescor (brms): per row s_ik = √(σ_k² + se_ik²) (se alone when σ_k ≡ 0) and
    chol R_i = diag(s_i) chol(Ω), into ``dpars`` (in place; ``per_row``). Without se() (only
    weights()) the model's R = diag(σ) Ω diag(σ) stays."""
    import pytensor.tensor as pt
    if "chol_corr" not in dpars:
        return
    per_row = bool(dpars.get("per_row"))
    sds = []
    for k, part in enumerate(design.response_parts):
        base = dpars["sigma"][k] if per_row else pt.repeat(dpars["sigma"][k][0], n)
        if part.se is not None:
            se = _data(f"se__{design.response_names[k]}", np.asarray(part.se, dtype=float))
            base = pt.sqrt(base * base + se * se)
        sds.append(base)
    dpars["sigma"] = sds
    dpars["chol_R"] = pt.stack(sds, axis=1)[:, :, None] * dpars["chol_corr"][None, :, :]
    dpars["per_row"] = True


def _per_response_likelihood(family: Family, etas, dpars, y, design, resp,
                             residual_by: ResidualBy | None) -> None:
    """A multivariate model without residual correlation whose responses have addition terms
    (brms: each response its own likelihood with its own weights/cens/trunc/se): on response
    k's rows, ``y__<resp>`` with :func:`.additions.add_addition_likelihood` of that response's
    part (or the family's plain likelihood when the part has none); log p(y) = Σ_k Σ_i."""
    from ...design.additions import has_additions
    from .additions import add_addition_likelihood
    n = y.shape[0]
    codes = residual_by.codes if residual_by is not None else np.zeros(n, dtype=int)
    per_row = bool(dpars.get("per_row"))
    for k, part in enumerate(design.response_parts or design.part_designs):
        rows = np.nonzero(design.observed[:, k])[0] if design.observed is not None \
            else np.arange(n)
        fam_k = family.response(k)
        own = dpars["by_response"][k] if "by_response" in dpars else dpars
        params = {d: own[d] for d in fam_k.dpars if d != "sigma"}
        if "sigma" in fam_k.dpars:
            sig = dpars["sigma"][k]
            params["sigma"] = sig[rows] if per_row else sig[0] if residual_by is None \
                else sig[codes[rows]]
        eta = etas[k][rows] if design.observed is not None else etas[k]
        name = f"y__{resp[k]}"
        if has_additions(part):
            add_addition_likelihood(fam_k, eta, params, y[rows][:, [k]], part, _data,
                                    name=name, dims=None)
        else:
            # part.trials / y_const: on response k's rows (the part's own design)
            trials = None if part.trials is None else _data(
                f"trials__{resp[k]}", np.asarray(part.trials, dtype=float))
            y_const = fam_k.y_constant(y[rows, k], part.trials)
            extra = {} if y_const is None else {
                "y_const": _data(f"y_const__{resp[k]}", y_const)}
            fam_k.pymc_likelihood(name, eta, params, _data(name, y[rows, k]), trials,
                                  dims=None, **extra)


def _conditional_likelihood(family: Family, etas, dpars, y, trials, multivariate, rescor,
                            residual_by: ResidualBy | None = None, design=None):
    import pymc as pm
    import pytensor.tensor as pt
    codes = residual_by.codes if residual_by is not None else np.zeros(y.shape[0], dtype=int)
    per_row = bool(dpars.get("per_row"))     # distributional formulas: parameters per row
    if per_row:
        codes = np.arange(y.shape[0])
    if multivariate:
        mu = pt.stack(etas, axis=1)
        if rescor:
            from .mvnormal import add_mvnormal
            chol = dpars["chol_R"] if per_row else dpars["chol_R"][0] \
                if residual_by is None else dpars["chol_R"][codes]
            from ...design.additions import common_weights
            w = common_weights(design) if design is not None else None
            add_mvnormal("y", mu, chol, y, dims=("obs", "response"),
                         weights=None if w is None else _data("weights", w))
        else:
            sig = pt.stack([s[codes] for s in dpars["sigma"]], axis=1)
            pm.Normal("y", mu=mu, sigma=sig, observed=y, dims=("obs", "response"))
        return
    eta = etas[0]
    obs = _data("y", y[:, 0])
    params = {k: dpars[k] for k in family.dpars if k != "sigma"}
    if "sigma" in dpars:
        params["sigma"] = dpars["sigma"][0] if per_row else dpars["sigma"][0][0] \
            if residual_by is None else dpars["sigma"][0][codes]
    from ...design.additions import has_additions
    from .additions import add_addition_likelihood
    if design is not None and has_additions(design):     # weights(), cens(), trunc(), se()
        add_addition_likelihood(family, eta, params, y, design, _data)
        return
    # the y-only term (−log y!, log C(n, y)) once here, and trials(n), as shared data: re-fits
    # swap them with y, so one structure compiles once whatever its data
    y_const = family.y_constant(y[:, 0], trials)
    extra = {} if y_const is None else {"y_const": _data("y_const", y_const)}
    n = None if trials is None else _data("trials", np.asarray(trials, dtype=float))
    family.pymc_likelihood("y", eta, params, obs, n, dims="obs", **extra)
