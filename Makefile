# The targets the README names. Each installs what it needs into .venv on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test bench emulator clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# The demo: embedded PostgreSQL with sample data, the Salesforce emulator, and `dagster dev` on :3000.
demo: $(STAMP)
	$(BIN)/passwork demo

# The whole suite in UTC, then the date-sensitive tests again in Asia/Tokyo (exit 5 = none selected).
# The SSH bastion tests need a real sshd on loopback; install OpenSSH's server where it is missing.
test: $(STAMP)
	command -v sshd >/dev/null || test -x /usr/sbin/sshd || (apt-get update -qq && apt-get install -y -qq openssh-server >/dev/null)
	TZ=UTC $(BIN)/python -m pytest
	TZ=Asia/Tokyo $(BIN)/python -m pytest -m dates || test $$? -eq 5

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .passwork .pytest_cache
