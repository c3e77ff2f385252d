"""framework-lab: seven Python web frameworks, one contract, run side by side."""
