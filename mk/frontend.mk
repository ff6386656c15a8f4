# Frontend: React + Leaflet source in frontend/, built by Vite into frontend_dist/.
#
# frontend_dist/ is committed, so `make run` and the web image need no Node.js. test-frontend
# rebuilds into a temporary directory and fails when the committed copy differs from a fresh
# build (the build is reproducible: content-hashed names, no timestamps, no absolute paths).
# Needs Node.js ^20.19 or >= 22.12 and npm; packages come from the npm registry (npm ci).

FRONTEND_DIR   := frontend
FRONTEND_DIST  := frontend_dist
NPM            ?= npm
# npm ci writes this file last; it is newer than the lock file once node_modules is up to date.
FRONTEND_STAMP := $(FRONTEND_DIR)/node_modules/.package-lock.json

TEST_TARGETS += test-frontend
LINT_TARGETS += lint-frontend

.PHONY: frontend-deps frontend-build test-frontend lint-frontend

$(FRONTEND_STAMP): $(FRONTEND_DIR)/package.json $(FRONTEND_DIR)/package-lock.json
	cd $(FRONTEND_DIR) && $(NPM) ci --no-audit --no-fund
	@touch $@

frontend-deps: $(FRONTEND_STAMP) ## install the frontend's npm packages (npm ci) if the lock file changed

frontend-build: ## build the page into frontend_dist/ (npm ci && npm run build); commit the result
	cd $(FRONTEND_DIR) && $(NPM) ci --no-audit --no-fund && $(NPM) run build
	@touch $(FRONTEND_STAMP)

lint-frontend: $(FRONTEND_STAMP) ## type-check the frontend (tsc --noEmit)
	cd $(FRONTEND_DIR) && $(NPM) run --silent typecheck

test-frontend: $(FRONTEND_STAMP) ## frontend: vitest, type check, committed frontend_dist/ equals a fresh build
	cd $(FRONTEND_DIR) && $(NPM) run --silent test
	cd $(FRONTEND_DIR) && $(NPM) run --silent typecheck
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	( cd $(FRONTEND_DIR) && $(NPM) run --silent build -- --outDir "$$tmp/dist" --emptyOutDir --logLevel warn ) || exit 1; \
	if ! diff -r $(FRONTEND_DIST) "$$tmp/dist"; then \
	  echo "frontend_dist/ differs from a fresh build of frontend/: run 'make frontend-build' and commit frontend_dist/" >&2; \
	  exit 1; \
	fi; \
	echo "frontend_dist/ matches a fresh build"
