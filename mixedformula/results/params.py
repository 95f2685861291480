"""Read brms parameter names back into their parts (see docs/dev/CONTRACT.md).

================================  ==============================================================
posterior variable                meaning (block of brms' summary, row label)
================================  ==============================================================
``b_<coef>``                      regression coefficient (Regression Coefficients, ``<coef>``)
``sd_<g>__<coef>[:<h><lev>]``     group-level sd (``~g`` block, ``sd(<coef>[:<h><lev>])``)
``cor_<g>__<c1>__<c2>[:<h><lev>]``  group-level correlation (``cor(<c1>,<c2>[:<h><lev>])``)
``sigma``, ``nu``, ``shape``,      further distributional parameters (row label = variable name)
``sigma_<resp>[:<by>]``
``rescor__<r1>__<r2>[:<by>]``     residual correlation (``rescor(<r1>,<r2>[:<by>])``)
``r_<g>``                         group effects (level × coefficient); not a summary row
================================  ==============================================================

The group name is matched against the design's grouping factors first (``h:g`` of a nested term
contains ``:``, a coefficient ``x:f`` too), so the split is never ambiguous for names the builder
writes; the by-suffix ``:<h><level>`` is recognised from the design's ``gr(g, by = h)`` levels.
A by-group correlation carries it after each coefficient, as brms: ``cor_g__Intercept:hA__x:hA``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .naming import (name_kind, split_by, split_group, split_pair, split_rho, split_spec,
                     split_tag)


@dataclass
class GroupInfo:
    """What the summary needs to know about one grouping factor."""

    name: str
    nlevels: int
    by: str | None = None                 # by-variable of gr(g, by = h)
    by_levels: list[str] | None = None    # its levels


@dataclass
class SdParam:
    var: str
    group: str
    coef: str
    by_label: str | None = None   # "hA" for gr(g, by = h), level "A"
    by_level: str | None = None

    @property
    def label(self) -> str:
        return f"sd({self.coef}{':' + self.by_label if self.by_label else ''})"


@dataclass
class CorParam:
    var: str
    group: str
    coef1: str
    coef2: str
    by_label: str | None = None
    by_level: str | None = None
    text: str | None = None        # ar1/cs/toep: "rho" or "rho[k]" (coef1 = coef2 = "")

    @property
    def label(self) -> str:
        if self.text is not None:
            return self.text
        return f"cor({self.coef1},{self.coef2}{':' + self.by_label if self.by_label else ''})"


@dataclass
class SpecParam:
    var: str
    dpar: str                    # sigma, nu, shape
    resp: str | None = None      # response of a multivariate model
    by_label: str | None = None  # rescor_by level label, e.g. "groupA"

    @property
    def label(self) -> str:
        return self.var


@dataclass
class RescorParam:
    var: str
    resp1: str
    resp2: str
    by_label: str | None = None

    @property
    def label(self) -> str:
        return f"rescor({self.resp1},{self.resp2}{':' + self.by_label if self.by_label else ''})"


@dataclass
class ParamIndex:
    """Scalar posterior variables sorted into brms' summary blocks (posterior order kept)."""

    fixed: list[str] = field(default_factory=list)             # variables b_*
    groups: dict[str, GroupInfo] = field(default_factory=dict)  # formula order
    sd: dict[str, list[SdParam]] = field(default_factory=dict)
    cor: dict[str, list[CorParam]] = field(default_factory=dict)
    spec: list[SpecParam] = field(default_factory=list)
    rescor: list[RescorParam] = field(default_factory=list)
    ranef: dict[str, str] = field(default_factory=dict)        # group → variable r_<group>
    autocor: list[str] = field(default_factory=list)           # ar[k], cosy

    def scalar_vars(self) -> list[str]:
        out = list(self.fixed)
        for g in self.groups:
            out += [p.var for p in self.sd.get(g, [])] + [p.var for p in self.cor.get(g, [])]
        out += [p.var for p in self.spec] + [p.var for p in self.rescor] + list(self.autocor)
        return out


def index_params(posterior, groups: list[GroupInfo] | None = None,
                 responses: list[str] | None = None) -> ParamIndex:
    """Sort the scalar variables of ``posterior`` (an xarray Dataset) into summary blocks."""
    idx = ParamIndex()
    for g in groups or []:
        if g.name not in idx.groups:
            idx.groups[g.name] = g
    scalar = [v for v in posterior.data_vars
              if set(posterior[v].dims) <= {"chain", "draw"}]
    # group effects r_<group>: dims (chain, draw, <group>, <group>__coef)
    known_coefs: dict[str, set[str]] = {}
    for v in posterior.data_vars:
        if name_kind(v) == "r" and posterior[v].ndim == 4:
            g = v[2:]
            idx.ranef[g] = v
            if g not in idx.groups:
                idx.groups[g] = GroupInfo(g, int(posterior[v].shape[2]))
            known_coefs[g] = {str(c) for c in posterior[v].coords[posterior[v].dims[3]].values}
    by_length = sorted(idx.groups, key=len, reverse=True)

    def find_group(rest: str) -> tuple[str, str]:
        found = split_group(rest, by_length)
        if found is not None:
            return found
        g, _, tail = rest.partition("__")
        if g not in idx.groups:
            idx.groups[g] = GroupInfo(g, 0)
            by_length.insert(0, g)
            by_length.sort(key=len, reverse=True)
        return g, tail

    def split_by_group(rest: str, g: str):
        info = idx.groups.get(g)
        return split_by(rest, info.by, info.by_levels) if info is not None \
            else (rest, None, None)

    for v in scalar:
        kind = name_kind(v)
        if kind == "b":
            idx.fixed.append(v)
        elif kind == "sd":
            g, rest = find_group(v[3:])
            coef, by_label, by_level = split_by_group(rest, g)
            idx.sd.setdefault(g, []).append(SdParam(v, g, coef, by_label, by_level))
            known_coefs.setdefault(g, set()).add(coef)
        elif kind == "cor":
            g, rest = find_group(v[4:])
            body, by_label, by_level = split_by_group(rest, g)
            if by_label:      # brms: cor_g__Intercept:hA__x:hA, the tag after each coefficient
                body = body.replace(f":{by_label}__", "__")
            c1, c2 = split_pair(body, known_coefs.get(g, set()))
            idx.cor.setdefault(g, []).append(CorParam(v, g, c1, c2, by_label, by_level))
        elif kind == "rho":
            g, text = split_rho(v)
            idx.cor.setdefault(g, []).append(CorParam(v, g, "", "", text=text))
        elif kind == "rescor":
            body, by_label = split_tag(v[len("rescor__"):])
            r1, r2 = split_pair(body, set(responses or []))
            idx.rescor.append(RescorParam(v, r1, r2, by_label))
        elif kind == "spec":
            dpar, resp, by_label = split_spec(v)
            idx.spec.append(SpecParam(v, dpar, resp, by_label))
        elif kind == "autocor":
            idx.autocor.append(v)
    # groups without any parameter (none expected) are kept: they print nothing
    return idx
