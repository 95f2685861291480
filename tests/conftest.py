import json
from pathlib import Path

import pytest

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
