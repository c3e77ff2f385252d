"""framework-lab: Python web frameworks, one contract, run side by side."""
