"""journeysim.inference."""
