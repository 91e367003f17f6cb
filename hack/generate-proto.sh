#!/usr/bin/env bash
# Regenerates the Go code of the protobuf APIs under api/ into pkg/apis/.
# Installs the pinned protoc plugins into _output/tools/bin; protoc itself is
# Debian's protobuf-compiler (hack/install-deps.sh installs it).
set -euo pipefail

PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS="$ROOT/_output/tools/bin"
MODULE=github.com/ovs-cni/antrea
cd "$ROOT"

if ! command -v protoc >/dev/null 2>&1; then
  echo "generate-proto: protoc missing; run hack/install-deps.sh (apt package protobuf-compiler)" >&2
  exit 1
fi

# The generated headers name the protoc version; Debian bookworm's is 3.21.12.
PROTOC_EXPECTED=3.21.12
if [[ "$(protoc --version)" != "libprotoc $PROTOC_EXPECTED" ]]; then
  echo "generate-proto: warning: $(protoc --version), the checked-in code used $PROTOC_EXPECTED" >&2
fi

# install_tool BINARY PACKAGE VERSION: go install unless the binary at hand
# already reports VERSION.
install_tool() {
  local bin=$1 pkg=$2 version=$3
  if [[ -x "$TOOLS/$bin" ]] && "$TOOLS/$bin" --version 2>/dev/null | grep -q "${version#v}"; then
    return
  fi
  echo "generate-proto: installing $pkg@$version"
  GOBIN="$TOOLS" go install "$pkg@$version"
}

mkdir -p "$TOOLS"
install_tool protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
install_tool protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"

mapfile -t protos < <(cd "$ROOT" && find api -name '*.proto' | sort)
for proto in "${protos[@]}"; do
  # Only the generated files are removed: hand-written files live beside them.
  out="pkg/apis/$(dirname "${proto#api/}")"
  mkdir -p "$out"
  rm -f "$out"/*.pb.go
  PATH="$TOOLS:$PATH" protoc \
    --proto_path=api \
    --go_out=. --go_opt=module="$MODULE" \
    --go-grpc_out=. --go-grpc_opt=module="$MODULE" \
    "${proto#api/}"
  echo "generate-proto: $proto -> $out"
done
