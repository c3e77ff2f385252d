# The README's quick start. Each target sets up what it needs first (scripts/bootstrap is idempotent).
.PHONY: up test unit lint down

up:
	scripts/bootstrap
	.venv/bin/lab up

test:
	scripts/bootstrap
	.venv/bin/ruff check lab tests stacks playbooks/roles/lab/files/ship-image playbooks/roles/swarm/files/swarm-deploy
	cd playbooks && PATH="$(CURDIR)/.venv/bin:$$PATH" ansible-lint --profile production --nocolor -q .
	.venv/bin/pytest --durations=40 -rP  # the slowest steps, and what passing tests print (their figures)

unit:
	.venv/bin/pytest tests/unit

lint:
	.venv/bin/ruff check lab tests stacks playbooks/roles/lab/files/ship-image playbooks/roles/swarm/files/swarm-deploy
	cd playbooks && PATH="$(CURDIR)/.venv/bin:$$PATH" ansible-lint --profile production --nocolor -q .
	.venv/bin/ruff format --check lab tests

down:
	.venv/bin/lab down
