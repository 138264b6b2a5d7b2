"""The plug-in contract in code: what the conformance suite calls on an implementation.

``lstm-conformance --impl MODULE:ATTR`` (or ``pytest --lstm-impl MODULE:ATTR``) names an
:data:`LSTMFactory`; everything it makes must satisfy :class:`LSTM`. Everything else is optional
and found by name: a ``vjp`` method (:class:`SupportsVJP`, the ``gradients`` row), a
``conformance_trace`` method (:class:`SupportsTrace`, failures localised to a gate), and four
class attributes (:class:`DeclaresUnsupported`, :class:`DeclaresCell`,
:class:`DeclaresTolerance`, :class:`DeclaresVersion`). The building blocks of an adapter
(stacking a library's layers, packed <-> padded with lengths, gate order, the version string)
are :mod:`conformance.toolkit`, also importable from here as ``api.toolkit``. Nothing here has to be inherited: these are ``typing.Protocol``\\ s,
so a class conforms by having the members, and mypy can check it::

    from conformance import api

    factory: api.LSTMFactory = MyLSTM            # construction by keywords
    model: api.SupportsVJP = MyLSTM(input_size=3, hidden_size=4, dtype=np.float64, seed=0)

Shapes, layouts and the exact semantics are torch's (docs/semantics.md); docs/plugin.md says the
same in prose, with examples.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeAlias, runtime_checkable

import numpy as np

from lstm_ref import PackedSequence

from . import toolkit

__all__ = [
    "LSTM",
    "DeclaresCell",
    "DeclaresTolerance",
    "DeclaresUnsupported",
    "DeclaresVersion",
    "HiddenState",
    "Internals",
    "LSTMCell",
    "LSTMCellFactory",
    "LSTMFactory",
    "SupportsTrace",
    "SupportsVJP",
    "toolkit",
]

HiddenState: TypeAlias = tuple[np.ndarray, np.ndarray]
"""``(h, c)``: for the LSTM, ``h_0``/``h_n`` is ``(D*num_layers, N, H_out)`` and ``c_0``/``c_n``
``(D*num_layers, N, H)``, without the ``N`` axis for unbatched input, never batch-first."""

Internals: TypeAlias = Mapping[tuple[int, int], Mapping[str, np.ndarray]]
"""What :meth:`SupportsTrace.conformance_trace` returns: ``(layer, direction)`` -> ``{"i", "f",
"g", "o", "c", "h"}`` -> a time-major array: ``(L, N, H)`` batched (also with ``batch_first``),
``(L, H)`` unbatched, ``(rows, H)`` for packed input."""


@runtime_checkable
class LSTM(Protocol):
    """What the suite calls on every model it makes (the required API, lstm_ref.LSTM's).

    A model must not modify ``input`` or ``hx`` and must accept strided, Fortran-order and
    read-only arrays. Exceptions are judged by their type name only (the ``errors`` and
    ``error_types`` rows): bad arguments raise what torch raises.
    """

    def state_dict(self) -> Mapping[str, np.ndarray]:
        """Name -> array, with torch's names, order and shapes (``weight_ih_l0``, ...)."""
        ...

    def load_state_dict(self, state_dict: dict[str, np.ndarray], /) -> object:
        """Strict: a missing, unexpected or misshapen entry raises ``RuntimeError``. Afterwards
        :meth:`state_dict` returns exactly these arrays, in the model's dtype."""
        ...

    def train(self, mode: bool = True, /) -> object:
        """Training mode (``True``) or evaluation mode; the suite sets it for every case.
        In training mode without ``dropout_masks`` the model draws its own masks."""
        ...

    def eval(self) -> object:
        """Same as ``train(False)``."""
        ...

    def __call__(
        self,
        input: np.ndarray | PackedSequence,
        hx: HiddenState | None = None,
        /,
        *,
        dropout_masks: Sequence[np.ndarray] | None = None,
    ) -> tuple[np.ndarray | PackedSequence, HiddenState]:
        """``(output, (h_n, c_n))`` as torch.nn.LSTM.forward gives them.

        ``input`` is ``(L, N, H_in)``, ``(N, L, H_in)`` with ``batch_first``, ``(L, H_in)``
        unbatched, or an ``lstm_ref.PackedSequence`` (then ``output`` is one too, with the same
        ``batch_sizes`` and indices). ``dropout_masks`` is passed only in training mode with
        ``0 < dropout < 1`` and 2+ layers, to replay torch's masks: ``num_layers - 1`` boolean
        keep-masks shaped like each layer's output, time-major; kept values are scaled by
        ``1/(1-p)``. An implementation that declares ``"dropout_masks"`` unsupported is never
        passed it.
        """
        ...


LSTMFactory: TypeAlias = Callable[..., LSTM]
"""What ``--impl MODULE:ATTR`` names: a class or any callable. Called with keywords only:
``factory(input_size=, hidden_size=, num_layers=, bias=, batch_first=, dropout=, bidirectional=,
proj_size=, dtype=, seed=0)``, ``dtype`` a NumPy dtype (float32, float64, complex64,
complex128). ``seed`` only has to be accepted: the suite loads the oracle's weights. The error
cases pass ``input_size=3, hidden_size=4, dtype=float64`` plus one bad keyword, without
``seed``; an unknown keyword raises ``TypeError``."""


@runtime_checkable
class SupportsVJP(LSTM, Protocol):
    """Optional: the backward pass, for the ``gradients`` row (skipped as not supported
    without it)."""

    def vjp(
        self,
        input: np.ndarray | PackedSequence,
        hx: HiddenState | None,
        grad_output: np.ndarray,
        grad_h_n: np.ndarray,
        grad_c_n: np.ndarray,
        /,
        *,
        dropout_masks: Sequence[np.ndarray] | None = None,
    ) -> dict[str, np.ndarray]:
        """The vector-Jacobian product of ``self(input, hx, dropout_masks=...)`` for the given
        upstream gradients, as ``torch.autograd.grad`` gives it: a dict with ``"input"`` (the
        data, for packed input), ``"h0"`` and ``"c0"`` (also when ``hx`` is None) and one entry
        per ``state_dict`` name. Complex dtypes follow torch's ``J^H v``."""
        ...


@runtime_checkable
class SupportsTrace(LSTM, Protocol):
    """Optional: the step-by-step internals, so that a failure is localised to the first gate,
    cell or hidden state that is off ("layer 1, direction 0, time step 3, gate 'f'")."""

    def conformance_trace(self, input: np.ndarray | PackedSequence, hx: HiddenState | None, /) -> Internals:
        """For every ``(layer, direction)``, the activated gates ``i``, ``f``, ``g``, ``o`` and
        ``c``, ``h`` of every step (see :data:`Internals`). Errors raised here are ignored."""
        ...


class LSTMCell(Protocol):
    """The optional one-step cell (the ``cell`` row), named by :class:`DeclaresCell`."""

    def load_state_dict(self, state_dict: dict[str, np.ndarray], /) -> object:
        """``weight_ih``, ``weight_hh``, and ``bias_ih``, ``bias_hh`` when ``bias``."""
        ...

    def __call__(self, input: np.ndarray, hx: HiddenState | None = None, /) -> HiddenState:
        """One step: ``input`` ``(N, H_in)`` or ``(H_in,)``, state ``None`` or ``(h, c)``;
        returns ``(h, c)``."""
        ...


LSTMCellFactory: TypeAlias = Callable[..., LSTMCell]
"""Called as ``cell(input_size, hidden_size, bias=..., dtype=..., seed=0)``."""


class DeclaresUnsupported(Protocol):
    """Optional class attribute: the rows the implementation does not support, row name (or an
    alias: ``packed``, ``complex``, ``dropout``, ``dropout_masks``, ``edges``) -> the reason.
    Every check of every case that needs a declared feature is skipped with the reason, never
    passed; an unknown key is an error (docs/rows.md lists the rows)."""

    conformance_unsupported: ClassVar[Mapping[str, str]]


class DeclaresCell(Protocol):
    """Optional class attribute: the implementation's LSTMCell, a class (an
    :data:`LSTMCellFactory`) or a ``"module:Attr"`` string. Without it the ``cell`` row is
    skipped, with the reason (subclasses of ``lstm_ref.LSTM`` get ``lstm_ref.LSTMCell``)."""

    conformance_cell: ClassVar[LSTMCellFactory | str]


class DeclaresTolerance(Protocol):
    """Optional class attribute for a lossy runtime: its own tolerance per dtype name,
    ``{"float32": (rtol, atol)}``. Every row that passes only thanks to it says so, and so do
    the report JSON (``default_ratio``) and the verdict line."""

    conformance_tolerance: ClassVar[Mapping[str, tuple[float, float]]]


class DeclaresVersion(Protocol):
    """Optional class attribute: the versions of what does the work, e.g. ``"mylib 1.2,
    jax 0.10.2"`` (``toolkit.library_versions("mylib", "jax")`` makes it). It is the
    implementation's version in every report's provenance and in the matrix; without it the
    suite looks for ``__version__`` of the module's top-level package, then for the installed
    distribution that provides it, else shows "unknown"."""

    conformance_version: ClassVar[str]


if TYPE_CHECKING:  # mypy proves that the reference meets the contract documented here

    def _reference_meets_the_contract() -> None:
        import lstm_ref

        factory: LSTMFactory = lstm_ref.LSTM
        model: SupportsVJP = lstm_ref.LSTM(3, 4)
        cell_factory: LSTMCellFactory = lstm_ref.LSTMCell
        cell: LSTMCell = lstm_ref.LSTMCell(3, 4)
        del factory, model, cell_factory, cell
