# Lethe: `make run` serves the embedded default; `make test` runs the code checks and the suite; `make test-faults`
# the fault suites (killed workers, restarted services, a full disk, repeated starts of `make run`).
.PHONY: run test check test-faults screenshots venv bench clean

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

# The README's pictures: the first-hour browser test tells the demo story and photographs each
# role's main pages into docs/screenshots/ (checked in).
screenshots: venv
	@LETHE_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots scripts/test.sh tests/browser/test_first_hour.py

clean:
	rm -rf var/test test-artifacts .pytest_cache
