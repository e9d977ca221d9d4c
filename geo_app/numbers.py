"""What counts as a number in text a user gives: one rule for every reader of numbers.

The entity import (coordinates), the indicator import (values) and the OGC API (``bbox``)
accept the same plain decimal notation and nothing else: ASCII digits, an optional sign,
point and exponent. ``float()`` alone would also read ``nan``, ``inf``, ``1_000``, ``' 1'``
and digits of other scripts (``'١٢'``); callers normalise full-width digits first
(:func:`geo_app.ingest.normalise`).
"""

from __future__ import annotations

import re

__all__ = ["DECIMAL", "is_decimal"]

#: A plain decimal number: ``12``, ``-0.5``, ``.5``, ``3.``, ``1e-3`` (ASCII digits only).
DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def is_decimal(text: str) -> bool:
    """Whether ``text`` is, as a whole, a plain decimal number (see :data:`DECIMAL`).

    A match may still overflow to infinity (``1e999``): check ``math.isfinite`` after
    ``float()``.

    >>> [is_decimal(s) for s in ("120.585", "-.5", "1e3", "nan", "1_000", "１２", " 1")]
    [True, True, True, False, False, False, False]
    """
    return DECIMAL.fullmatch(text) is not None
