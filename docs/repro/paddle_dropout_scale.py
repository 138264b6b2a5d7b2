"""paddle.nn.LSTM in float64 scales the values its dropout keeps by 1/(1-p) with p rounded to
float32.

Between layers, torch keeps each value with probability 1-p and multiplies it by 1/(1-p),
computed in the tensor's dtype. In float64 with p=0.3, paddle.nn.LSTM (CPU, its fused rnn
kernel, whose dropout probability is a float32 attribute) multiplies by 1.4285714528998554 =
1/(1-float32(0.3)) in float64, instead of 1.4285714285714286: a relative error of 1.7e-8 where
float64 rounding is 1e-16 (not float32's own 1/(1-p) either, 1.4285714626312256). To read the second layer's input,
the second layer is made invertible: no recurrence (weight_hh = 0), input and output gates
saturated open and the forget gate shut (biases +-40: sigmoid is exactly 1 or below 1e-17
in float64), the cell input g the identity, so h = tanh(tanh(x)). Exits 1 while the scale is
not float64's.
"""

import sys
import warnings

import numpy as np
import paddle

warnings.simplefilter("ignore")
paddle.set_default_dtype("float64")
paddle.seed(0)
H, p = 4, 0.3
lstm = paddle.nn.LSTM(3, H, num_layers=2, dropout=p, time_major=True)
cell = lstm[1].cell  # layer 1: paddle's gate order is i, f, g, o, as torch's
weight_ih = np.zeros((4 * H, H))
weight_ih[2 * H : 3 * H] = np.eye(H)
bias = np.concatenate([np.full(H, 40.0), np.full(H, -40.0), np.zeros(H), np.full(H, 40.0)])
cell.weight_ih.set_value(weight_ih)
cell.weight_hh.set_value(np.zeros((4 * H, H)))
cell.bias_ih.set_value(bias)
cell.bias_hh.set_value(np.zeros(4 * H))

x = paddle.to_tensor(np.random.default_rng(0).uniform(-1, 1, (50, 8, 3)))
lstm.eval()
kept_eval = np.arctanh(np.arctanh(lstm(x)[0].numpy()))  # layer 1's input: layer 0's output
lstm.train()
kept_train = np.arctanh(np.arctanh(lstm(x)[0].numpy()))  # the same after dropout
ratio = kept_train / kept_eval  # 0 where dropped (up to 1e-17: the shut forget gate), else the scale
kept = ratio > 0.5
scale = ratio[kept]
exact, single = 1 / (1 - p), float(np.float32(1) / (np.float32(1) - np.float32(p)))
p32 = 1 / (1 - float(np.float32(p)))
print(f"paddle {paddle.__version__}: dropped {1 - kept.mean():.3f} of layer 1's inputs (p={p})")
print(f"kept values scaled by {np.median(scale)!r} (spread {scale.max() - scale.min():.1e})")
print(f"1/(1-p) in float64: {exact!r}; in float32: {single!r}; in float64 from float32(p): {p32!r}")
sys.exit(1 if abs(np.median(scale) - exact) > 1e-12 else 0)
