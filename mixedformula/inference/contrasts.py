r"""Contrast matrices of lmerTest's type I, II and III ANOVA tables.

Type I (sequential; lmerTest's ``get_contrasts_type1``): the Doolittle factorisation
XᵀX = L U (L unit lower triangular, entries below 10⁻⁶ set to 0); the rows of Lᵀ that belong to
a term's columns test that term adjusted for the terms before it.

Type II (lmerTest's ``get_contrasts_type2_unfolded``): a term contained in no other term is
tested by its marginal contrast (the rows of I at its columns: its coefficients = 0); a term T
contained in others (:meth:`FixedTerms.contained_in`) by the type I contrast of T with X's
columns reordered as [columns of terms unrelated to T, T's, those of the terms containing T]
(Doolittle of the reordered XᵀX, T's rows, columns back in X's order) — T adjusted for every
term not containing it.

Type III (lmerTest's ``extract_contrasts_type3``, treatment contrasts): with the rank-deficient
"full dummy" matrix X̃ (intercept, then per term every product of full indicator columns of its
factors times its numeric variables), the estimable functions are the columns of
L = (X⁺ X̃)ᵀ (rows: columns of X̃, columns: coefficients; R's ``zapsmall``-ed). Terms are
taken from the highest order down; the columns of a term contained in other terms (its
variables a proper subset with the same numeric variables) are replaced by their residuals
from a least-squares fit on the containing terms' columns. The hypothesis of a term is then
the rows of L at X's columns, transposed, keeping the non-zero rows.
"""

from __future__ import annotations

import re
import warnings

import numpy as np

_ALIAS = re.compile(r"_mf[vc](\d+)_")      # data columns and their factor codings


def zapsmall(x: np.ndarray, digits: int = 7) -> np.ndarray:
    """R's ``zapsmall``: round to ``digits`` significant digits of the largest |x|."""
    x = np.asarray(x, dtype=float)
    mx = np.max(np.abs(x), initial=0.0)
    d = max(0, digits - int(np.ceil(np.log10(mx)))) if mx > 0 else digits
    return np.round(x, d)


def doolittle(x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """The unit lower-triangular L of lmerTest's ``doolittle`` (x = L U)."""
    n = x.shape[0]
    L = np.eye(n)
    U = np.zeros((n, n))
    for i in range(n):
        U[i, :] = x[i, :] - L[i, :i] @ U[:i, :]
        for j in range(i + 1, n):
            v = x[j, i] - L[j, :i] @ U[:i, i]
            L[j, i] = 0.0 if abs(U[i, i]) < eps else v / U[i, i]
    L[np.abs(L) < eps] = 0.0
    return L


class FixedTerms:
    """The fixed-effect terms of an lmer fit: lme4 labels, X columns, variables."""

    def __init__(self, fit):
        design = fit.design
        spec = design.spec.fixed_spec
        self.columns = list(getattr(design.spec, "columns", ()))
        keep = design.spec.fixed_keep
        pos = {j: k for k, j in enumerate(keep)} if keep is not None else None
        self.labels, self.cols, self.vars, self.numerics, self.texts = [], [], [], [], []
        self.intercept = False
        categorical = {str(f) for f in getattr(spec, "factor_contrasts", {}) or {}}
        self.contrasts = getattr(spec, "factor_contrasts", {}) or {}
        for term, idx in spec.term_indices.items():
            if str(term) == "1":
                self.intercept = True
                continue
            idx = [pos[j] for j in idx if pos is None or j in pos] if pos is not None \
                else list(idx)
            fvars = [str(f) for f in term.factors]
            self.texts.append(str(term))
            self.labels.append(":".join(self._name(v) for v in fvars))
            self.cols.append(idx)
            self.vars.append(set(fvars))
            self.numerics.append({v for v in fvars if v not in categorical})

    def _name(self, text: str) -> str:
        try:
            return _ALIAS.sub(lambda m: self.columns[int(m.group(1))], text).replace("`", "")
        except IndexError:
            return text

    def contained_in(self, k: int) -> list[int]:
        """Terms that contain term k (lmerTest's ``containment``)."""
        out = []
        for m in range(len(self.labels)):
            if (self.vars[k] < self.vars[m] and self.numerics[k] == self.numerics[m]):
                out.append(m)
        return out


def type1(fit) -> dict[str, np.ndarray]:
    X = np.asarray(fit.design.X, dtype=float)
    terms = FixedTerms(fit)
    p = X.shape[1]
    L = np.ones((1, 1)) if p == 1 else doolittle(X.T @ X).T
    return {lab: L[cols] for lab, cols in zip(terms.labels, terms.cols)}


def type2(fit) -> dict[str, np.ndarray]:
    X = np.asarray(fit.design.X, dtype=float)
    terms = FixedTerms(fit)
    p = X.shape[1]
    if p <= 1 or len(terms.labels) <= 1:
        return type1(fit)
    out = {}
    for k, (lab, cols) in enumerate(zip(terms.labels, terms.cols)):
        cont = terms.contained_in(k)
        if not cont:
            out[lab] = np.eye(p)[cols]
            continue
        related = list(cols) + [j for m in cont for j in terms.cols[m]]
        order = [j for j in range(p) if j not in set(related)] + related
        Lc = doolittle(X[:, order].T @ X[:, order]).T          # rows/columns in `order`
        rows = [i for i, j in enumerate(order) if j in set(cols)]
        L = np.zeros((len(rows), p))
        L[:, order] = Lc[rows]
        out[lab] = L
    return out


def full_dummy_matrix(fit, terms: FixedTerms):
    """X̃ and its lme4 column names (lmerTest's ``get_rdX``), evaluated on the fitted rows."""
    from formulaic import model_matrix

    from ..design import as_pandas
    from ..design.safe_text import alias
    from ..formula.validate import NUMPY_FUNCTIONS
    if fit.data is None:
        raise ValueError("type III contrasts need the fitted data (fit.data is None)")
    df = as_pandas(fit.data)
    rows = fit.design.row_index
    if rows is not None:
        df = df.loc[rows]
    frame = {alias(k): df[c] for k, c in enumerate(terms.columns) if c in df.columns}
    import pandas as pd
    frame = pd.DataFrame(frame, index=df.index)
    for a, state in terms.contrasts.items():
        name = str(a)
        if name in frame.columns:
            frame[name] = pd.Categorical(frame[name], categories=list(state.levels))
    blocks, names = [], []
    n = fit.nobs
    if terms.intercept:
        blocks.append(np.ones((n, 1)))
        names.append("(Intercept)")
    for text in terms.texts:
        mm = model_matrix("0 + " + text, frame, ensure_full_rank=False,
                          context=dict(NUMPY_FUNCTIONS), na_action="ignore")
        blocks.append(np.asarray(mm, dtype=float))
        names += [fit.column_name(terms._name(str(c))) for c in mm.columns]
    return np.hstack(blocks), names


def type3(fit) -> dict[str, np.ndarray]:
    terms = FixedTerms(fit)
    X = np.asarray(fit.design.X, dtype=float)
    if X.shape[1] <= 1 or len(terms.labels) <= 1:
        return type1(fit)
    from formulaic.transforms.contrasts import TreatmentContrasts
    bad = [terms._name(str(a)) for a, st in terms.contrasts.items()
           if not isinstance(st.contrasts, TreatmentContrasts)]
    if bad:
        raise NotImplementedError(f"type III tests are computed for treatment contrasts only; "
                                  f"{', '.join(bad)} use other contrasts")
    rdX, rnames = full_dummy_matrix(fit, terms)
    zero = [nm for nm, col in zip(rnames, rdX.T) if np.all(col == 0)]
    if zero:
        warnings.warn(f"Missing cells for: {', '.join(zero)}. Interpret type III hypotheses "
                      f"with care.", UserWarning, stacklevel=3)
    L = zapsmall((np.linalg.pinv(X) @ rdX).T)
    order = sorted(range(len(terms.labels)), key=lambda k: -len(terms.vars[k]))
    for k in order:
        cont = terms.contained_in(k)
        if cont:
            A = L[:, [j for m in cont for j in terms.cols[m]]]
            Y = L[:, terms.cols[k]]
            coef = np.linalg.lstsq(A, Y, rcond=None)[0]
            L[:, terms.cols[k]] = zapsmall(Y - A @ coef)
    index = {nm: i for i, nm in enumerate(rnames)}
    missing = [nm for nm in fit.fixef_names if nm not in index]
    if missing:
        raise NotImplementedError(f"type III contrasts: coefficient(s) {', '.join(missing)} "
                                  f"not found among the full dummy columns")
    L = L[[index[nm] for nm in fit.fixef_names]]
    out = {}
    for lab, cols in zip(terms.labels, terms.cols):
        Lk = L[:, cols].T
        out[lab] = Lk[np.sum(np.abs(Lk), axis=1) > 1e-8]
    return out
