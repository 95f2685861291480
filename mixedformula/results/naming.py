"""The brms posterior-name codec: the one place that writes and reads parameter names.

=======================================  ========================================================
name                                     parameter
=======================================  ========================================================
``b_<coef>``, ``b_<resp>_<coef>``        fixed coefficient (multivariate: response prefix)
``sd_<group>__<label><tag>``             group-level sd; ``label`` = ``<resp>_<coef>`` in
                                         multivariate models (:func:`coef_label`)
``cor_<group>__<l1><tag>__<l2><tag>``   group-level correlation (l1 before l2); the by-tag
                                         follows each label, as brms writes it
``sigma<tag>``, ``sigma_<resp><tag>``    residual sd (univariate / multivariate)
``rescor__<r1>__<r2><tag>``              residual correlation
``nu``, ``shape``                        further family parameters
``rho_<group>``, ``rho_<group>[k]``      correlation of an ar1/cs (toep: lag k) group term
``b_Intercept[k]``                       k-th threshold of an ordinal family (k = 1..K − 1)
``bcs_<coef>[k]``                        category-specific effect cs() of an ordinal family at
                                         threshold k (brms; summary and fixef: ``<coef>[k]``)
``r_<group>``                            group effects u, dims (``<group>``, ``<group>__coef``)
``b_sigma_<coef>``, ``b_sigma_<resp>_..``  fixed coefficient of a distributional formula
                                         (``sigma ~ x``): prefix :func:`dpar_prefix`; its group
                                         terms' labels ``sigma_Intercept`` in sd/cor names and
                                         in ``r_<group>`` (brms' ``ranef()`` labels)
=======================================  ========================================================

``<tag>`` is ``""`` or the by-level tag ``:<by><level>`` (``gr(g, by = h)`` → ``:hA``;
``rescor_by = "x"`` → ``:xA``), as brms writes them. The readers split a name back into its
parts; they need the known group / coefficient / response names to split unambiguously
(``h:g`` groups and ``x:f`` coefficients contain ``:``, labels may contain ``__``).
"""

from __future__ import annotations

import re

#: the families' further parameters (families/base.py DPAR_BOUNDS): the summary's "Further
#: Distributional Parameters"
SPEC_DPARS = ("sigma", "nu", "shape", "phi", "zi", "hu", "zoi", "coi", "ndt", "beta", "alpha",
              "kappa")
_SPEC = re.compile(rf"^({'|'.join(SPEC_DPARS)})($|_|:)")
#: brms' residual autocorrelation parameters: ``ar[k]`` (ar(), arma()), ``ma[k]`` (ma(),
#: arma()), ``cosy`` (cosy()), ``cortime__<t1>__<t2>`` (unstr())
_AUTOCOR = re.compile(r"^((ar|ma)\[[1-9][0-9]*\]|cosy|cortime__.+__.+)$")


# --------------------------------------------------------------------------- writers

def by_tag(by: str | None, level) -> str:
    """``:<by><level>`` (``""`` when there is no by-variable)."""
    return f":{by}{level}" if by else ""


def ar_name(k: int) -> str:
    """brms' name of the k-th AR coefficient (1-based): ``ar[1]``."""
    return f"ar[{k}]"


def cortime_name(t1, t2) -> str:
    """brms' name of unstr()'s correlation between times t1 and t2: ``cortime__1__2``."""
    return f"cortime__{t1}__{t2}"


def ma_name(k: int) -> str:
    """brms' name of the k-th MA coefficient (1-based): ``ma[1]``."""
    return f"ma[{k}]"


def coef_label(coef: str, resp: str | None = None) -> str:
    """Coefficient label of a group term: ``coef`` or, multivariate, ``<resp>_<coef>``."""
    return f"{resp}_{coef}" if resp else coef


def dpar_prefix(dpar: str, resp: str | None = None) -> str:
    """The prefix of a distributional parameter's coefficients, as brms writes it:
    ``sigma`` (``b_sigma_x``, ``sd_g__sigma_Intercept``) or, multivariate, ``sigma_y1``."""
    return f"{dpar}_{resp}" if resp else dpar


def b_name(coef: str, resp: str | None = None) -> str:
    return f"b_{coef_label(coef, resp)}"


def threshold_name(k: int) -> str:
    """``b_Intercept[k]``: the k-th threshold (1-based) of an ordinal family, as brms."""
    return f"b_Intercept[{k}]"


def cs_name(coef: str, k: int) -> str:
    """``bcs_<coef>[k]``: the category-specific effect of ``coef`` at threshold k (brms)."""
    return f"bcs_{coef}[{k}]"


def fixed_label(name: str) -> str:
    """The row label of a fixed-effect name in summary and fixef (brms): ``b_x`` → ``x``,
    ``bcs_x[2]`` → ``x[2]``."""
    return name[4:] if name.startswith("bcs_") else name[2:]


def split_threshold(name: str) -> int | None:
    """``"b_Intercept[2]"`` → 2; any other name → None."""
    m = re.fullmatch(r"b_Intercept\[(\d+)\]", name)
    return int(m.group(1)) if m else None


def sd_name(group: str, label: str, tag: str = "") -> str:
    return f"sd_{group}__{label}{tag}"


def cor_name(group: str, label1: str, label2: str, tag: str = "") -> str:
    """``cor_g__Intercept__x``; for gr(g, by = h) the level tag follows each label, as brms:
    ``cor_g__Intercept:hA__x:hA`` (``tag = ":hA"``)."""
    return f"cor_{group}__{label1}{tag}__{label2}{tag}"


def rho_names(group: str, structure: str, Q: int) -> list[str]:
    """Correlation parameters of a glmmTMB-structured group term: ``rho_<group>`` (ar1, cs)
    or ``rho_<group>[k]``, k = 1 … Q − 1 (toep: the lag-k correlation)."""
    if structure in ("ar1", "cs"):
        return [f"rho_{group}"]
    return [f"rho_{group}[{k}]" for k in range(1, Q)]


_RHO = re.compile(r"^rho_(.+?)(\[(\d+)\])?$")


def split_rho(name: str) -> tuple[str, str]:
    """``rho_group[2]`` → (``group``, ``rho[2]``); ``rho_group`` → (``group``, ``rho``)."""
    m = _RHO.match(name)
    return m.group(1), "rho" + (m.group(2) or "")


def legacy_cor_names(names, blocks) -> dict[str, str]:
    """Old name → brms name of by-group correlations in fits saved before the names followed
    brms (``cor_g__Intercept__x:hA`` → ``cor_g__Intercept:hA__x:hA``). ``blocks`` are
    (group, by, by_levels) triples; coefficient labels never contain ``__``, so the split is
    unique."""
    out = {}
    names = set(names)
    for group, by, levels in blocks:
        head = f"cor_{group}__"
        for lev in levels or ():
            tag = by_tag(by, lev)
            for v in names:
                if v.startswith(head) and v.endswith(tag):
                    parts = v[len(head):-len(tag)].split("__")
                    if len(parts) == 2 and not parts[0].endswith(tag):
                        new = cor_name(group, parts[0], parts[1], tag)
                        if new not in names:
                            out[v] = new
    return out


def legacy_logical_names(names, design) -> dict[str, str]:
    """Old name → current name of fixed effects of logical predictors in fits saved before they
    were coded as R does (``b_b`` → ``b_bTRUE``, ``b_b:x`` → ``b_bTRUE:x``)."""
    specs = design.spec.parts or [design.spec]
    logical = {c for s in specs for c, k in s.codings.items() if k.kind == "logical"}
    if not logical:
        return {}
    names = set(names)
    prefixes = [""] + [f"{r}_" for r in design.response_names]
    out = {}
    for x in dict.fromkeys(design.X_names):
        old = ":".join(t[:-4] if t.endswith("TRUE") and t[:-4] in logical else t
                       for t in x.split(":"))
        for pre in prefixes:
            if old != x and f"b_{pre}{old}" in names and f"b_{pre}{x}" not in names:
                out[f"b_{pre}{old}"] = f"b_{pre}{x}"
    return out



def sigma_name(resp: str | None = None, tag: str = "") -> str:
    return f"sigma_{resp}{tag}" if resp else f"sigma{tag}"


def rescor_name(resp1: str, resp2: str, tag: str = "") -> str:
    return f"rescor__{resp1}__{resp2}{tag}"


def ranef_name(group: str) -> str:
    return f"r_{group}"


def ranef_coef_dim(group: str) -> str:
    """Name of the coefficient dimension of ``r_<group>``."""
    return f"{group}__coef"


# --------------------------------------------------------------------------- readers

def split_by(rest: str, by: str | None, by_levels) -> tuple[str, str | None, str | None]:
    """``"Intercept:hA"`` → ``("Intercept", "hA", "A")`` when ``h`` is the by-variable."""
    if not by or not by_levels:
        return rest, None, None
    # longest level first, so that level "A1" is not read as "A" + "1"
    for lev in sorted(by_levels, key=len, reverse=True):
        sfx = by_tag(by, lev)
        if rest.endswith(sfx) and len(rest) > len(sfx):
            return rest[: -len(sfx)], f"{by}{lev}", lev
    return rest, None, None


def split_pair(rest: str, known: set[str]) -> tuple[str, str]:
    """``"Intercept__Days"`` → (``"Intercept"``, ``"Days"``), preferring known names."""
    parts = rest.split("__")
    for k in range(1, len(parts)):
        a, c = "__".join(parts[:k]), "__".join(parts[k:])
        if a in known and c in known:
            return a, c
    if len(parts) < 2:
        return rest, ""
    return parts[0], "__".join(parts[1:])


def split_tag(rest: str) -> tuple[str, str | None]:
    """``"y1:xA"`` → (``"y1"``, ``"xA"``); no ``:`` → (rest, None)."""
    if ":" in rest:
        a, c = rest.split(":", 1)
        return a, c
    return rest, None


def split_group(rest: str, groups_longest_first: list[str]) -> tuple[str, str] | None:
    """``"h:g__Intercept"`` → (``"h:g"``, ``"Intercept"``) for a known group (None if none)."""
    for g in groups_longest_first:
        if rest.startswith(g + "__"):
            return g, rest[len(g) + 2:]
    return None


def name_kind(name: str) -> str | None:
    """The class of a posterior name: ``"b"``, ``"sd"``, ``"cor"``, ``"rescor"``, ``"spec"``
    (sigma / nu / shape), ``"r"``, ``"autocor"`` (``ar[k]``, ``ma[k]``, ``cosy``, ``cortime__t1__t2``) or None."""
    if name.startswith(("b_", "bcs_")):
        return "b"
    if name.startswith("sd_"):
        return "sd"
    if name.startswith("cor_"):
        return "cor"
    if name.startswith("rescor__"):
        return "rescor"
    if name.startswith("rho_"):
        return "rho"
    if name.startswith("r_"):
        return "r"
    if _SPEC.match(name):
        return "spec"
    if _AUTOCOR.match(name):
        return "autocor"
    return None


def split_spec(name: str) -> tuple[str, str | None, str | None]:
    """``"sigma_y1:xA"`` → (``"sigma"``, ``"y1"``, ``"xA"``); ``"sigma:xA"`` → (sigma, None, xA)."""
    m = _SPEC.match(name)
    dpar = m.group(1)
    rest = name[len(dpar):]
    resp = tag = None
    if rest.startswith("_"):
        resp, tag = split_tag(rest[1:])
    elif rest.startswith(":"):
        tag = rest[1:]
    return dpar, resp, tag
