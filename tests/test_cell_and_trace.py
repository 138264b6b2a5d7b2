"""LSTMCell vs torch.nn.LSTMCell; trace internals vs torch stepping; parameters, init and repr."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from lstm_test_utils import DTYPES, assert_close, random_array, to_numpy, torch_dtype

import lstm_ref
from lstm_ref.layout import param_suffix

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = [
    pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN"),
    pytest.mark.filterwarnings("ignore:Complex modules are a new feature"),
]

IN, H, PROJ, L, N = 3, 5, 2, 6, 4

# --- LSTMCell -------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["batched", "unbatched", "no-hx", "no-hx-unbatched", "batch0"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cell_matches_torch(dtype: str, bias: bool, form: str) -> None:
    torch.manual_seed(0)
    cell = torch.nn.LSTMCell(IN, H, bias=bias, dtype=torch_dtype(dtype))
    ref = lstm_ref.LSTMCell.from_torch(cell)
    rng = np.random.default_rng(0)
    batch = {"batch0": (0,), "unbatched": (), "no-hx-unbatched": ()}.get(form, (N,))
    x = random_array(rng, (*batch, IN), dtype)
    hx = None if form.startswith("no-hx") else tuple(random_array(rng, (*batch, H), dtype) for _ in range(2))
    with torch.no_grad():
        t_h, t_c = cell(torch.from_numpy(x), None if hx is None else tuple(map(torch.from_numpy, hx)))
    h, c = ref(x, hx)
    assert_close(h, t_h, what="h")
    assert_close(c, t_c, what="c")


def test_cell_steps_like_a_one_layer_lstm() -> None:
    """Stepping lstm_ref.LSTMCell with an LSTM's layer-0 weights gives torch.nn.LSTM's output."""
    torch.manual_seed(1)
    lstm = torch.nn.LSTM(IN, H, dtype=torch.float64)
    sd = {k.removesuffix("_l0"): to_numpy(v) for k, v in lstm.state_dict().items()}
    cell = lstm_ref.LSTMCell(IN, H, dtype=np.float64)
    cell.load_state_dict(sd)
    x = random_array(np.random.default_rng(1), (L, N, IN), "float64")
    with torch.no_grad():
        expected, _ = lstm(torch.from_numpy(x))
    h = c = np.zeros((N, H))
    outs = []
    for t in range(L):
        h, c = cell(x[t], (h, c))
        outs.append(h)
    assert_close(np.stack(outs), expected)


# --- trace -----------------------------------------------------------------------------------

TRACE_CASES = [
    pytest.param(dtype, bidir, proj, form, id=f"{dtype}-{'bidir' if bidir else 'uni'}-proj{proj}-{form}")
    for dtype, bidir, proj, form in itertools.product(
        ["float32", "float64", "complex128"],
        [False, True],
        [0, PROJ],
        ["batched", "batch_first", "unbatched"],
    )
]


def _model(
    dtype: str, bidir: bool, proj: int, batch_first: bool, num_layers: int = 2, bias: bool = True
) -> Any:
    torch.manual_seed(2)
    return torch.nn.LSTM(
        IN,
        H,
        num_layers,
        bias=bias,
        batch_first=batch_first,
        bidirectional=bidir,
        proj_size=proj,
        dtype=torch_dtype(dtype),
    ).eval()


def _input(dtype: str, form: str, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = {"batched": (L, N, IN), "batch_first": (N, L, IN), "unbatched": (L, IN)}[form]
    return random_array(rng, shape, dtype)


def torch_steps(x: Any, h0: Any, c0: Any, sd: dict[str, Any], suffix: str, reverse: bool) -> dict[str, Any]:
    """One direction of one layer in plain torch ops, cross-checked step by step against
    torch.nn.LSTMCell when there is no projection.  x: (T, N, F) time-major torch tensor."""
    w_ih, w_hh, w_hr = sd[f"weight_ih{suffix}"], sd[f"weight_hh{suffix}"], sd.get(f"weight_hr{suffix}")
    b_ih, b_hh = sd.get(f"bias_ih{suffix}"), sd.get(f"bias_hh{suffix}")
    cell = None
    if w_hr is None:
        cell = torch.nn.LSTMCell(w_ih.shape[1], w_hh.shape[1], bias=b_ih is not None, dtype=w_ih.dtype)
        cell.load_state_dict(
            {
                k: v
                for k, v in {"weight_ih": w_ih, "weight_hh": w_hh, "bias_ih": b_ih, "bias_hh": b_hh}.items()
                if v is not None
            }
        )
    records: dict[str, list[Any]] = {k: [None] * x.shape[0] for k in ("i", "f", "g", "o", "c", "h_cell", "h")}
    h, c = h0, c0
    for t in reversed(range(x.shape[0])) if reverse else range(x.shape[0]):
        gates = F.linear(x[t], w_ih, b_ih) + F.linear(h, w_hh, b_hh)
        i, f, g, o = gates.chunk(4, dim=-1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        if cell is not None:
            cell_h, cell_c = cell(x[t], (h, c))
        c = f * c + i * g
        h_cell = o * torch.tanh(c)
        h = h_cell if w_hr is None else F.linear(h_cell, w_hr)
        if cell is not None:
            torch.testing.assert_close(cell_h, h)
            torch.testing.assert_close(cell_c, c)
            h, c = cell_h, cell_c  # torch.nn.LSTMCell is the oracle for the states
        for name, value in zip(records, (i, f, g, o, c, h_cell, h), strict=True):
            records[name][t] = value
    return {k: torch.stack(v) for k, v in records.items()}


@pytest.mark.parametrize(("dtype", "bidir", "proj", "form"), TRACE_CASES)
def test_trace_internals_match_torch_stepping(dtype: str, bidir: bool, proj: int, form: str) -> None:
    module = _model(dtype, bidir, proj, form == "batch_first")
    ref = lstm_ref.LSTM.from_torch(module)
    x = _input(dtype, form)
    rng = np.random.default_rng(4)
    d, h_out = (2 if bidir else 1), proj or H
    batch = () if form == "unbatched" else (N,)
    hx = (random_array(rng, (2 * d, *batch, h_out), dtype), random_array(rng, (2 * d, *batch, H), dtype))
    tr = lstm_ref.trace(ref, x, hx)

    # the same results as a plain call, exactly
    out, (h_n, c_n) = ref(x, hx)
    assert np.array_equal(tr.output, out) and np.array_equal(tr.h_n, h_n) and np.array_equal(tr.c_n, c_n)

    # independent oracle: torch ops / torch.nn.LSTMCell, one step at a time, time-major
    sd = dict(module.state_dict())
    layer_input = torch.from_numpy(np.swapaxes(x, 0, 1) if form == "batch_first" else x)
    t_hx = tuple(torch.from_numpy(s) for s in hx)
    if form == "unbatched":
        layer_input, t_hx = layer_input[:, None], tuple(s[:, None] for s in t_hx)
    with torch.no_grad():
        for layer in range(2):
            outputs = []
            for direction in range(d):
                state = layer * d + direction
                suffix = param_suffix(layer, direction)
                expected = torch_steps(
                    layer_input, t_hx[0][state], t_hx[1][state], sd, suffix, reverse=direction == 1
                )
                actual = tr.at(layer, direction)
                assert (actual.layer, actual.direction) == (layer, direction)
                for name, value in expected.items():
                    value = value[:, 0] if form == "unbatched" else value
                    assert_close(getattr(actual, name), value, what=f"layer {layer} dir {direction} {name}")
                outputs.append(expected["h"])
            layer_input = torch.cat(outputs, dim=-1)  # torch's layer output feeds the next layer
            # trace.layer_outputs is that output (before dropout), time-major
            assert_close(tr.layer_outputs[layer], layer_input[:, 0] if form == "unbatched" else layer_input)


def test_trace_equals_call_with_packed_input_and_dropout_masks() -> None:
    torch.manual_seed(5)
    module = torch.nn.LSTM(IN, H, 3, bidirectional=True, proj_size=PROJ, dropout=0.5, dtype=torch.float64)
    ref = lstm_ref.LSTM.from_torch(module)
    lengths = [3, 6, 1, 4]
    x = random_array(np.random.default_rng(6), (6, 4, IN), "float64")
    packed = lstm_ref.pack_padded_sequence(x, lengths, enforce_sorted=False)
    masks = [np.random.default_rng(k).random((sum(lengths), 2 * PROJ)) < 0.5 for k in range(2)]
    tr = lstm_ref.trace(ref, packed, dropout_masks=masks)
    out, (h_n, c_n) = ref(packed, dropout_masks=masks)
    assert np.array_equal(tr.output.data, out.data)
    assert np.array_equal(tr.h_n, h_n) and np.array_equal(tr.c_n, c_n)
    assert tr.at(2, 1).h.shape == (sum(lengths), PROJ)
    assert tr.at(2, 1).c.shape == (sum(lengths), H)
    # the last layer's trace h is the output, in packed row order
    np.testing.assert_array_equal(np.concatenate([tr.at(2, 0).h, tr.at(2, 1).h], axis=1), out.data)


# --- parameters ------------------------------------------------------------------------------

PARAM_CONFIGS = [
    pytest.param(
        dict(num_layers=nl, bidirectional=bd, proj_size=pj, bias=b),
        id=f"nl{nl}-{'bidir' if bd else 'uni'}-proj{pj}-{'bias' if b else 'nobias'}",
    )
    for nl, bd, pj, b in itertools.product([1, 2, 3], [False, True], [0, PROJ], [True, False])
]


@pytest.mark.parametrize("dtype", ["float32", "complex128"])
@pytest.mark.parametrize("config", PARAM_CONFIGS)
def test_state_dict_names_order_shapes_like_torch(config: dict[str, Any], dtype: str) -> None:
    t = torch.nn.LSTM(IN, H, dtype=torch_dtype(dtype), **config)
    r = lstm_ref.LSTM(IN, H, dtype=dtype, **config)
    t_sd, r_sd = t.state_dict(), r.state_dict()
    assert list(r_sd) == list(t_sd)
    assert [name for name, _ in r.named_parameters()] == [name for name, _ in t.named_parameters()]
    for name, value in t_sd.items():
        assert r_sd[name].shape == tuple(value.shape), name
        assert r_sd[name].dtype == np.dtype(dtype), name


@pytest.mark.parametrize("bias", [True, False])
def test_cell_state_dict_like_torch(bias: bool) -> None:
    t, r = torch.nn.LSTMCell(IN, H, bias=bias), lstm_ref.LSTMCell(IN, H, bias=bias)
    assert [(k, tuple(v.shape)) for k, v in t.state_dict().items()] == [
        (k, v.shape) for k, v in r.state_dict().items()
    ]


def _bad_state_dicts(sd: dict[str, Any]) -> dict[str, tuple[dict[str, Any], str]]:
    first = next(iter(sd))
    return {
        "missing": (
            {k: v for k, v in sd.items() if k != "bias_hh_l0"},
            'Missing key(s) in state_dict: "bias_hh_l0"',
        ),
        "unexpected": ({**sd, "weight_xx_l0": sd[first]}, 'Unexpected key(s) in state_dict: "weight_xx_l0"'),
        "misshaped": ({**sd, "weight_hh_l0": sd["weight_hh_l0"][:, :-1]}, "size mismatch for weight_hh_l0"),
        "other-layer-count": ({k.replace("_l0", "_l1"): v for k, v in sd.items()}, "Missing key(s)"),
    }


@pytest.mark.parametrize("problem", ["missing", "unexpected", "misshaped", "other-layer-count"])
def test_load_state_dict_errors_like_torch(problem: str) -> None:
    t = torch.nn.LSTM(IN, H, dtype=torch.float64)
    r = lstm_ref.LSTM(IN, H, dtype=np.float64)
    t_bad, fragment = _bad_state_dicts(dict(t.state_dict()))[problem]
    r_bad = {k: to_numpy(v) for k, v in t_bad.items()}
    with pytest.raises(Exception) as t_err:  # torch is the oracle for the type
        t.load_state_dict(t_bad)
    before = r.state_dict()
    with pytest.raises(type(t_err.value)) as r_err:
        r.load_state_dict(r_bad)
    assert fragment in str(t_err.value) and fragment in str(r_err.value)
    for name, value in r.state_dict().items():  # a failed load changes nothing
        np.testing.assert_array_equal(value, before[name])


def test_state_dict_is_a_copy_and_load_round_trips() -> None:
    torch.manual_seed(7)
    t = torch.nn.LSTM(IN, H, 2, bidirectional=True, dtype=torch.float64)
    r = lstm_ref.LSTM(IN, H, 2, bidirectional=True, dtype=np.float64, seed=0)
    r.load_state_dict({k: to_numpy(v) for k, v in t.state_dict().items()})
    x = _input("float64", "batched")
    with torch.no_grad():
        expected = t(torch.from_numpy(x))
    sd = r.state_dict()
    sd["weight_ih_l0"][:] = 0  # mutating the copy does not touch the model
    out, (h, c) = r(x)
    assert_close(out, expected[0])
    assert_close(h, expected[1][0])
    assert_close(c, expected[1][1])


# --- init ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls", ["LSTM", "LSTMCell"])
def test_init_is_uniform_within_torch_bound(cls: str, dtype: str) -> None:
    hidden = 16  # bound 1/sqrt(16) = 0.25, from hidden_size (not proj_size), for every parameter
    m = (
        lstm_ref.LSTM(IN, hidden, 2, proj_size=3, dtype=dtype, seed=0)
        if cls == "LSTM"
        else lstm_ref.LSTMCell(IN, hidden, dtype=dtype, seed=0)
    )
    t = torch.nn.LSTM(IN, hidden, 2, proj_size=3) if cls == "LSTM" else torch.nn.LSTMCell(IN, hidden)
    bound = 1 / np.sqrt(hidden)
    parts = []
    for name, value in m.state_dict().items():
        assert value.dtype == np.dtype(dtype), name
        parts += [value.real.ravel(), value.imag.ravel()] if np.iscomplexobj(value) else [value.ravel()]
        # torch's own init stays within the same bound (the doc's reset_parameters)
        assert np.abs(to_numpy(t.state_dict()[name])).max() <= bound
    values = np.concatenate(parts)
    assert np.abs(values).max() <= bound
    assert values.max() > 0.95 * bound and values.min() < -0.95 * bound  # spans the interval
    assert abs(values.mean()) < 0.02 and abs(values.std() - bound / np.sqrt(3)) < 0.01  # uniform's moments


def test_init_seed_reproducibility() -> None:
    def params(seed: int | None) -> list[np.ndarray]:
        return list(lstm_ref.LSTM(IN, H, 2, bidirectional=True, seed=seed).state_dict().values())

    assert all(np.array_equal(a, b) for a, b in zip(params(3), params(3), strict=True))
    assert not np.array_equal(params(3)[0], params(4)[0])
    assert not np.array_equal(params(None)[0], params(None)[0])
    cell_a, cell_b = lstm_ref.LSTMCell(IN, H, seed=9), lstm_ref.LSTMCell(IN, H, seed=9)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(cell_a.state_dict().values(), cell_b.state_dict().values(), strict=True)
    )


# --- repr ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        dict(proj_size=2),
        dict(num_layers=2, dropout=0.5),
        dict(proj_size=2, num_layers=2, bias=False, batch_first=True, dropout=0.5, bidirectional=True),
        dict(dropout=0),
        dict(bidirectional=0),
        dict(bidirectional=1, num_layers=True),
        dict(input_size=True),
    ],
    ids=lambda k: ",".join(k) or "defaults",
)
def test_repr_follows_torch(kwargs: dict[str, Any]) -> None:
    """torch's repr with only non-default options, in its order; lstm_ref appends its dtype."""
    kwargs = {"input_size": 3, **kwargs}
    t = repr(torch.nn.LSTM(hidden_size=4, **kwargs))
    r = repr(lstm_ref.LSTM(hidden_size=4, **kwargs))
    assert r.startswith(t[:-1] + ", dtype="), (r, t)
    assert r.endswith("dtype=float32)")


@pytest.mark.parametrize("bias", [True, False])
def test_cell_repr_follows_torch(bias: bool) -> None:
    t, r = repr(torch.nn.LSTMCell(3, 4, bias=bias)), repr(lstm_ref.LSTMCell(3, 4, bias=bias))
    assert r == t[:-1] + ", dtype=float32)", (r, t)
