# Lethe: `make run` serves the embedded default; `make test` runs the code checks and the suite; `make test-faults`
# the fault suites (killed workers, restarted services, a full disk, repeated starts of `make run`).
.PHONY: run test check test-faults venv bench clean

venv:
	@scripts/bootstrap_venv.sh

run: venv
	@scripts/run_embedded.sh

test: venv check
	@scripts/test.sh

# ruff (format and lint) and import-linter's layers; part of `make test`.
check: venv
	@scripts/check.sh

test-faults: venv
	@scripts/test.sh -m faults tests/faults

clean:
	rm -rf var/test test-artifacts .pytest_cache
