"""journeysim.io."""
