#!/usr/bin/env bash
# Decide what a run of .github/workflows/deploy.yml does; prints key=value lines for
# $GITHUB_OUTPUT:
#   tag=<image tag>     the commit SHA being deployed, or the tag asked for (rollback)
#   build=true|false    build and push the images (not when redeploying an existing tag)
#   infra=true|false    infra/ changed since the commit the web service runs now (or
#                       shared/model/taskmsg.py, which builds the roll gate's message at synth)
# Env: HEAD_SHA (commit to deploy), INPUT_TAG (optional existing tag), CLUSTER, WEB_SERVICE.
set -euo pipefail
: "${HEAD_SHA:?}" "${CLUSTER:?}" "${WEB_SERVICE:?}"
here="$(cd "$(dirname "$0")" && pwd)"

valid_tag='^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$'
if [[ -n "${INPUT_TAG:-}" ]]; then
  [[ "$INPUT_TAG" =~ $valid_tag ]] || { echo "invalid image tag: $INPUT_TAG" >&2; exit 2; }
  echo "tag=$INPUT_TAG"
  echo "build=false"
  echo "infra=false"
  exit 0
fi

echo "tag=$HEAD_SHA"
echo "build=true"
deployed="$("$here/current-image-tag.sh" "$CLUSTER" "$WEB_SERVICE" 2>/dev/null || true)"
if [[ -z "$deployed" ]] || ! git cat-file -e "${deployed}^{commit}" 2>/dev/null; then
  echo "infra=true"   # first deploy, or the running tag is no commit we know: be safe
elif git diff --quiet "$deployed" "$HEAD_SHA" -- infra/ shared/model/taskmsg.py; then
  echo "infra=false"
else
  echo "infra=true"
fi
