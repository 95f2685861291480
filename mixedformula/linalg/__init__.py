"""Small numerical kernels shared by the engines (no pandas, no PyMC here).

* :mod:`.lambda_factor` — the relative covariance factor Λ(θ) of lme4 and its θ layout.
* :mod:`.penalized` — blocked Cholesky of ΛᵀZᵀZΛ + I and the profiled (RE)ML deviance.
"""

from .lambda_factor import LambdaFactor, TermLayout
from .penalized import PenalizedLS, PLSFactor

__all__ = ["LambdaFactor", "PLSFactor", "PenalizedLS", "TermLayout"]
