"""Every tolerance the project uses, in one place (documented in the README).

A comparison passes where ``|actual - expected| <= atol + rtol * |expected|``
elementwise, as ``torch.testing.assert_close``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float


# Forward values (output, h_n, c_n, gates) against torch or a torch-made fixture.
FORWARD = {
    # float32: torch.testing.assert_close's defaults; torch itself runs oneDNN here.
    "float32": Tolerance(rtol=1.3e-6, atol=1e-5),
    "complex64": Tolerance(rtol=1.3e-6, atol=1e-5),
    # 64-bit: both sides compute the same formulas; only summation order differs.
    "float64": Tolerance(rtol=1e-12, atol=1e-12),
    "complex128": Tolerance(rtol=1e-11, atol=1e-12),
}


def forward_tolerance(dtype: object) -> Tolerance:
    return FORWARD[np.dtype(dtype).name]  # type: ignore[arg-type]
