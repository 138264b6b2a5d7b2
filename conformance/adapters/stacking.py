"""What the Keras and Flax adapters share, now part of the public adapter toolkit
(conformance/toolkit.py): re-exported here under the names the adapters import."""

from __future__ import annotations

from ..toolkit import StackedLSTM, check_stacking, repack, split_hx

__all__ = ["StackedLSTM", "check_stacking", "repack", "split_hx"]
