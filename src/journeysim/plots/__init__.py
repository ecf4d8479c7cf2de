"""journeysim.plots."""
