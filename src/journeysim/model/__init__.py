"""journeysim.model."""
