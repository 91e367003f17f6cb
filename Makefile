# antrea: an Open vSwitch CNI for Kubernetes, and antrea-lab to run it.
# `make lab` and `make test` work on a fresh machine: they install what they
# need (apt, pinned Go tools) and cache builds under _output/.

SHELL := /bin/bash
GO ?= go
ROOT := $(CURDIR)
BIN := $(ROOT)/bin
TOOLS := $(ROOT)/_output/tools/bin
KUBE_VERSION := $(shell awk '$$1 == "k8s.io/kubernetes" && $$2 ~ /^v/ {print $$2; exit}' hack/tools/kubernetes/go.mod)
KUBE_BIN := $(ROOT)/_output/cache/kubernetes/$(KUBE_VERSION)/bin
STATICCHECK_VERSION := v0.8.2
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/ovs-cni/antrea/pkg/lab/cli.KubeVersion=$(KUBE_VERSION) -X github.com/ovs-cni/antrea/pkg/version.Version=$(VERSION)
LAB_NODES ?= 2
E2E_TIMEOUT ?= 40m

BINARIES := antrea-agent antrea-controller antrea-cni antrea-ovs antctl antrea-lab antrea-lab-kubelet lab-agnhost
CNI_PLUGINS := github.com/containernetworking/plugins/plugins/main/bridge \
               github.com/containernetworking/plugins/plugins/ipam/host-local \
               github.com/containernetworking/plugins/plugins/main/loopback

.PHONY: all build deps kube lab lab-down test unit e2e bench lint generate manifest manifest-check clean

all: build

deps:
	@hack/install-deps.sh

build:
	@mkdir -p $(BIN)/cni
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ $(addprefix ./cmd/,$(BINARIES))
	$(GO) build -o $(BIN)/cni/ $(CNI_PLUGINS)

kube:
	@hack/build-kubernetes.sh >/dev/null

lab: deps build kube
	$(BIN)/antrea-lab up --nodes $(LAB_NODES)
	hack/lab-demo.sh

lab-down: build
	$(BIN)/antrea-lab down

unit: deps
	$(GO) test -count=1 ./pkg/... ./cmd/...

e2e: deps build kube
	@mkdir -p _output
	$(GO) test -count=1 -timeout $(E2E_TIMEOUT) -v ./test/e2e/ 2>&1 | tee _output/e2e.log; exit $${PIPESTATUS[0]}

test: deps lint manifest-check unit e2e

# build/yamls/antrea.yml from its kustomize sources in build/yamls/base.
manifest: kube
	hack/generate-manifest.sh $(KUBE_BIN)/kubectl > build/yamls/antrea.yml

# CI: the checked-in manifest is what its sources render to.
manifest-check: kube
	@hack/generate-manifest.sh $(KUBE_BIN)/kubectl | diff -u build/yamls/antrea.yml - \
		|| { echo "build/yamls/antrea.yml is out of date: run 'make manifest' and commit it"; exit 1; }

bench: deps build kube
	@mkdir -p _output
	$(GO) test -count=1 -timeout 30m -run '^$$' -bench . -benchtime 1x ./test/e2e/ ./pkg/controller/networkpolicy/ ./pkg/agent/ ./pkg/agent/proxy/ ./pkg/agent/networkpolicy/ ./pkg/agent/flowexporter/ | tee _output/bench.log
	hack/bench-table.sh _output/bench.log

lint: $(TOOLS)/staticcheck
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt needed: $$bad"; exit 1; fi
	$(GO) vet ./...
	$(TOOLS)/staticcheck ./...

$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

generate:
	hack/generate-proto.sh
	hack/generate-ovsdb.sh
	hack/generate-apis.sh

clean:
	rm -rf $(BIN)
