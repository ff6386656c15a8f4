# Audit: bandit over our code, pip-audit over the locked dependencies (requirements/dev.txt:
# every pin of the web, worker and build locks is in it at the same version, as
# tests/unit/test_packaging.py checks).
# Included by the top-level Makefile; part of `make test`.
#
# bandit: .bandit.yaml lists every skipped test with its reason; any other finding fails.
#
# pip-audit needs a vulnerability service: PyPI's JSON API per release
# (https://pypi.org/pypi/<name>/<version>/json, the default) or OSV (api.osv.dev). Where neither
# answers (a machine that reaches only the package index), pip-audit "skips" every package and
# on its own still prints "No known vulnerabilities found" and exits 0. So the JSON report is
# read here instead: known vulnerabilities always fail; packages it could not audit are reported
# as NOT AUDITED, and fail too with AUDIT_REQUIRE_SERVICE=1 (set it where the service is
# reachable, e.g. CI with internet access).
#
# Accepting a vulnerability: add `--ignore-vuln ID` to AUDIT_IGNORE with a comment saying why.

AUDIT_PYTHON ?= python3.11
AUDIT_VENV := .tools/audit-venv
AUDIT_PINS := pip-audit==2.10.1 bandit==1.9.4
AUDIT_SERVICE ?= pypi
AUDIT_REQUIRE_SERVICE ?= 0
AUDIT_IGNORE :=
AUDIT_PIP := --disable-pip-version-check --no-input --quiet

TEST_TARGETS += audit

.PHONY: audit audit-tools

$(AUDIT_VENV)/.stamp: mk/audit.mk
	rm -rf $(AUDIT_VENV)
	$(AUDIT_PYTHON) -m venv $(AUDIT_VENV)
	$(AUDIT_VENV)/bin/pip install $(AUDIT_PIP) $(AUDIT_PINS)
	touch $@

audit-tools: $(AUDIT_VENV)/.stamp ## create the audit tool venv (pip-audit, bandit) under .tools/

audit: $(AUDIT_VENV)/.stamp ## bandit on web/workers/shared; pip-audit of the locks (needs a vulnerability service)
	$(AUDIT_VENV)/bin/bandit -q -c .bandit.yaml -r web workers shared
	@echo "bandit: no findings beyond the justified skips in .bandit.yaml"
	@report=$$(mktemp); errors=$$(mktemp); trap 'rm -f "$$report" "$$errors"' EXIT; \
	$(AUDIT_VENV)/bin/pip-audit -r requirements/dev.txt --no-deps --disable-pip \
	  --vulnerability-service $(AUDIT_SERVICE) --progress-spinner off --timeout 20 \
	  --format json --output "$$report" $(AUDIT_IGNORE) 2>"$$errors"; \
	$(AUDIT_VENV)/bin/python -c "$$AUDIT_SUMMARY" "$$report" "$$errors" \
	  "$(AUDIT_SERVICE)" "$(AUDIT_REQUIRE_SERVICE)"

# Reads pip-audit's JSON report: exit 1 on any known vulnerability, and when nothing (or not
# everything) could be audited and AUDIT_REQUIRE_SERVICE=1.
define AUDIT_SUMMARY
import json, sys
report, errors, service, require = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
try:
    with open(report) as fh:
        deps = json.load(fh)["dependencies"]
except (OSError, ValueError, KeyError):
    deps = None
if deps is None:
    with open(errors) as fh:
        lines = [line for line in fh.read().splitlines() if line.strip()]
    print(f"pip-audit: NOT AUDITED - the {service} vulnerability service failed:", file=sys.stderr)
    print("    " + (lines[-1] if lines else "no report and no error"), file=sys.stderr)
    sys.exit(1 if require else 0)
vulns = [(d, v) for d in deps for v in d.get("vulns", [])]
skipped = [d for d in deps if "skip_reason" in d]
for d, v in vulns:
    fixes = ", ".join(v.get("fix_versions") or []) or "none yet"
    print(f"pip-audit: {d['name']} {d['version']}: {v['id']} (fixed in: {fixes})", file=sys.stderr)
if skipped:
    names = ", ".join(d["name"] for d in skipped[:8]) + (", ..." if len(skipped) > 8 else "")
    print(
        f"pip-audit: NOT AUDITED - {len(skipped)} of {len(deps)} pinned packages could not be "
        f"checked: the {service} vulnerability service did not answer for them ({names}). "
        f"First reason: {skipped[0]['skip_reason']}",
        file=sys.stderr,
    )
if vulns:
    sys.exit(1)
if skipped:
    sys.exit(1 if require else 0)
print(f"pip-audit: {len(deps)} pinned packages, no known vulnerabilities ({service})")
endef
export AUDIT_SUMMARY
