"""An implementation whose import never ends (tests/test_robustness.py: Ctrl-C while importing).
It says when it has started hanging by creating the file $HANGS_AT_IMPORT_MARKER."""

import os
import time
from pathlib import Path

if os.environ.get("HANGS_AT_IMPORT_MARKER"):
    Path(os.environ["HANGS_AT_IMPORT_MARKER"]).touch()
time.sleep(600)

LSTM = None
