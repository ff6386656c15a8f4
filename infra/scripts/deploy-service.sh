#!/usr/bin/env bash
# Roll one ECS service to another tag of its image and wait until the service is stable.
#   deploy-service.sh CLUSTER SERVICE CONTAINER TAG
# Registers a copy of the running task definition with only the image tag changed, points the
# service at it (rolling deployment, circuit breaker with rollback) and waits. Rolling back is the
# same call with an older tag: tags are immutable, so an old tag is exactly the old image.
set -euo pipefail
cluster="$1" service="$2" container="$3" tag="$4"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

current="$(aws ecs describe-services --cluster "$cluster" --services "$service" \
  --query 'services[0].taskDefinition' --output text)"
aws ecs describe-task-definition --task-definition "$current" --query taskDefinition \
  > "$work/current.json"
image="$(jq -r --arg c "$container" '.containerDefinitions[] | select(.name == $c) | .image' \
  "$work/current.json")"
[[ -n "$image" ]] || { echo "no container $container in $current" >&2; exit 1; }
next_image="${image%:*}:$tag"

if [[ "$image" == "$next_image" ]]; then
  echo "$service already runs $next_image"
else
  jq --arg c "$container" --arg i "$next_image" '
    .containerDefinitions |= map(if .name == $c then .image = $i else . end)
    | del(.taskDefinitionArn, .revision, .status, .requiresAttributes, .compatibilities,
          .registeredAt, .registeredBy, .deregisteredAt)' "$work/current.json" > "$work/next.json"
  next="$(aws ecs register-task-definition --cli-input-json "file://$work/next.json" \
    --query taskDefinition.taskDefinitionArn --output text)"
  echo "$service: $image -> $next_image ($next)"
  aws ecs update-service --cluster "$cluster" --service "$service" --task-definition "$next" \
    --query 'service.deployments[0].id' --output text
fi
echo "waiting for $service to become stable"
aws ecs wait services-stable --cluster "$cluster" --services "$service"
aws ecs describe-services --cluster "$cluster" --services "$service" \
  --query 'services[0].{running: runningCount, desired: desiredCount, taskDefinition: taskDefinition}'
