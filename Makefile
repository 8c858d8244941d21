# The two commands of the README:
#   make run    create .venv, install, prepare the development PKI and start the gateway
#   make test   install what the tests need and run the whole suite (lint, types, contracts, tests)
#
# Works on a fresh Debian 12 machine with Python 3.11. Debian packages that the tests drive
# (xmlsec1, poppler-utils, softhsm2, ...) are installed with apt-get when we run as root;
# otherwise the tests that need them skip with a message (in CI, CI=true, they fail instead).

SHELL       := /bin/bash
PYTHON      ?= $(shell command -v python3.11 || command -v python3)
VENV        := .venv
BIN         := $(VENV)/bin
CONSTRAINTS := constraints.txt
VAR         := var

.PHONY: run sample test lint typecheck contracts unit deps system-deps constraints clean help bench

help:
	@echo "make run    - install into .venv and start the gateway on the embedded default"
	@echo "make test   - install test dependencies and run lint, types, import contracts and pytest"
	@echo "make sample - build, sign, verify and seal the sample document with the one-shot commands"
	@echo "make bench  - the benchmarks (bench/README.md)"

# ---------------------------------------------------------------- environment
$(VENV)/.python-ok:
	@if ! $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
	  echo "error: Python 3.11 or newer is needed (found: $(PYTHON)). On Debian: apt-get install python3"; exit 2; fi
	@if ! $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv; \
	  else echo "error: the venv module is missing; install it with: sudo apt-get install python3-venv"; exit 2; fi; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@touch $@

$(VENV)/.installed: $(VENV)/.python-ok pyproject.toml $(CONSTRAINTS)
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e '.[test]'
	@touch $@

deps: $(VENV)/.installed

system-deps:
	@.ci/install-debian-packages

# Refresh the pinned versions after changing dependencies in pyproject.toml.
constraints: $(VENV)/.python-ok
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e ' > $(CONSTRAINTS)

# ---------------------------------------------------------------- the two commands
# The embedded default configuration: config/gateway.toml plus the tables below: trust and sign
# with the development PKI written to var/pki (its root's fingerprint differs on every machine),
# SQLite and the spool under var/, the DMS and the axis as Maildirs under var/, an (empty) HTTP
# tokens file var/http-tokens for `gateway token add`, and [dev] pki, which makes `gateway serve`
# answer the PKI's OCSP, CRLs and TSA itself. TEST ONLY.
$(VAR)/gateway.toml: config/gateway.toml $(VAR)/pki/pki.toml
	@touch $(VAR)/http-tokens
	@{ sed 's/^# tokens = "http-tokens"  /tokens = "http-tokens"    /' config/gateway.toml; echo; \
	   echo '# ---- Added by make run: the embedded default (TEST ONLY) ----'; \
	   echo '[trust]'; \
	   echo 'anchors = ["pki/trust/anchors/root.pem"]'; \
	   printf 'anchor_sha256 = ["%s"]\n' "$$(sed 's/.*=//' $(VAR)/pki/trust/anchors/root.fingerprint)"; \
	   echo 'intermediates = ["pki/trust/intermediates/intermediate.pem"]'; \
	   echo; echo '[sign]'; \
	   echo 'pkcs12 = "pki/p12/org.p12"'; \
	   echo 'pkcs12_password_file = "pki/p12/PASSWORD"'; \
	   echo 'tsa_url = "http://127.0.0.1:8790/vgca-test/tsa/tsa"'; \
	   echo 'seal_image = "../config/samples/con-dau-mau.png"'; \
	   echo; echo '[store]'; \
	   echo 'url = "sqlite+aiosqlite:///gateway.db"'; \
	   echo 'spool = "spool"'; \
	   echo; echo '[dms]'; \
	   echo 'target = "maildir:dms"'; \
	   echo; echo '[axis]'; \
	   echo 'relay = "maildir:axis"'; \
	   echo 'mail_from = "vanthu@tayninh.gov.vn"'; \
	   echo; echo '[dev]'; \
	   echo 'pki = "pki"'; } > $@

$(VAR)/pki/pki.toml: | deps
	@mkdir -p $(VAR)
	$(BIN)/gateway dev-pki $(VAR)/pki

run: deps $(VAR)/gateway.toml
	@echo "Starting the gateway on the embedded default: SQLite, spool, DMS and axis Maildirs and a"
	@echo "development PKI with its TSA, all under $(VAR)/. In another terminal, push a valid, a tampered"
	@echo "and an unsigned sample package through it and see the receipt log:"
	@echo
	@echo "    $(BIN)/gateway demo --config $(VAR)/gateway.toml"
	@echo
	@echo "then: $(BIN)/gateway log search --config $(VAR)/gateway.toml; ls $(VAR)/dms/new $(VAR)/axis/new;"
	@echo "      curl -s http://127.0.0.1:8025/healthz. The archivist pages: make a token with"
	@echo "      $(BIN)/gateway token add archivist --scope read --config $(VAR)/gateway.toml"
	@echo "      then kill -HUP <pid> (the pid the banner below prints) and open http://127.0.0.1:8025/ ."
	@echo "      Ctrl-C stops the gateway."
	@echo
	@exec $(BIN)/gateway serve --config $(VAR)/gateway.toml

# The one-shot tools on the sample document (run it while the gateway is stopped: it serves the
# development PKI on the same port).
sample: deps $(VAR)/gateway.toml
	@mkdir -p $(VAR)/sample
	@$(BIN)/gateway edxml build --config $(VAR)/gateway.toml --meta config/sample-meta.toml \
	  --attach config/samples/cong-van-mau.pdf -o $(VAR)/sample/cong-van-mau.edxml \
	  --sign-key $(VAR)/pki/p12/org.p12 --sign-pass-file $(VAR)/pki/p12/PASSWORD
	@$(BIN)/gateway edxml inspect --config $(VAR)/gateway.toml $(VAR)/sample/cong-van-mau.edxml
	@echo
	@echo "Verifying it as a recipient would (refused: its PDF is not signed, and it is addressed to others):"
	@$(BIN)/gateway verify --config $(VAR)/gateway.toml $(VAR)/sample/cong-van-mau.edxml || true
	@echo
	@echo "Sealing the sample PDF as a separate attachment and as a copy (the dev TSA runs meanwhile):"
	@$(BIN)/gateway dev-pki serve $(VAR)/pki >$(VAR)/dev-pki.log 2>&1 & pki=$$!; sleep 2; \
	 $(BIN)/gateway sign --config $(VAR)/gateway.toml config/samples/cong-van-mau.pdf --kind attachment \
	   --doc-number 123/UBND-VP -o $(VAR)/sample/phu-luc-da-ky.pdf; \
	 $(BIN)/gateway sign --config $(VAR)/gateway.toml config/samples/cong-van-mau.pdf --kind copy \
	   --copy-type "SAO Y" -o $(VAR)/sample/sao-y.pdf; \
	 kill $$pki; wait $$pki 2>/dev/null; true
	@echo "Written to $(VAR)/sample/. Try: pdfsig -nocert $(VAR)/sample/sao-y.pdf"

test: system-deps deps lint typecheck contracts unit

lint: deps
	$(BIN)/ruff check gateway tests bench
	$(BIN)/ruff format --check gateway tests bench

typecheck: deps
	$(BIN)/mypy

contracts: deps
	$(BIN)/lint-imports

unit: deps
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info

# Issue 7's five targets in one table (bench/README.md); BENCH_ARGS="--quick" or "--only P1,P4".
bench: deps
	$(BIN)/python -m bench.suite $(BENCH_ARGS)
