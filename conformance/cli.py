"""`lstm-conformance`: placeholder until the suite lands: compares lstm_ref with live torch."""

from __future__ import annotations

import sys

import numpy as np


def main(argv: list[str] | None = None) -> int:
    import torch

    import lstm_ref

    torch.manual_seed(0)
    worst = 0.0
    for kwargs in [{}, {"num_layers": 2, "bidirectional": True}, {"proj_size": 3, "batch_first": True}]:
        reference = torch.nn.LSTM(5, 6, dtype=torch.float64, **kwargs)
        model = lstm_ref.LSTM.from_torch(reference)
        x = torch.randn(7, 4, 5, dtype=torch.float64)
        expected, _ = reference(x)
        actual, _ = model(x.numpy())
        err = float(np.abs(actual - expected.detach().numpy()).max())
        worst = max(worst, err)
        print(f"{kwargs!s:45} max abs error {err:.2e}")
    return 0 if worst < 1e-12 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
