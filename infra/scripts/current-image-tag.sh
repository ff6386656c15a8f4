#!/usr/bin/env bash
# Print the image tag (a commit SHA) an ECS service runs now. Usage: current-image-tag.sh CLUSTER SERVICE
set -euo pipefail
cluster="$1" service="$2"
task_definition="$(aws ecs describe-services --cluster "$cluster" --services "$service" \
  --query 'services[0].taskDefinition' --output text)"
[[ -n "$task_definition" && "$task_definition" != "None" ]] || exit 1
image="$(aws ecs describe-task-definition --task-definition "$task_definition" \
  --query 'taskDefinition.containerDefinitions[0].image' --output text)"
echo "${image##*:}"
