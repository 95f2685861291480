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
