"""onnxruntime aborts the whole process on a float32 LSTM batch of 0; torch returns empty arrays.

torch.nn.LSTM takes a (L, 0, H_in) input and returns (L, 0, H) outputs. The same model exported
with torch.onnx.export (TorchScript exporter) and run by onnxruntime (CPU) kills the process
with "terminate called without an active exception" (SIGABRT). The run happens in a child
process so that this script can report it. Exits 1 while the child dies.
"""

import subprocess
import sys

CHILD = r"""
import io, warnings
import numpy as np, onnxruntime, torch
warnings.simplefilter("ignore")
lstm = torch.nn.LSTM(3, 4).eval()
buffer = io.BytesIO()
torch.onnx.export(lstm, (torch.zeros(3, 2, 3),), buffer, dynamo=False, input_names=["x"],
                  dynamic_axes={"x": {0: "L", 1: "N"}})
session = onnxruntime.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
x = np.zeros((5, 0, 3), np.float32)
with torch.no_grad():
    print("torch output shape:", tuple(lstm(torch.from_numpy(x))[0].shape), flush=True)
print("onnxruntime output shape:", session.run(None, {"x": x})[0].shape, flush=True)
"""

proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True)
print(proc.stdout, end="")
print("stderr tail:", proc.stderr.strip().splitlines()[-1:] if proc.stderr.strip() else [])
print("exit status of the process that ran onnxruntime:", proc.returncode)
sys.exit(1 if proc.returncode != 0 else 0)
