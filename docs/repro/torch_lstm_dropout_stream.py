"""nn.LSTM's dropout between layers draws its keep-mask from torch's random stream: after
torch.manual_seed(7), one torch draws these masks and another may draw others. Prints, for the
installed torch, a fingerprint of the keep-mask (float64 and float32) and whether nn.LSTM's own
train-mode forward applies exactly that mask (layer 2 run on layer 1's output times
mask / (1 - p)). Needs only torch; always exits 0. Compare the lines printed under two torch
versions: other fingerprints mean another random stream (same seed, other masks).
"""

import hashlib
import warnings

import torch

warnings.simplefilter("ignore")
P, SEED = 0.5, 7


def layer(model: torch.nn.LSTM, k: int, features: int) -> torch.nn.LSTM:
    single = torch.nn.LSTM(features, model.hidden_size, dtype=model.weight_ih_l0.dtype)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(single, f"{name}_l0").data.copy_(getattr(model, f"{name}_l{k}"))
    return single.eval()


print(f"torch {torch.__version__}")
for dtype in (torch.float64, torch.float32):
    torch.manual_seed(0)
    model = torch.nn.LSTM(2, 3, num_layers=2, dropout=P, dtype=dtype).train()
    x = torch.randn(6, 4, 2, dtype=dtype)
    with torch.no_grad():
        torch.manual_seed(SEED)
        out_train = model(x)[0]
        torch.manual_seed(SEED)
        mask = torch.empty(6, 4, 3, dtype=dtype).bernoulli_(1 - P)
        replayed = layer(model, 1, 3)(layer(model, 0, 2)(x)[0] * mask / (1 - P))[0]
    fingerprint = hashlib.sha256((mask != 0).numpy().tobytes()).hexdigest()[:12]
    applies = torch.allclose(out_train, replayed, rtol=1e-5, atol=1e-6)
    print(
        f"  {dtype}: keep-mask after manual_seed({SEED}): {fingerprint} (first row {mask[0, 0].int().tolist()}); "
        f"nn.LSTM's train-mode forward applies it: {'yes' if applies else 'NO'}"
    )
