# Lethe: `make run` serves the embedded default; `make test` runs the whole suite.
.PHONY: run test venv bench clean

venv:
	@scripts/bootstrap_venv.sh

run: venv
	@scripts/run_embedded.sh

test: venv
	@scripts/test.sh

clean:
	rm -rf var/test test-artifacts .pytest_cache
