"""An exec command that passes every request on to a real one (the C port) and misbehaves on
float64 models, for tests/test_exec_impl.py:

    python faulty.py FAULT MARKERS COMMAND... (REQUEST_DIR | --exec-persistent)

FAULT is ``crash`` (killed by SIGSEGV), ``hang`` (starts a sleeping child, writes its pid to
MARKERS/child-<pid>, then sleeps) or ``none``. The capabilities answer is COMMAND's, with
``persistent`` kept only when this command was asked for protocol 2 and FAULT ends in
``-persistent`` (``crash-persistent``, ``hang-persistent``); otherwise it answers protocol 1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def misbehave(fault: str, markers: Path, directory: Path) -> None:
    request = json.loads((directory / "request.json").read_text())
    if request.get("config", {}).get("dtype") != "float64":
        return
    if fault.startswith("crash"):
        os.kill(os.getpid(), signal.SIGSEGV)
    if fault.startswith("hang"):
        child = subprocess.Popen(["sleep", "300"])
        # written under another name and renamed, so a reader never sees an empty marker
        staged = markers / f".staged-{child.pid}"
        staged.write_text(str(child.pid))
        staged.rename(markers / f"child-{child.pid}")
        time.sleep(300)


def answer(fault: str, markers: Path, command: list[str], directory: Path) -> None:
    request = json.loads((directory / "request.json").read_text())
    subprocess.run([*command, str(directory)], check=False)
    if request["op"] == "capabilities":
        path = directory / "response.json"
        caps = json.loads(path.read_text())
        if not fault.endswith("-persistent"):
            caps = {"protocol": 1, "unsupported": {**caps["unsupported"], "gradients": "no"}}
        path.write_text(json.dumps(caps))
    else:
        misbehave(fault, markers, directory)


def main(argv: list[str]) -> None:
    fault, markers, command, last = argv[0], Path(argv[1]), argv[2:-1], argv[-1]
    if last != "--exec-persistent":
        answer(fault, markers, command, Path(last))
        return
    for line in sys.stdin:
        directory = Path(line.rstrip("\n"))
        answer(fault, markers, command, directory)
        print(directory, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
