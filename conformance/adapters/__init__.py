"""Shipped adapters: real LSTM implementations behind the plug-in API, selectable by short name
(``--impl NAME``).  Each adapter lives in its own module here and only converts layouts and
calls its library; the recurrence is always the library's (docs/plugin.md)."""

from __future__ import annotations

# short name -> MODULE:ATTR; a module imports its library lazily and, when the library is
# missing, raises SystemExit with one line naming the extra to install
ADAPTERS: dict[str, str] = {}
