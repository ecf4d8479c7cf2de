"""journeysim._util."""
