"""Placeholder until the unit tests land: lstm_ref against live torch on one config."""

import numpy as np
import pytest

import lstm_ref

torch = pytest.importorskip("torch")


def test_forward_matches_torch_float64() -> None:
    torch.manual_seed(0)
    reference = torch.nn.LSTM(5, 6, num_layers=2, bidirectional=True, dtype=torch.float64)
    x = torch.randn(7, 4, 5, dtype=torch.float64)
    expected, (h, c) = reference(x)
    actual, (h2, c2) = lstm_ref.LSTM.from_torch(reference)(x.numpy())
    np.testing.assert_allclose(actual, expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h2, h.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(c2, c.detach().numpy(), rtol=1e-12, atol=1e-12)
