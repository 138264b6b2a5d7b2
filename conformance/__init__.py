"""Conformance suite: checks an LSTM implementation against torch.nn.LSTM."""
