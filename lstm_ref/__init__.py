"""lstm_ref: a pure-NumPy reference implementation of torch.nn.LSTM."""

from .module import LSTM, LSTMCell
from .packing import (
    PackedSequence,
    pack_padded_sequence,
    pack_sequence,
    pad_packed_sequence,
    pad_sequence,
)
from .trace import DirectionTrace, Trace, trace

__all__ = [
    "LSTM",
    "LSTMCell",
    "PackedSequence",
    "pack_padded_sequence",
    "pack_sequence",
    "pad_packed_sequence",
    "pad_sequence",
    "trace",
    "Trace",
    "DirectionTrace",
]
__version__ = "0.1.0"
