"""journeysim.engine."""
