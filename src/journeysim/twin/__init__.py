"""journeysim.twin."""
