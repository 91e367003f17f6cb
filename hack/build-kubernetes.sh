#!/usr/bin/env bash
# Builds the Kubernetes control-plane binaries the lab runs, from the pinned
# tools module in hack/tools/kubernetes, into a cache folder keyed by version.
# A binary already in the cache is reused; delete the folder to force a rebuild.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
mod="$root/hack/tools/kubernetes"
version=$(awk '($1 == "k8s.io/kubernetes" && $2 ~ /^v/) {print $2} ($1 == "require" && $2 == "k8s.io/kubernetes") {print $3}' "$mod/go.mod" | head -n 1)
if [[ -z "$version" ]]; then
  echo "build-kubernetes: cannot read the k8s.io/kubernetes version from $mod/go.mod" >&2
  exit 1
fi
out="${KUBE_CACHE_DIR:-$root/_output/cache/kubernetes}/$version/bin"
mkdir -p "$out"

major=${version#v}; major=${major%%.*}
minor=${version#v*.}; minor=${minor%%.*}
ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

for bin in ${KUBE_BINARIES:-kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl}; do
  if [[ -x "$out/$bin" ]]; then
    continue
  fi
  echo "build-kubernetes: building $bin $version (cold builds take minutes)"
  (cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$out/$bin.tmp" "k8s.io/kubernetes/cmd/$bin")
  mv "$out/$bin.tmp" "$out/$bin"
done
echo "$out"
