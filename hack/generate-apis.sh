#!/usr/bin/env bash
# Regenerates the code of the Kubernetes-style API packages under pkg/apis
# from their hand-written types. The packages served by antrea-controller's
# own API server (PACKAGES below) get:
#   zz_generated.deepcopy.go        deepcopy-gen (DeepCopy, DeepCopyObject)
#   generated.proto, generated.pb.go go-to-protobuf + protoc-gen-gogo (the
#                                    gogo marshalling that the
#                                    application/vnd.kubernetes.protobuf
#                                    serializer needs)
#   pkg/apiserver/openapi/zz_generated.openapi.go
#                                    openapi-gen: the OpenAPI definitions of
#                                    the served types and the apimachinery
#                                    types they embed (the aggregated API
#                                    server needs them for its schema)
# The packages of custom resources (DEEPCOPY_ONLY_PACKAGES: CRDs, stored
# and served as JSON by the kube-apiserver, their schema in the CRD YAML)
# get zz_generated.deepcopy.go only.
# go-to-protobuf also writes the `protobuf:"..."` struct tags into the
# package's Go files (types.go); once written they fix the field numbers,
# so keep them when editing the types and give new fields new numbers.
#
# The generators are pinned in hack/tools/codegen/go.mod and built into
# _output/tools/bin; protoc is Debian's protobuf-compiler (installed by
# hack/install-deps.sh). The protos of k8s.io/apimachinery (ObjectMeta,
# ListMeta, IntOrString, ...) are referenced, not regenerated, from the
# module cache at the version the main go.mod pins. Run through
# `make generate`; never edit the output by hand.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS="$ROOT/_output/tools/bin"
TOOLS_MOD="$ROOT/hack/tools/codegen"
MODULE=github.com/ovs-cni/antrea
PACKAGES=(
  pkg/apis/controlplane/v1beta1
  pkg/apis/stats/v1alpha1
)
DEEPCOPY_ONLY_PACKAGES=(
  pkg/apis/crd/v1alpha1
)
# The apimachinery packages the API types may refer to; "-" means: read
# their types and protos, generate nothing for them.
APIMACHINERY_PACKAGES=(
  -k8s.io/apimachinery/pkg/util/intstr
  -k8s.io/apimachinery/pkg/api/resource
  -k8s.io/apimachinery/pkg/runtime/schema
  -k8s.io/apimachinery/pkg/runtime
  -k8s.io/apimachinery/pkg/apis/meta/v1
)
cd "$ROOT"

if ! command -v protoc >/dev/null 2>&1; then
  echo "generate-apis: protoc missing; run hack/install-deps.sh (apt package protobuf-compiler)" >&2
  exit 1
fi
# The generated descriptors depend on protoc; Debian bookworm's is 3.21.12.
PROTOC_EXPECTED=3.21.12
if [[ "$(protoc --version)" != "libprotoc $PROTOC_EXPECTED" ]]; then
  echo "generate-apis: warning: $(protoc --version), the checked-in code used $PROTOC_EXPECTED" >&2
fi

# Build the generators when missing or when the tools module changed.
# go-to-protobuf runs protoc-gen-gogo and goimports from PATH.
tool_pkgs=(
  golang.org/x/tools/cmd/goimports
  k8s.io/code-generator/cmd/deepcopy-gen
  k8s.io/code-generator/cmd/go-to-protobuf
  k8s.io/code-generator/cmd/go-to-protobuf/protoc-gen-gogo
  k8s.io/kube-openapi/cmd/openapi-gen
)
stamp="$TOOLS/.codegen.sum"
want=$(cat "$TOOLS_MOD/go.mod" "$TOOLS_MOD/go.sum" | sha256sum | cut -d' ' -f1)
missing=false
for pkg in "${tool_pkgs[@]}"; do
  [[ -x "$TOOLS/${pkg##*/}" ]] || missing=true
done
if $missing || [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "generate-apis: building $(awk '$1 == "k8s.io/code-generator" {print $1 "@" $2}' "$TOOLS_MOD/go.mod") into ${TOOLS#"$ROOT"/}"
  mkdir -p "$TOOLS"
  (cd "$TOOLS_MOD" && go build -o "$TOOLS/" "${tool_pkgs[@]}")
  echo "$want" >"$stamp"
fi
export PATH="$TOOLS:$PATH"

# go-to-protobuf and protoc find files by Go import path: the output tree
# maps this module's path to the repository, the include tree maps the
# imported protos into the module cache.
go mod download k8s.io/apimachinery github.com/gogo/protobuf
apimachinery_dir=$(go list -m -f '{{.Dir}}' k8s.io/apimachinery)
gogo_dir=$(cd "$TOOLS_MOD" && go mod download github.com/gogo/protobuf && go list -m -f '{{.Dir}}' github.com/gogo/protobuf)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src/$(dirname "$MODULE")" "$tmp/include/k8s.io" "$tmp/include/github.com/gogo"
ln -s "$ROOT" "$tmp/src/$MODULE"
ln -s "$apimachinery_dir" "$tmp/include/k8s.io/apimachinery"
ln -s "$gogo_dir" "$tmp/include/github.com/gogo/protobuf"

# Start from the hand-written files only, so that stale or broken generated
# code cannot leak into the next generation.
import_paths=()
for pkg in "${PACKAGES[@]}"; do
  rm -f "$pkg/zz_generated.deepcopy.go" "$pkg/generated.proto" "$pkg/generated.pb.go"
  import_paths+=("$MODULE/$pkg")
done
joined_paths=$(IFS=,; echo "${import_paths[*]}")

deepcopy-gen \
  --output-file zz_generated.deepcopy.go \
  --bounding-dirs "$joined_paths" \
  "${import_paths[@]}"

crd_paths=()
for pkg in "${DEEPCOPY_ONLY_PACKAGES[@]}"; do
  rm -f "$pkg/zz_generated.deepcopy.go"
  crd_paths+=("$MODULE/$pkg")
done
deepcopy-gen \
  --output-file zz_generated.deepcopy.go \
  --bounding-dirs "$(IFS=,; echo "${crd_paths[*]}")" \
  "${crd_paths[@]}"
for pkg in "${DEEPCOPY_ONLY_PACKAGES[@]}"; do
  echo "generate-apis: $pkg -> zz_generated.deepcopy.go"
done

go-to-protobuf \
  --output-dir "$tmp/src" \
  --proto-import "$tmp/include" \
  --packages "$joined_paths" \
  --apimachinery-packages "$(IFS=,; echo "${APIMACHINERY_PACKAGES[*]}")"

rm -f pkg/apiserver/openapi/zz_generated.openapi.go
openapi-gen \
  --output-dir pkg/apiserver/openapi \
  --output-pkg "$MODULE/pkg/apiserver/openapi" \
  --output-file zz_generated.openapi.go \
  --report-filename /dev/null \
  k8s.io/apimachinery/pkg/apis/meta/v1 \
  k8s.io/apimachinery/pkg/runtime \
  k8s.io/apimachinery/pkg/util/intstr \
  k8s.io/apimachinery/pkg/version \
  "${import_paths[@]}"
echo "generate-apis: pkg/apiserver/openapi/zz_generated.openapi.go"

# go-to-protobuf rewrote the struct tags of the package's (non-test) files.
for pkg in "${PACKAGES[@]}"; do
  gofmt -w $(find "$pkg" -maxdepth 1 -name '*.go' ! -name '*_test.go')
  echo "generate-apis: $pkg -> zz_generated.deepcopy.go generated.proto generated.pb.go"
done
