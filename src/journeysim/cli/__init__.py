"""journeysim.cli."""
