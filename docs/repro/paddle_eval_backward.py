"""paddle.nn.LSTM has no backward pass in eval mode.

torch.nn.LSTM differentiates in eval mode as in training mode. paddle.nn.LSTM (CPU, its fused
rnn kernel) runs forward in eval mode, but backward raises "RuntimeError: (PreconditionNotMet)
Tensor holds no memory. Call Tensor::mutable_data firstly.": in eval mode (is_test) the kernel
keeps none of what its gradient needs. The same call in training mode differentiates (with
dropout 0 the two modes compute the same forward). Exits 1 while eval mode has no backward.
"""

import sys
import warnings

import paddle

warnings.simplefilter("ignore")
failed = False
for mode in ("train", "eval"):
    paddle.seed(0)
    lstm = paddle.nn.LSTM(3, 4, time_major=True)
    lstm.train() if mode == "train" else lstm.eval()
    x = paddle.randn([5, 2, 3])
    x.stop_gradient = False
    out, (h, c) = lstm(x)
    try:
        (grad,) = paddle.grad([out.sum()], [x, *lstm.parameters()], allow_unused=True)[:1]
        print(f"{mode}: gradient of the input, shape {grad.shape}, sum {float(grad.sum()):.4f}")
    except (RuntimeError, ValueError) as exc:
        failed = True
        print(f"{mode}: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}")
sys.exit(1 if failed else 0)
