"""journeysim.paths."""
