"""Building scenarios from a brand's data (``journeysim init``)."""
