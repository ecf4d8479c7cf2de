"""journeysim.planning."""
