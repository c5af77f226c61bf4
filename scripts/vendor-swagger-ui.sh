#!/usr/bin/env bash
# Refresh the Swagger UI files that /docs serves (app/docs/swagger-ui/) from the official npm
# distribution, swagger-ui-dist, and record where they come from in SOURCE.
#
#   scripts/vendor-swagger-ui.sh 5.35.0
#
# `npm pack` checks the tarball against the registry's integrity hash; SOURCE keeps that hash
# and each file's sha256, which tests/operator/test_docs.py verifies on every run. Then run
# `make docs-check` (headless Chromium renders the page offline).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

version=${1:?usage: scripts/vendor-swagger-ui.sh VERSION}
target=app/docs/swagger-ui
files=(swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css favicon-32x32.png LICENSE NOTICE)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "swagger-ui-dist@$version" >/dev/null)
integrity=$(cd "$work" && npm view "swagger-ui-dist@$version" dist.integrity)
tar -xzf "$work/swagger-ui-dist-$version.tgz" -C "$work"

rm -rf "$target"
mkdir -p "$target"
for file in "${files[@]}"; do
  cp "$work/package/$file" "$target/$file"
done
{
  echo "# Swagger UI for /docs, copied by scripts/vendor-swagger-ui.sh; do not edit the files."
  echo "package swagger-ui-dist $version"
  echo "integrity $integrity"
  (cd "$target" && sha256sum "${files[@]}")
} > "$target/SOURCE"
echo "vendored swagger-ui-dist $version into $target"
