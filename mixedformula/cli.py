"""Command line: ``mixedformula example NAME`` (more verbs land with the report/CLI work)."""

from __future__ import annotations

import argparse
import sys

from .errors import MixedFormulaError

EXAMPLES = {
    "sleepstudy": ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    "dyestuff": ("dyestuff", "Yield ~ 1 + (1 | Batch)"),
}


def _example(args) -> int:
    from . import datasets
    from .model import fit
    data_name, formula = EXAMPLES[args.name]
    result = fit(formula, datasets.load(data_name), seed=args.seed)
    print(result.summary())
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="mixedformula", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("example", help="run a bundled example")
    ex.add_argument("name", choices=sorted(EXAMPLES))
    ex.add_argument("--seed", type=int, default=1)
    ex.set_defaults(func=_example)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except MixedFormulaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
