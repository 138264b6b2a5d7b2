"""A complex nn.LSTM with dropout between layers, called in training mode: torch has no complex
dropout. Prints, for the installed torch, the exception type of that call (complex128 and
complex64). Needs only torch; always exits 0.
"""

import warnings

import torch

warnings.simplefilter("ignore")
print(f"torch {torch.__version__}")
for dtype in (torch.complex128, torch.complex64):
    model = torch.nn.LSTM(3, 4, num_layers=2, dropout=0.3, dtype=dtype).train()
    try:
        model(torch.zeros(5, 2, 3, dtype=dtype))
        said = "returns values"
    except Exception as exc:
        said = f"raises {type(exc).__name__}"
    print(f"  nn.LSTM(num_layers=2, dropout=0.3, dtype={dtype}).train()(x): {said}")
