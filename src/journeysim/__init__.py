"""journeysim: agent-based customer-journey simulation calibrated with Bayesian models."""

from journeysim.errors import ConvergenceError, InputError, JourneysimError, JourneysimWarning

__version__ = "0.1.0"

__all__ = ["ConvergenceError", "InputError", "JourneysimError", "JourneysimWarning", "__version__"]
