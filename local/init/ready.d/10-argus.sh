#!/usr/bin/env bash
# LocalStack ready hook (also runnable by hand against any AWS-compatible endpoint):
#   1. `argus bootstrap`: the tables and the SNS topic (the code the moto tests use),
#   2. an execution role for the functions (emulators check that it exists),
#   3. `cargo lambda deploy --endpoint-url` of probe, pushgateway, evaluator, notifier, query,
#      with the crates' [package.metadata.lambda.deploy] plus the topic and table prefix.
#
# Inputs (environment; defaults fit the LocalStack container of local/docker-compose.yml):
#   ARGUS_ENDPOINT_URL  endpoint (default http://localhost:4566)
#   ARGUS_SRC           repository root (default /opt/argus)
#   ARGUS_TABLE_PREFIX  table/function prefix (default argus-)
#   ARGUS_BIN_DIR       where `argus` and the function binaries are, if not built with
#                       `cargo lambda build --profile lambda` (target/lambda/<name>/bootstrap)
#   ARGUS_ROLE_ARN      execution role to use instead of creating argus-local-lambda
set -euo pipefail

endpoint="${ARGUS_ENDPOINT_URL:-http://localhost:4566}"
src="${ARGUS_SRC:-/opt/argus}"
prefix="${ARGUS_TABLE_PREFIX:-argus-}"
functions=(probe pushgateway evaluator notifier query)
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}" AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-$AWS_REGION}"
[ -n "${CARGO_HOME:-}" ] && export PATH="$CARGO_HOME/bin:$PATH"

say() { printf '[argus] %s\n' "$*"; }
die() { printf '[argus] error: %s\n' "$*" >&2; exit 1; }

# A built binary: target/lambda/<name>/bootstrap (cargo lambda build), else ARGUS_BIN_DIR.
binary() {
  local name="$1"
  if [ -n "${ARGUS_BIN_DIR:-}" ] && [ -x "$ARGUS_BIN_DIR/$name" ]; then echo "$ARGUS_BIN_DIR/$name"; return; fi
  if [ -x "$src/target/lambda/$name/bootstrap" ]; then echo "$src/target/lambda/$name/bootstrap"; return; fi
  die "no $name binary: run \`cargo lambda build --profile lambda\` in $src first (or set ARGUS_BIN_DIR)"
}

cargo_lambda() {
  if command -v cargo-lambda >/dev/null 2>&1; then cargo-lambda lambda "$@"
  elif [ -x "$src/.venv/bin/cargo-lambda" ]; then "$src/.venv/bin/cargo-lambda" lambda "$@"
  else die "cargo-lambda not found (pip install cargo-lambda, or cargo install cargo-lambda)"; fi
}
command -v cargo >/dev/null 2>&1 || die "cargo not found: cargo lambda reads the manifests with \`cargo metadata\`"

# 1. Tables and topic.
argus="$(binary argus)"
say "bootstrap on $endpoint"
out="$("$argus" bootstrap --endpoint-url "$endpoint" --table-prefix "$prefix")" || die "argus bootstrap failed: $out"
printf '%s\n' "$out" | sed 's/^/[argus]   /'
topic="$(printf '%s\n' "$out" | sed -n 's/^ready: .* topic \(arn:[^ ]*\)$/\1/p')"
[ -n "$topic" ] || die "argus bootstrap reported no topic ARN"

# 2. Execution role.
role="${ARGUS_ROLE_ARN:-}"
if [ -z "$role" ]; then
  command -v awslocal >/dev/null 2>&1 || die "set ARGUS_ROLE_ARN (no awslocal here to create a role)"
  trust='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
  awslocal iam get-role --role-name argus-local-lambda >/dev/null 2>&1 \
    || awslocal iam create-role --role-name argus-local-lambda --assume-role-policy-document "$trust" >/dev/null
  role="$(awslocal iam get-role --role-name argus-local-lambda --query Role.Arn --output text)"
fi

# 3. Functions: a private lambda dir (the repository may be mounted read-only).
lambda_dir="$(mktemp -d)"
trap 'rm -rf "$lambda_dir"' EXIT
cd "$src"   # manifests and the `include`d infra/config resolve from here
for f in "${functions[@]}"; do
  mkdir -p "$lambda_dir/$f"
  cp "$(binary "$f")" "$lambda_dir/$f/bootstrap"
  say "deploy ${prefix}$f"
  cargo_lambda deploy --endpoint-url "$endpoint" --iam-role "$role" \
    --lambda-dir "$lambda_dir" --binary-name "$f" \
    --env-vars "ARGUS_TABLE_PREFIX=$prefix,ARGUS_TOPIC_ARN=$topic" --admerge \
    --output-format json "${prefix}$f" >/dev/null || die "cargo lambda deploy $f failed"
done
say "ready: tables, topic $topic, functions ${functions[*]/#/$prefix}"
