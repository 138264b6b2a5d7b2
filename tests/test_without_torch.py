"""lstm_ref must never need torch: import and run it with torch made unimportable."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import lstm_ref

PACKAGE = Path(lstm_ref.__file__).parent

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["torch"] = None  # any `import torch` now raises ImportError
    for name in list(sys.modules):
        assert not name.startswith("torch."), name

    import numpy as np
    import lstm_ref

    m = lstm_ref.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2, dropout=0.5, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    out, (h, c) = m(x)
    assert out.shape == (5, 2, 4) and h.shape == (4, 2, 2) and c.shape == (4, 2, 4)
    packed = lstm_ref.pack_padded_sequence(x, [5, 3], enforce_sorted=False)
    out, _ = m.eval()(packed)
    assert out.data.shape == (8, 4)
    tr = lstm_ref.trace(m, x)
    assert tr.at(1, 1).g.shape == (5, 2, 4)
    h1, c1 = lstm_ref.LSTMCell(3, 4, seed=0)(x[0])
    assert h1.shape == (2, 4)
    assert not any(n == "torch" or n.startswith("torch.") for n, mod in sys.modules.items() if mod is not None)
    print("ok")
    """
)


def test_imports_and_runs_with_torch_blocked() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_blocking_really_blocks() -> None:
    """Negative control: the same trick makes `import torch` fail in the subprocess."""
    code = 'import sys; sys.modules["torch"] = None\ntry:\n    import torch\nexcept ImportError:\n    print("blocked")'
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stdout.strip() == "blocked", result.stderr


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Call) and (
            getattr(node.func, "id", None) == "__import__"
            or getattr(node.func, "attr", None) == "import_module"
        ):
            names.update(
                a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
            )
    return names


def test_no_file_in_lstm_ref_imports_torch() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) >= 5
    offenders = {
        str(f.relative_to(PACKAGE)): sorted(
            n for n in _imported_modules(f) if n == "torch" or n.startswith("torch.")
        )
        for f in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    # and no import statement hidden from the AST walk (e.g. in exec'd strings)
    for f in files:
        assert not re.search(r"^\s*(import|from)\s+torch\b", f.read_text(), re.MULTILINE), f
