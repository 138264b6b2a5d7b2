"""hk.LSTM adds a fixed 1 to the forget gate's pre-activation in every call (`f = sigmoid(f + 1)`,
"Forget bias, as in sonnet"), and orders its gate blocks i, g, f, o. Weights copied from a
torch.nn.LSTM with only the gate order converted give another model; with 1 taken off the
forget bias, Haiku matches torch. Prints both errors; exits 1 while the fixed 1 is there."""

import sys

import haiku as hk
import jax

jax.config.update("jax_enable_x64", True)
import numpy as np  # noqa: E402
import torch  # noqa: E402

H, F, L, N = 4, 3, 6, 2
torch.manual_seed(0)
m = torch.nn.LSTM(F, H, dtype=torch.float64)
x = np.random.default_rng(0).standard_normal((L, N, F))
want = m(torch.from_numpy(x))[0].detach().numpy()
sd = {k: v.detach().numpy() for k, v in m.state_dict().items()}
i, f, g, o = (np.arange(H) + k * H for k in range(4))
order = np.concatenate([i, g, f, o])  # torch's rows in Haiku's gate order


def haiku_output(bias):
    def unroll(x):
        core = hk.LSTM(H)
        return hk.dynamic_unroll(core, x, core.initial_state(N))[0]

    w = np.concatenate([sd["weight_ih_l0"], sd["weight_hh_l0"]], axis=1)[order].T
    params = {"lstm/linear": {"w": w, "b": bias[order]}}
    return np.asarray(hk.without_apply_rng(hk.transform(unroll)).apply(params, x))


bias = sd["bias_ih_l0"] + sd["bias_hh_l0"]
forget_one = np.zeros(4 * H)
forget_one[f] = 1
as_is = np.abs(haiku_output(bias) - want).max()
undone = np.abs(haiku_output(bias - forget_one) - want).max()
print(f"max |haiku - torch|, torch's bias as is:            {as_is:.3e}")
print(f"max |haiku - torch|, 1 taken off the forget bias:    {undone:.3e}")
sys.exit(1 if as_is > 1e-6 and undone < 1e-12 else 0)
