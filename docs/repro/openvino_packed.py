"""A converted torch LSTM ignores the sequence lengths of packed input: it runs every sequence
to the padded end.

The LSTM wrapped in pack_padded_sequence -> LSTM -> pad_packed_sequence (the lengths as
a second input) converts with openvino.convert_model and compiles, but the compiled model
equals the LSTM run on the padded tensor without packing: h_n is the state after the padding,
and the reverse direction starts in the padding (its outputs differ at every true step).
Exits 1 while the lengths are ignored.
"""

import sys
import warnings

import numpy as np
import openvino
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

warnings.simplefilter("ignore")


class Packed(torch.nn.Module):
    def __init__(self, lstm):
        super().__init__()
        self.lstm = lstm

    def forward(self, x, lengths):
        out, (h_n, c_n) = self.lstm(pack_padded_sequence(x, lengths))
        return pad_packed_sequence(out)[0], h_n, c_n


torch.manual_seed(0)
lstm = torch.nn.LSTM(3, 4, bidirectional=True).eval()
x, lengths = torch.randn(5, 3, 3), torch.tensor([5, 3, 2])
with torch.no_grad():
    out, (h_n, _) = lstm(pack_padded_sequence(x, lengths))
    out = pad_packed_sequence(out)[0].numpy()
    _, (h_padded, _) = lstm(x)  # the lengths ignored
model = openvino.convert_model(Packed(lstm), example_input=(x, lengths))
compiled = openvino.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
ov_out, ov_h, _ = compiled([x.numpy(), lengths.numpy()]).values()
valid = (np.arange(5)[:, None] < lengths.numpy())[..., None]
print("OpenVINO", openvino.__version__)
print(
    "h_n: max |OpenVINO - torch (packed)| per sequence =",
    np.abs(ov_h - h_n.numpy()).max(axis=(0, 2)).round(3),
)
print(f"h_n: max |OpenVINO - torch on the padded tensor| = {np.abs(ov_h - h_padded.numpy()).max():.1e}")
reverse = np.abs((ov_out - out)[..., 4:] * valid).max()
print(f"reverse direction at the true steps: max |OpenVINO - torch (packed)| = {reverse:.2f}")
sys.exit(1 if np.abs(ov_h - h_n.numpy()).max() > 1e-5 else 0)
