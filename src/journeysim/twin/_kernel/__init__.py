"""journeysim.twin._kernel."""
