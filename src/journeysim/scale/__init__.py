"""journeysim.scale."""
