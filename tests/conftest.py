import json
import os
import sys
from pathlib import Path

import pytest


def _per_worker_compiledir():
    """Each pytest-xdist worker compiles into its own PyTensor compiledir.

    PyTensor holds one file lock on its compiledir while gcc compiles a module, so two
    workers sharing a compiledir wait for each other's compiles: with empty caches (CI)
    most of the suite's time is gcc, and the workers serialised on the lock (measured:
    see the commit message).  A directory per worker lets both compile at once, at the
    price of compiling the ops both workers need twice.  Must run before pytensor is
    imported (pytensor reads PYTENSOR_FLAGS once, at import); an explicit
    compiledir/compiledir_format in PYTENSOR_FLAGS is left alone."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if not worker or "pytensor" in sys.modules or any(
            part.split("=")[0].strip() in ("compiledir", "compiledir_format")
            for part in flags.split(",")):
        return
    fmt = ("compiledir_format=compiledir_%(short_platform)s-%(processor)s-"
           f"%(python_version)s-%(python_bitwidth)s-{worker}")
    os.environ["PYTENSOR_FLAGS"] = f"{flags},{fmt}" if flags else fmt


_per_worker_compiledir()

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def lme4_ref():
    return json.loads((DATA / "lme4_reference.json").read_text())


@pytest.fixture(scope="session")
def brms_ref():
    return json.loads((DATA / "brms_sleepstudy.json").read_text())


@pytest.fixture(scope="session")
def sleepstudy():
    from mixedformula import datasets
    return datasets.load("sleepstudy")


@pytest.fixture(scope="session")
def dyestuff():
    from mixedformula import datasets
    return datasets.load("dyestuff")


@pytest.fixture(scope="session")
def sleep_conditional(sleepstudy):
    """Reaction ~ Days + (Days | Subject), conditional engine, brms' draws (4 × 1000 + 1000)."""
    import mixedformula as mf
    return mf.fit("Reaction ~ Days + (Days | Subject)", sleepstudy, likelihood="conditional",
                  draws=1000, tune=1000, chains=4, seed=1)


@pytest.fixture(scope="session")
def sleep_marginal(sleepstudy):
    """The same model with the default engine (marginal for Gaussian models)."""
    import mixedformula as mf
    return mf.fit("Reaction ~ Days + (Days | Subject)", sleepstudy, draws=1000, tune=1000,
                  chains=4, seed=1)
