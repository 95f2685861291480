"""Command line: fit a mixed model from a CSV/Parquet file, run a bundled example, re-print a fit.

  mixedformula fit DATA "FORMULA" [options]   fit and print the brms-style summary
  mixedformula example NAME                    fit a bundled example (sleepstudy, dyestuff)
  mixedformula summary FIT.nc                  print the summary of a fit saved with --save

Errors (unreadable or malformed data, bad formula, missing column, bad prior, unknown family)
are one line on stderr starting with ``error:`` and exit code 2; an unexpected internal failure
exits with 1 and ``--debug`` shows its traceback; Ctrl-C exits with 130.

The formula is untrusted text: it only goes through :func:`mixedformula.parse`, which accepts
formula syntax from an allow-list and never evaluates Python.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import warnings
from pathlib import Path

from .errors import ConvergenceWarning, DataError, FormulaError, MixedFormulaError, PriorError

EXAMPLES = {
    "sleepstudy": ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    "dyestuff": ("dyestuff", "Yield ~ 1 + (1 | Batch)"),
}

#: longest line accepted in a CSV file (a "huge field" is refused before pandas sees it)
MAX_LINE = 1_000_000
SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "bar"}
PRIOR_KEYS = ("class", "coef", "group", "resp", "dpar")

EPILOG = textwrap.dedent("""\
    examples:
      mixedformula example sleepstudy
      mixedformula fit sleep.csv "Reaction ~ Days + (Days | Subject)" --chains 4 --seed 1
      mixedformula fit sleep.csv "Reaction ~ Days + (Days | Subject)" \\
          --prior "normal(0, 10)" class=b coef=Days --prior "exponential(0.1)" class=sd \\
          --report sleep.html --save sleep.nc
      mixedformula summary sleep.nc
      mixedformula fit counts.parquet "y ~ x + (1 | site)" --family poisson
      mixedformula fit sleep.csv "Reaction ~ Days + (Days | Subject)" --reml

    exit codes: 0 success, 2 bad input (message on stderr), 1 unexpected failure
    (rerun with --debug for the traceback), 130 interrupted.
    """)

FIT_HELP = textwrap.dedent("""\
    Fit a Bayesian mixed model and print the brms-style summary.

    DATA is a CSV file (delimiter detected from the header: comma, semicolon, tab or |;
    set it with --sep) or a Parquet file (.parquet/.pq, needs pyarrow). FORMULA is an
    lme4/brms formula, quoted for the shell, e.g.
      "Reaction ~ Days + (Days | Subject)"          correlated intercept and slope
      "y ~ x + (1 | g1/g2)"                          nested intercepts
      "y ~ x + (x || g)"                             uncorrelated intercept and slope
      "mvbind(y1, y2) ~ x + (1 | p | g)"             two responses, correlated group effects
    See docs/formula-syntax.md for every form. Put DATA and FORMULA first: --prior takes
    every word up to the next option.
    """)

PRIOR_HELP = ("a brms prior: the distribution, then key=value pairs among class, coef, group, "
              "resp, dpar, e.g. --prior \"normal(0, 5)\" class=b coef=Days or --prior "
              "\"exponential(1)\" class=sd group=Subject (class defaults to b); repeatable")


class CLIError(MixedFormulaError):
    """A problem with the command line's input (file, options)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line (and the same exit code as other input errors)."""

    def error(self, message):  # noqa: D401 - argparse API
        sys.stderr.write(f"error: {message} (see '{self.prog} --help')\n")
        sys.exit(2)


# -- reading data -------------------------------------------------------------------------------

def _scan(path: Path) -> bytes:
    """Refuse binary files and huge lines in one streaming pass; return the first line."""
    first = b""
    longest, current, line_no, long_line = 0, 0, 1, 0
    with open(path, "rb") as fh:
        head = True
        while True:
            chunk = fh.read(1 << 20)
            if not chunk:
                break
            if b"\0" in chunk:
                raise CLIError(f"{path} looks like a binary file (it contains NUL bytes), not a "
                               "CSV text file")
            parts = chunk.split(b"\n")
            if head:
                first = (first + parts[0])[: MAX_LINE + 1]
                head = len(parts) == 1
            for k, part in enumerate(parts):
                current += len(part)
                if current > longest:
                    longest, long_line = current, line_no
                if k < len(parts) - 1:
                    current = 0
                    line_no += 1
            if longest > MAX_LINE:
                raise CLIError(f"{path}: line {long_line} is longer than {MAX_LINE:,} characters "
                               "(a huge field, or not a line-oriented CSV file)")
    return first


def _detect_sep(first_line: str) -> str:
    counts = {s: first_line.count(s) for s in SEPARATORS}
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] > 0 else ","


def read_parquet_files(path: str):
    """A directory or glob of Parquet files → a Dask DataFrame (one partition per file or row
    group), read lazily: only the statistics are reduced (mixedformula/design/distributed.py)."""
    import glob as _glob
    files = sorted(_glob.glob(os.path.join(path, "*.parquet")) + _glob.glob(
        os.path.join(path, "*.pq"))) if os.path.isdir(path) else sorted(_glob.glob(path))
    where = "is a directory with" if os.path.isdir(path) else "matches"
    if not files:
        raise CLIError(f"{path!r} {where} no Parquet files (*.parquet, *.pq)")
    try:
        import dask.dataframe as dd
    except ImportError:
        raise CLIError("a directory or glob of Parquet files is read with Dask: pip install "
                       "'mixedformula[dask]'") from None
    try:
        return dd.read_parquet(files)
    except Exception as e:   # pyarrow/dask: schema mismatch, not Parquet, ...
        raise CLIError(f"{path!r} {where} {len(files)} Parquet file(s) that cannot be read: "
                       f"{_one_line(e)}") from None


def read_data(path: str, sep: str | None = None, encoding: str = "utf-8"):
    """Read a CSV or Parquet file into a pandas DataFrame with one-line errors; a directory or
    glob of Parquet files into a Dask DataFrame (:func:`read_parquet_files`)."""
    import pandas as pd
    p = Path(path)
    if p.is_dir() or (not p.exists() and any(ch in path for ch in "*?[")):
        return read_parquet_files(path)
    if not p.exists():
        raise CLIError(f"data file {path!r} does not exist")
    if not os.access(p, os.R_OK):
        raise CLIError(f"data file {path!r} is not readable (permission denied)")
    with open(p, "rb") as fh:
        magic = fh.read(4)
    if p.suffix.lower() in (".parquet", ".pq") or magic == b"PAR1":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise CLIError("reading Parquet files needs pyarrow: pip install "
                           "'mixedformula[parquet]' (or pip install pyarrow)") from None
        try:
            return pd.read_parquet(p)
        except Exception as e:   # pyarrow raises ArrowInvalid, OSError, ...
            raise CLIError(f"cannot read {path!r} as Parquet: {_one_line(e)}") from None
    if p.stat().st_size == 0:
        raise CLIError(f"data file {path!r} is empty")
    first = _scan(p)
    try:
        header = first.decode(encoding).rstrip("\r")
    except UnicodeDecodeError:
        raise CLIError(f"{path!r} is not {encoding} text; pass --encoding (e.g. --encoding "
                       "latin-1)") from None
    if sep is None:
        sep = _detect_sep(header)
    else:
        sep = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";"}.get(sep, sep)
        if sep not in header:
            others = [s for s in SEPARATORS if s != sep and s in header]
            if others:
                raise CLIError(
                    f"{path!r}: the header has no {SEPARATORS.get(sep, repr(sep))} "
                    f"separator but contains {SEPARATORS[others[0]]}s; wrong delimiter? "
                    f"Try --sep '{others[0]}' (or leave --sep out to detect it)".replace(
                        "'\t'", "tab"))
    try:
        df = pd.read_csv(p, sep=sep, encoding=encoding)
    except UnicodeDecodeError:
        raise CLIError(f"{path!r} is not {encoding} text; pass --encoding (e.g. --encoding "
                       "latin-1)") from None
    except pd.errors.EmptyDataError:
        raise CLIError(f"data file {path!r} has no columns") from None
    except (pd.errors.ParserError, ValueError) as e:
        raise CLIError(f"cannot parse {path!r} as CSV (separator "
                       f"{SEPARATORS.get(sep, repr(sep))}): {_one_line(e)}") from None
    if len(df) == 0:
        raise CLIError(f"data file {path!r} has a header but no rows")
    return df


# -- priors -------------------------------------------------------------------------------------

def parse_prior_args(items: list[list[str]]):
    """``[["normal(0,5)", "class=b", "coef=Days"], ...]`` → list of mf.prior objects."""
    from .priors import prior
    out = []
    for item in items or []:
        spec, rest = item[0], item[1:]
        kw = {}
        for tok in rest:
            key, eq, value = tok.partition("=")
            if not eq or key not in PRIOR_KEYS:
                raise PriorError(f"--prior {spec!r}: expected key=value with key one of "
                                 f"{', '.join(PRIOR_KEYS)}, got {tok!r}")
            if key in kw:
                raise PriorError(f"--prior {spec!r}: {key} is given twice")
            kw[key] = value
        out.append(prior(spec, class_=kw.pop("class", "b"), **kw))
    return out


# -- commands -----------------------------------------------------------------------------------

def _print_summary(fit, data_name: str | None = None) -> None:
    if data_name:
        fit.info["data_name"] = data_name
    print(fit.summary())


def _print_comparisons(fit, args) -> None:
    """``--comparisons x [y ...]``: the average slope / pairwise comparisons of each."""
    names = [v for group in (getattr(args, "comparisons", None) or []) for v in group]
    if names:
        from .results.marginaleffects import average_effects
        print("\nAverage slopes / comparisons (response scale):")
        print(average_effects(fit, names).to_string(index=False))


def _after_fit(fit, args) -> None:
    _print_comparisons(fit, args)
    if getattr(args, "save", None):
        from .results.io import save
        save(fit, args.save)
        print(f"\nSaved the fit to {args.save}", file=sys.stderr)
    if getattr(args, "report", None):
        from .report import write_report
        write_report(fit, args.report)
        print(f"Wrote the report to {args.report}", file=sys.stderr)


def _after_point_fit(fit, args) -> None:
    """--comparisons and --report for --reml / --ml fits (lmer / glmer)."""
    _print_comparisons(fit, args)
    if getattr(args, "report", None):
        from .report import write_report
        write_report(fit, args.report)
        print(f"Wrote the report to {args.report}", file=sys.stderr)


def _check_counts(args) -> None:
    for name in ("chains", "draws", "tune"):
        v = getattr(args, name, None)
        if v is not None and (v < 1 if name != "tune" else v < 0):
            raise CLIError(f"--{name} must be {'positive' if name != 'tune' else '>= 0'}, "
                           f"not {v}")
    ta = getattr(args, "target_accept", None)
    if ta is not None and not (0 < ta < 1):
        raise CLIError(f"--target-accept must lie between 0 and 1, not {ta}")


def _cmd_fit(args) -> int:
    from .formula import parse
    spec = parse(args.formula)                  # validate the untrusted text before anything
    _check_counts(args)
    for out in (args.save, args.report):
        if out:
            d = os.path.dirname(os.path.abspath(out))
            if not os.path.isdir(d):
                raise CLIError(f"cannot write {out!r}: the directory {d!r} does not exist")
    data = read_data(args.data, args.sep, args.encoding)
    priors = parse_prior_args(args.prior)
    _check_formula_columns(spec, data, args.data)
    from .design.distributed import is_dask_frame
    if is_dask_frame(data) and args.report:
        raise CLIError("--report plots fitted values and pp_check, which need the rows in "
                       "memory; a directory or glob of Parquet files is fitted from sufficient "
                       "statistics only (--save works)")
    if args.reml or args.ml:
        if args.save:
            raise CLIError("--save stores Bayesian fits (netCDF of the draws); --reml/--ml "
                           "point estimates cannot be saved yet: use --report for a record")
        if is_dask_frame(data):
            raise CLIError("--reml/--ml need the rows in memory; a directory or glob of "
                           "Parquet files is fitted from sufficient statistics (Bayesian, "
                           "marginal engine) only")
        try:
            from .reml import lmer
        except ImportError:
            raise CLIError("--reml needs mixedformula.reml, which this installation does not "
                           "have yet") from None
        from .engine import reml_family_refusal
        from .families import get_family
        why = reml_family_refusal(get_family(args.family, args.link))
        if why:
            if args.reml:
                raise CLIError(f"--reml: {why}; use --ml for maximum likelihood of other "
                               "families (lme4's glmer)")
            if args.ddf is not None:
                raise CLIError("--ddf applies to lmer fits (Gaussian, identity link); glmer "
                               "reports Wald z tests")
            from .glmm import glmer
            fit = glmer(spec, data, family=args.family, link=args.link,
                        data_name=Path(args.data).name)
            print(fit)
            _after_point_fit(fit, args)
            return 0
        fit = lmer(spec, data, reml=not args.ml, data_name=Path(args.data).name)
        try:
            text = fit.summary(ddf=args.ddf)
        except ValueError as e:          # e.g. Kenward-Roger on an ML fit
            raise CLIError(str(e)) from None
        print(text)
        _after_point_fit(fit, args)
        return 0
    if args.ddf is not None:
        raise CLIError("--ddf applies to --reml/--ml point estimates (lmerTest's t-tests)")
    from .model import Model
    model = Model(spec, data, family=args.family, priors=priors, likelihood=args.likelihood,
                  link=args.link, rescor_by=args.rescor_by,
                  parametrization=args.parametrization)
    fit = model.fit(draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed,
                    sampler=args.sampler, target_accept=args.target_accept,
                    progressbar=False if args.quiet else None)
    if not is_dask_frame(data) and fit.data is None:
        # the fit keeps the data the model was built on (categorical / ordinal families: the
        # response recoded to 1..K); the file's raw strings would not rebuild on mf.load
        fit.data = data
    if args.rescor_by:
        fit.info.setdefault("rescor_by", args.rescor_by)
    _print_summary(fit, Path(args.data).name)
    _after_fit(fit, args)
    return 0


def _check_formula_columns(spec, data, path: str) -> None:
    """A missing column, with the columns the file has and a delimiter hint."""
    cols = [str(c) for c in data.columns]
    missing = [v for v in spec.variables if v not in cols]
    if not missing:
        return
    import difflib
    name = missing[0]
    close = difflib.get_close_matches(name, cols, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    shown = ", ".join(cols[:12]) + (f", ... ({len(cols)} columns)" if len(cols) > 12 else "")
    msg = f"column {name!r} is not in {Path(path).name}{hint} (columns: {shown})"
    if len(cols) == 1 and any(s in cols[0] for s in SEPARATORS):
        msg += "; the file was read as one column: wrong delimiter? use --sep"
    raise DataError(msg)


def _cmd_example(args) -> int:
    from . import datasets
    from .model import fit
    _check_counts(args)
    data_name, formula = EXAMPLES[args.name]
    result = fit(formula, datasets.load(data_name), seed=args.seed, draws=args.draws,
                 tune=args.tune, chains=args.chains, sampler=args.sampler,
                 target_accept=args.target_accept, progressbar=False if args.quiet else None)
    result.data = datasets.load(data_name)
    _print_summary(result, data_name)
    _after_fit(result, args)
    return 0


def _cmd_summary(args) -> int:
    from .results.io import load
    p = Path(args.fit)
    if not p.exists():
        raise CLIError(f"fit file {args.fit!r} does not exist")
    if p.is_dir():
        raise CLIError(f"{args.fit!r} is a directory, not a fit file")
    fit = load(args.fit)
    print(fit.summary(prob=args.prob))
    if args.report:
        from .report import write_report
        write_report(fit, args.report)
        print(f"Wrote the report to {args.report}", file=sys.stderr)
    return 0


# -- parser -------------------------------------------------------------------------------------

def _sampling_options(p) -> None:
    g = p.add_argument_group("sampling")
    g.add_argument("--chains", type=int, default=4, help="Markov chains (default 4)")
    g.add_argument("--draws", type=int, default=1000,
                   help="draws per chain after warmup (default 1000)")
    g.add_argument("--tune", type=int, default=1000, help="warmup draws per chain (default 1000)")
    g.add_argument("--seed", type=int, default=1, help="random seed (default 1; same seed, "
                   "same draws)")
    g.add_argument("--sampler", choices=("auto", "nutpie", "pymc", "numpyro", "blackjax"),
                   default="auto", help="NUTS implementation (auto: nutpie if installed; "
                   "numpyro/blackjax: JAX, chains vectorised, GPU if jax has one; needs the "
                   "jax extra)")
    g.add_argument("--target-accept", type=float, default=None,
                   help="NUTS target acceptance (default 0.8; raise to 0.95 on divergences)")
    g.add_argument("--quiet", action="store_true",
                   help="no progress on stderr (phase lines, sampler progress bar)")


def _output_options(p) -> None:
    g = p.add_argument_group("output")
    g.add_argument("--report", metavar="OUT.html",
                   help="write a self-contained HTML report (tables, diagnostics, plots)")
    g.add_argument("--comparisons", nargs="+", action="append", metavar="VARIABLE",
                   help="print the average slope (numeric) or pairwise comparisons (factor) "
                        "of these predictors, marginaleffects-style")
    g.add_argument("--save", metavar="FIT.nc",
                   help="save the fit (netCDF) for 'mixedformula summary' or mf.load()")


def build_parser() -> argparse.ArgumentParser:
    from .families import family_names
    parser = _Parser(prog="mixedformula", description=__doc__.split("\n\n")[0],
                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)

    f = sub.add_parser("fit", help="fit a model to a CSV/Parquet file and print the summary",
                       description=FIT_HELP, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    f.add_argument("data", metavar="DATA", help="CSV or Parquet file, or a directory or "
                   "glob of Parquet files (read with Dask; Gaussian models)")
    f.add_argument("formula", metavar="FORMULA", help='lme4/brms formula, e.g. '
                   '"Reaction ~ Days + (Days | Subject)"; distributional regression as brms '
                   'writes it: "bf(y ~ x + (1 | g), sigma ~ x + (1 | g))"')
    m = f.add_argument_group("model")
    m.add_argument("--family", default="gaussian",
                   help=f"response family: {', '.join(family_names())} (default gaussian)")
    m.add_argument("--link", default=None, help="link function (default: the family's)")
    m.add_argument("--prior", nargs="+", action="append", metavar="SPEC", help=PRIOR_HELP)
    m.add_argument("--likelihood", choices=("auto", "marginal", "conditional", "partial"),
                   default="auto",
                   help="conditional: group effects sampled (any family); marginal: integrated "
                   "out (Gaussian) and drawn exactly afterwards; partial: the largest "
                   "grouping factor integrated out, the rest sampled; auto: marginal where it "
                   "applies (see docs/engines.md)")
    m.add_argument("--parametrization", choices=("auto", "centred", "noncentred"),
                   default="auto",
                   help="conditional engine: group effects sampled non-centred (z ~ N(0, I)) or "
                   "centred around the fixed effects; auto: centred where every level's data "
                   "are informative (see docs/engines.md)")
    m.add_argument("--rescor-by", metavar="COLUMN", default=None,
                   help="multivariate models: one residual covariance per level of COLUMN")
    m.add_argument("--reml", action="store_true",
                   help="print REML point estimates (lme4's lmer) instead of sampling")
    m.add_argument("--ml", action="store_true",
                   help="print maximum-likelihood point estimates (lmer(REML = FALSE); with "
                        "--family other than gaussian: glmer, Laplace approximation)")
    m.add_argument("--ddf", choices=("satterthwaite", "kenward-roger", "none"), default=None,
                   help="with --reml/--ml: fixed effects with df and p-values like lmerTest "
                        "(Kenward-Roger needs --reml)")
    d = f.add_argument_group("data file")
    d.add_argument("--sep", default=None,
                   help="CSV delimiter (default: detected from the header)")
    d.add_argument("--encoding", default="utf-8", help="text encoding (default utf-8)")
    _sampling_options(f)
    _output_options(f)
    f.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    f.set_defaults(func=_cmd_fit)

    ex = sub.add_parser("example", help="fit a bundled example and print its summary",
                        description="Fit a bundled example data set: " + "; ".join(
                            f"{k}: {v[1]}" for k, v in EXAMPLES.items()))
    ex.add_argument("name", choices=sorted(EXAMPLES), metavar="NAME",
                    help=f"one of {', '.join(sorted(EXAMPLES))}")
    _sampling_options(ex)
    _output_options(ex)
    ex.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    ex.set_defaults(func=_cmd_example)

    s = sub.add_parser("summary", help="print the summary of a fit saved with --save",
                       description="Print the brms-style summary of a saved fit "
                       "(mixedformula fit ... --save fit.nc).")
    s.add_argument("fit", metavar="FIT.nc", help="file written by --save or mf.save()")
    s.add_argument("--prob", type=float, default=0.95, help="interval probability (0.95)")
    s.add_argument("--report", metavar="OUT.html", help="also write the HTML report")
    s.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    s.set_defaults(func=_cmd_summary)
    return parser


def _version() -> str:
    from . import __version__
    return f"mixedformula {__version__}"


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 400 else text[:397] + "..."


def _message(e: MixedFormulaError) -> str:
    if isinstance(e, FormulaError) and e.formula is not None and e.start is not None:
        start = max(0, min(e.start, len(e.formula)))
        end = e.end if e.end is not None and e.end > start else start + 1
        snippet = e.formula[start:end]
        snippet = snippet if len(snippet) <= 40 else snippet[:37] + "..."
        where = f" (at character {start + 1}" + (f": {snippet!r})" if snippet else ")")
        return f"bad formula: {_one_line(e.message)}{where}"
    if isinstance(e, FormulaError):
        return f"bad formula: {_one_line(e)}"
    if isinstance(e, PriorError):
        return f"bad prior: {_one_line(e)}"
    return _one_line(e)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Our warnings as one line on stderr (``warning: ...``); others as Python shows them."""
    if issubclass(category, ConvergenceWarning):
        print("warning: " + " ".join(str(message).split()), file=sys.stderr)
    else:
        _SHOW_WARNING(message, category, filename, lineno, file, line)


_SHOW_WARNING = warnings.showwarning


def main(argv=None) -> int:
    warnings.showwarning = _show_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:                  # output piped into head & co: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except NotImplementedError as e:
        if debug:
            raise
        print(f"error: not supported: {_one_line(e)}", file=sys.stderr)
        return 2
    except MixedFormulaError as e:
        if debug:
            raise
        print(f"error: {_message(e)}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:       # files, and problems raised by pandas/formulaic
        if debug:
            raise
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:
        if debug:
            raise
        print(f"error: unexpected {type(e).__name__}: {_one_line(e)} (rerun with --debug "
              "for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
