"""`python -m lab.vm up|down|ssh|status`."""

from lab.vm.cli import main

main()
