"""Dropout between layers: torch's CPU masks replayed exactly (docs/semantics.md section 5),
eval/p=0/p=1 behaviour, and lstm_ref's own NumPy mask draws."""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import numpy as np
import pytest
from lstm_test_utils import assert_close, random_array, to_numpy, torch_dtype
from test_forward import check_against_torch

import lstm_ref

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

IN, H, PROJ, L, N = 3, 4, 2, 6, 3
LENGTHS = [2, 6, 1, 4, 4]
SEED = 1234


def build(
    dtype: str, num_layers: int, bidirectional: bool, batch_first: bool, proj: int, p: float
) -> tuple[Any, lstm_ref.LSTM]:
    torch.manual_seed(0)
    module = torch.nn.LSTM(
        IN,
        H,
        num_layers,
        batch_first=batch_first,
        dropout=p,
        bidirectional=bidirectional,
        proj_size=proj,
        dtype=torch_dtype(dtype),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = lstm_ref.LSTM.from_torch(module)
    assert ref.training and ref.dropout == module.dropout
    return module, ref


def inputs(form: str, dtype: str, batch_first: bool) -> tuple[Any, Any]:
    """(torch input, lstm_ref input)."""
    rng = np.random.default_rng(7)
    if form == "packed":
        padded = random_array(rng, (max(LENGTHS), len(LENGTHS), IN), dtype)
        t = torch.nn.utils.rnn.pack_padded_sequence(torch.from_numpy(padded), LENGTHS, enforce_sorted=False)
        return t, lstm_ref.pack_padded_sequence(padded, LENGTHS, enforce_sorted=False)
    if form == "unbatched":
        x = random_array(rng, (L, IN), dtype)
    else:
        x = random_array(rng, (N, L, IN) if batch_first else (L, N, IN), dtype)
    return torch.from_numpy(x), x


def torch_mask_shape(form: str, features: int) -> tuple[int, ...]:
    """The shape torch's CPU dropout draws: the layer output, time-major (doc section 5)."""
    return {"packed": (sum(LENGTHS), features), "unbatched": (L, 1, features)}.get(form, (L, N, features))


def ref_mask_shape(form: str, features: int) -> tuple[int, ...]:
    return {"packed": (sum(LENGTHS), features), "unbatched": (L, features)}.get(form, (L, N, features))


def replay_torch(module: Any, t_in: Any, dtype: str, form: str, p: float) -> tuple[Any, list[np.ndarray]]:
    """Run torch in train mode under SEED; redraw the same bernoulli masks under SEED."""
    features = (2 if module.bidirectional else 1) * (module.proj_size or module.hidden_size)
    torch.manual_seed(SEED)
    with torch.no_grad():
        out = module(t_in)
    torch.manual_seed(SEED)
    masks = [
        torch.empty(torch_mask_shape(form, features), dtype=torch_dtype(dtype)).bernoulli_(1 - p)
        for _ in range(module.num_layers - 1)
    ]
    return out, [(to_numpy(m) != 0).reshape(ref_mask_shape(form, features)) for m in masks]


def compare(t_result: Any, r_result: Any) -> None:
    t_out, (t_h, t_c) = t_result
    r_out, (r_h, r_c) = r_result
    if hasattr(t_out, "batch_sizes"):
        t_out, r_out = t_out.data, r_out.data
    assert_close(r_out, t_out, what="output")
    assert_close(r_h, t_h, what="h_n")
    assert_close(r_c, t_c, what="c_n")


REPLAY = [
    pytest.param(*values, id="-".join(map(str, values)))
    for values in itertools.product(
        ["float32", "float64"],
        [2, 3],
        [False, True],
        [False, True],
        [0, PROJ],
        ["batched", "unbatched", "packed"],
    )
    if not (values[5] != "batched" and values[3])  # batch_first only matters for batched input
]


@pytest.mark.parametrize(("dtype", "num_layers", "bidirectional", "batch_first", "proj", "form"), REPLAY)
def test_replays_torch_cpu_dropout_masks(
    dtype: str, num_layers: int, bidirectional: bool, batch_first: bool, proj: int, form: str
) -> None:
    p = 0.4
    module, ref = build(dtype, num_layers, bidirectional, batch_first, proj, p)
    t_in, r_in = inputs(form, dtype, batch_first)
    t_result, masks = replay_torch(module, t_in, dtype, form, p)
    assert all(0 < m.mean() < 1 for m in masks)  # the masks really drop something
    compare(t_result, ref(r_in, dropout_masks=masks))
    # masks may also be 0/1 numbers rather than booleans
    compare(t_result, ref(r_in, dropout_masks=[m.astype(dtype) for m in masks]))


def test_batch_major_masks_do_not_reproduce_torch() -> None:
    """Negative control: the masks are time-major; transposed ones give different results."""
    module, ref = build("float64", 2, False, True, 0, 0.5)
    t_in, r_in = inputs("batched", "float64", True)
    (t_out, _), masks = replay_torch(module, t_in, "float64", "batched", 0.5)
    wrong = [
        np.ascontiguousarray(np.swapaxes(m.reshape(N, L, -1), 0, 1)) for m in masks
    ]  # (L,N,F) read as (N,L,F)
    out, _ = ref(r_in, dropout_masks=wrong)
    assert not np.allclose(out, to_numpy(t_out))


@pytest.mark.parametrize("form", ["batched", "packed"])
@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_eval_mode_is_identity(p: float, form: str) -> None:
    module, ref = build("float64", 3, True, False, 0, p)
    module.eval()
    ref.eval()
    t_in, r_in = inputs(form, "float64", False)
    with torch.no_grad():
        expected = module(t_in)
    features = 2 * H
    ones = [np.zeros(ref_mask_shape(form, features), dtype=bool)] * 2  # ignored in eval mode
    compare(expected, ref(r_in))
    compare(expected, ref(r_in, dropout_masks=ones))


@pytest.mark.parametrize("p", [0.0, 1.0])
@pytest.mark.parametrize("form", ["batched", "unbatched", "packed"])
def test_p0_and_p1_are_deterministic_like_torch(p: float, form: str) -> None:
    """p=0 keeps everything, p=1 zeroes the input of layers 1..; neither draws (torch nor numpy)."""
    module, ref = build("float64", 3, True, False, PROJ, p)
    t_in, r_in = inputs(form, "float64", False)
    with torch.no_grad():
        expected = module(t_in)
    compare(expected, ref(r_in))
    compare(expected, ref(r_in))  # same again: nothing random happened
    if p == 1.0:  # masks are irrelevant at p=1 but still validated
        masks = [np.ones(ref_mask_shape(form, 2 * PROJ), dtype=bool)] * 2
        compare(expected, ref(r_in, dropout_masks=masks))


def test_layer0_h_n_is_never_dropped() -> None:
    """h_n/c_n of layer 0 do not depend on dropout at all; later layers do (torch's test_RNN_dropout)."""
    module, ref = build("float64", 2, True, False, 0, 0.9)
    t_in, r_in = inputs("batched", "float64", False)
    module.eval()
    with torch.no_grad():
        _, (t_h, t_c) = module(t_in)
    module.train()
    (_, (t_h_train, _)), masks = replay_torch(module, t_in, "float64", "batched", 0.9)
    _, (h, c) = ref(r_in, dropout_masks=masks)
    assert_close(h[:2], t_h[:2])  # layer 0, both directions: as in eval mode
    assert_close(c[:2], t_c[:2])
    assert_close(h, t_h_train)
    assert not np.allclose(h[2:], to_numpy(t_h[2:]))  # layer 1 really saw dropout


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_complex_dropout_raises_like_torch(dtype: str) -> None:
    module, ref = build(dtype, 2, False, False, 0, 0.5)
    x = random_array(np.random.default_rng(0), (L, N, IN), dtype)
    with pytest.raises(NotImplementedError) as t_err, torch.no_grad():
        module(torch.from_numpy(x))
    with pytest.raises(type(t_err.value), match="complex"):
        ref(x)
    # eval mode and p=1 need no random draw: both work and agree (complex64 is judged against
    # torch's complex128 answer, as in test_forward: its own complex64 result rounds too far)
    for setup in (lambda m: m.eval(), lambda m: setattr(m, "dropout", 1.0)):
        module2, ref2 = build(dtype, 2, False, False, 0, 0.5)
        setup(module2)
        setup(ref2)
        check_against_torch(module2, ref2, torch.from_numpy(x), x, None, None)


# --- lstm_ref's own masks (train mode, no dropout_masks) ------------------------------------


def mask_revealing_model(p: float, seed: int | None) -> lstm_ref.LSTM:
    """Layer 1's g gate is tanh(dropped layer-0 output), feature k -> unit k; nothing else.

    So g == 0 exactly where the mask dropped, and atanh(g) == y / (1-p) where it kept.
    """
    m = lstm_ref.LSTM(IN, H, num_layers=2, dropout=p, seed=seed, dtype=np.float64)
    sd = m.state_dict()
    sd["weight_ih_l1"] = np.zeros_like(sd["weight_ih_l1"])
    sd["weight_ih_l1"][2 * H : 3 * H] = np.eye(H)
    for name in ("weight_hh_l1", "bias_ih_l1", "bias_hh_l1"):
        sd[name] = np.zeros_like(sd[name])
    m.load_state_dict(sd)
    return m


@pytest.mark.parametrize("p", [0.2, 0.7])
def test_numpy_masks_keep_rate_and_scale(p: float) -> None:
    m = mask_revealing_model(p, seed=5)
    x = random_array(np.random.default_rng(2), (200, 50, IN), "float64")
    tr = lstm_ref.trace(m, x)
    y = tr.layer_outputs[0]
    g = tr.at(1, 0).g
    assert np.all(y != 0)
    kept = g != 0
    # 40000 Bernoulli(1-p) draws: std of the rate is ~0.0023; allow ~4.5 sigma
    assert abs(kept.mean() - (1 - p)) < 0.01
    np.testing.assert_allclose(np.arctanh(g[kept]), y[kept] / (1 - p), rtol=1e-9)
    # masks differ between steps and batch entries (one draw per element)
    assert 0 < kept[:, 0, 0].mean() < 1 and 0 < kept[0, :, 0].mean() < 1


def test_numpy_masks_are_reproducible_from_the_seed() -> None:
    x = random_array(np.random.default_rng(3), (L, N, IN), "float64")
    a, b, c = (mask_revealing_model(0.5, seed) for seed in (11, 11, 12))
    first_a, first_b, first_c = a(x)[0], b(x)[0], c(x)[0]
    np.testing.assert_array_equal(first_a, first_b)  # same seed, same masks
    assert not np.array_equal(first_a, first_c)  # another seed, other masks
    assert not np.array_equal(a(x)[0], first_a)  # the generator moves on between calls
    np.testing.assert_array_equal(a.eval()(x)[0], b.eval()(x)[0])


@pytest.mark.parametrize("no_draw", ["eval", "batch0", "p0"])
def test_no_random_draw_when_dropout_is_inactive(no_draw: str) -> None:
    """Like torch (no RNG draw in eval, at p=0, or for an empty batch): the next train-mode call
    after such a call sees the same masks as a fresh module with the same seed."""
    x = random_array(np.random.default_rng(4), (L, N, IN), "float64")
    fresh, used = mask_revealing_model(0.5, 21), mask_revealing_model(0.5, 21)
    if no_draw == "eval":
        used.eval()(x)
        used.train()
    elif no_draw == "batch0":
        used(np.zeros((L, 0, IN)))
    else:
        used.dropout = 0.0
        used(x)
        used.dropout = 0.5
    np.testing.assert_array_equal(used(x)[0], fresh(x)[0])


@pytest.mark.parametrize(
    ("masks", "fragments"),
    [
        pytest.param([], ("expected 2", "got 0"), id="too-few"),
        pytest.param([np.ones((L, N, H), bool)] * 3, ("expected 2", "got 3"), id="too-many"),
        pytest.param([np.ones((N, L, H), bool)] * 2, (f"{(L, N, H)}", f"{(N, L, H)}"), id="batch-major"),
        pytest.param([np.full((L, N, H), 0.5)] * 2, ("0 and 1",), id="not-binary"),
    ],
)
def test_bad_dropout_masks(masks: list[np.ndarray], fragments: tuple[str, ...]) -> None:
    m = lstm_ref.LSTM(IN, H, num_layers=3, dropout=0.5, seed=0)
    x = np.zeros((L, N, IN), np.float32)
    with pytest.raises(ValueError) as err:
        m(x, dropout_masks=masks)
    for fragment in fragments:
        assert fragment in str(err.value)
