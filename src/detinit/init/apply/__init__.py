"""Apply a scheme to a model: :func:`initialize` (plan -> resolve -> execute -> report); the one place that
decides a parameter's rule is :func:`detinit.init.apply.resolve.resolve`."""

from .initialize import initialize
from .report import InitReport, ParamRecord

__all__ = ["InitReport", "ParamRecord", "initialize"]
