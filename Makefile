# partner-operator — run `make help` for the targets.

# The Kubernetes version of the control-plane binaries hack/setup-envtest.sh
# builds; keep in step with internal/controlplane.KubernetesVersion.
K8S_VERSION ?= v1.37.2
ENVTEST_DIR ?= $(CURDIR)/bin/k8s/$(K8S_VERSION)
KUBECTL ?= $(ENVTEST_DIR)/kubectl
LOCAL_KUBECONFIG ?= bin/local/kubeconfig
# The release this tree is: VERSION is the one place it is written. `make
# manifests` puts its image tag (v$(VERSION)) into config/manager, from which
# config/default, the chart and dist/install.yaml take it; `make deploy`
# deploys IMG, that release unless told otherwise (a tag or a digest:
# IMG=ghcr.io/roompro/partner-operator@sha256:...).
VERSION := $(shell cat $(CURDIR)/VERSION)
RELEASE_IMG = ghcr.io/roompro/partner-operator:v$(VERSION)
IMG ?= $(RELEASE_IMG)
# The overlay `make deploy` applies: config/default (the operator issues its
# own webhook certificates) or config/cert-manager. Re-apply the one that was
# installed (docs/upgrade.md).
OVERLAY ?= config/default
CONTROLLER_GEN ?= go tool controller-gen
# Extra flags for `go test`, for example GO_TEST_FLAGS=-v or -run=Expiry.
GO_TEST_FLAGS ?=

# Go 1.27.3 builds and tests everything (encoding/json/v2 is in its standard
# library): the go command fetches it from the Go module proxy on a machine
# that has an older Go. go.mod's toolchain line says the same to a plain `go`.
export GOTOOLCHAIN = go1.27.3

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: ## Generate the CRDs, RBAC and webhook configurations from the markers in the code.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd webhook paths="./..." output:crd:artifacts:config=config/crd/bases
	@sed -i.bak 's|^  newTag: .*|  newTag: v$(VERSION)|' config/manager/kustomization.yaml && rm config/manager/kustomization.yaml.bak

.PHONY: generate
generate: ## Generate the DeepCopy methods of the API types.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: fmt
fmt: ## Run go fmt.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

# golangci-lint and govulncheck are pinned in hack/tools/go.mod (a module of
# their own, so that their dependencies stay out of the product's go.mod);
# `go tool` builds them on first use and caches the binaries.
GOLANGCI_LINT ?= go tool -modfile=$(CURDIR)/hack/tools/go.mod golangci-lint
GOVULNCHECK ?= go tool -modfile=$(CURDIR)/hack/tools/go.mod govulncheck
# The Go vulnerability database is built offline from the golang.org/x/vulndb
# module pinned in hack/tools/vulndb/go.mod (its data/osv reports, indexed by
# its cmd/indexdb) into $(VULNDB_DIR)/<version>/, once per version.
VULNDB_MODFILE = $(CURDIR)/hack/tools/vulndb/go.mod
VULNDB_DIR ?= $(CURDIR)/bin/vulndb

.PHONY: lint
lint: ## Run golangci-lint (.golangci.yml) on the module and on bench/.
	$(GOLANGCI_LINT) run ./...
	cd bench && $(GOLANGCI_LINT) run ./...

.PHONY: lint-fix
lint-fix: ## Run golangci-lint and apply the fixes it can (formatting, modernize).
	$(GOLANGCI_LINT) run --fix ./...
	cd bench && $(GOLANGCI_LINT) run --fix ./...

.PHONY: vulncheck
vulncheck: ## Run govulncheck on the module against the pinned Go vulnerability database (offline).
	@version=$$(cd hack/tools/vulndb && go list -m -f '{{.Version}}' golang.org/x/vulndb); \
	db="$(VULNDB_DIR)/$$version"; \
	if [ ! -f "$$db/index/db.json" ]; then \
		echo "building the vulnerability database $$version into $$db (once)..."; \
		(cd hack/tools/vulndb && go mod download golang.org/x/vulndb); \
		data=$$(cd hack/tools/vulndb && go list -m -f '{{.Dir}}' golang.org/x/vulndb)/data/osv; \
		rm -rf "$$db.tmp"; mkdir -p "$(VULNDB_DIR)"; \
		go tool -modfile=$(VULNDB_MODFILE) indexdb -vulns "$$data" -out "$$db.tmp"; \
		rm -rf "$$db"; mv "$$db.tmp" "$$db"; \
	fi; \
	$(GOVULNCHECK) -db "file://$$db" ./...

.PHONY: setup-envtest
setup-envtest: ## Build etcd, kube-apiserver, kube-controller-manager and kubectl from the Go module proxy into bin/k8s/ (once).
	@./hack/setup-envtest.sh >/dev/null

# helm, pinned in hack/tools/helm/go.mod, for test/helm (bin/helm/<version>/).
.PHONY: setup-helm
setup-helm: ## Build helm from the Go module proxy into bin/helm/ (once; test/helm runs it).
	@./hack/setup-helm.sh >/dev/null

.PHONY: test
test: vet setup-envtest setup-helm ## Run go vet, the unit tests, the envtest suites (real etcd + kube-apiserver) and bench/'s OPA agreement test.
	KUBEBUILDER_ASSETS="$(ENVTEST_DIR)" go test -race -count=1 $(GO_TEST_FLAGS) ./...
	cd bench && go vet ./... && go test -count=1 ./...

# `make bench` runs every benchmark of BENCHMARKS.md and prints its tables.
# It takes about an hour, most of it the 100,000-room scale run; BENCH_SCALE=0
# leaves that out. No timing is asserted by `make test`.
BENCH_COUNT ?= 5
BENCH_SCALE ?= 1

.PHONY: bench
bench: setup-envtest ## Run the benchmarks of BENCHMARKS.md (about an hour; BENCH_SCALE=0 skips the scale run).
	go test ./internal/authz -run '^$$' -bench 'Decide(Room|SessionPolicy|TimeBound)$$' -benchmem -count $(BENCH_COUNT)
	go test ./internal/authzserver -run '^$$' -bench 'Handler$$' -benchmem -count $(BENCH_COUNT)
	go test ./internal/admission -run '^$$' -bench RoomUpdate -benchmem -count $(BENCH_COUNT)
	go test ./internal/authzserver -run '^$$' -bench WebhookLoad -benchtime=1x -count 5
	cd bench && OPA_RATIOS=1 go test ./opa -run TestPrintRatios -v -count=1
	KUBEBUILDER_ASSETS="$(ENVTEST_DIR)" go test ./test/perf -run '^$$' -bench . -benchtime=1x -timeout 30m -v
ifeq ($(BENCH_SCALE),1)
	KUBEBUILDER_ASSETS="$(ENVTEST_DIR)" go test ./test/scale -run '^$$' -bench . -benchtime=1x -timeout 180m -v
endif

# `make fuzz` runs every fuzz target for FUZZTIME (hack/fuzz.sh finds them);
# `make test` runs only their seeds. CI runs it with 30s.
FUZZTIME ?= 30s

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 30s); a failing input lands in the package's testdata/fuzz/.
	FUZZTIME=$(FUZZTIME) ./hack/fuzz.sh

.PHONY: verify-generated
verify-generated: manifests generate helm-chart ## Fail when the generated code, manifests or chart are not current.
	@if [ -n "$$(git status --porcelain -- api config dist/chart)" ]; then \
		git status --short -- api config dist/chart; git diff -- api config dist/chart | head -50; \
		echo "generated files are stale: run 'make manifests generate helm-chart' and commit the result"; exit 1; fi

##@ Build

.PHONY: build
build: ## Build the manager binary into bin/manager and the kubectl plugin into bin/kubectl-partner.
	go build -o bin/manager ./cmd/manager
	go build -o bin/kubectl-partner ./cmd/kubectl-partner

# `make run` starts a local control plane of its own (the embedded default,
# cmd/local: the manager binary itself links no control plane). It builds
# and execs the binary rather than `go run` it, so that Ctrl-C reaches the
# process that stops cleanly, and make exits 0 after that clean stop;
# `make run KUBECONFIG=path` runs cmd/manager against that cluster instead. The kubeconfig
# that `make run` itself writes never counts as a cluster to run against: its
# apiserver is gone once that `make run` stops.
RUN_EXTERNAL := $(if $(KUBECONFIG),$(if $(filter $(abspath $(LOCAL_KUBECONFIG)),$(abspath $(KUBECONFIG))),,yes),)

.PHONY: run
run: setup-envtest ## Run the manager in the foreground: on a local control plane, or on KUBECONFIG=... when given.
ifeq ($(RUN_EXTERNAL),yes)
	go run ./cmd/manager --kubeconfig "$(KUBECONFIG)"
else
	@go build -o bin/local/partner-operator-local ./cmd/local
	@KUBEBUILDER_ASSETS="$(ENVTEST_DIR)" KUBECTL="$(KUBECTL)" exec bin/local/partner-operator-local --local-kubeconfig "$(LOCAL_KUBECONFIG)"
endif

.PHONY: docker-build
docker-build: ## Build the manager image (needs a Docker engine).
	docker build -t $(IMG) .

##@ Deployment

.PHONY: install
install: setup-envtest ## Install the CRDs into the cluster of KUBECONFIG.
	$(KUBECTL) apply --server-side -k config/crd

# Deleting the CRDs deletes every customer's rooms, invitations, links, roles
# and assignments, in every namespace, for good: `make uninstall` does it only
# when told so (docs/upgrade.md, "Uninstalling").
.PHONY: uninstall
uninstall: setup-envtest ## Remove the CRDs and so EVERY customer object of them (needs DELETE_CUSTOMER_DATA=yes).
	@if [ "$(DELETE_CUSTOMER_DATA)" != "yes" ]; then \
		echo "make uninstall deletes the CRDs and with them every Room, Ticket, RoomReport, RoomGroup,"; \
		echo "UpdateRing, PartnerInvitation, PartnerLink, PartnerRole, RoomAssignment, PartnerChangeRequest"; \
		echo "and PartnerOrganization in the cluster of KUBECONFIG."; \
		echo "Run it as: make uninstall DELETE_CUSTOMER_DATA=yes"; exit 1; fi
	$(KUBECTL) delete --ignore-not-found -k config/crd

.PHONY: helm-chart
helm-chart: setup-envtest ## Regenerate the Helm chart dist/chart from config/ (make verify-generated checks it is current).
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(KUBECTL) kustomize config/default > "$$tmp/default.yaml"; \
	$(KUBECTL) kustomize config/cert-manager > "$$tmp/cert-manager.yaml"; \
	$(KUBECTL) kustomize config/customer-roles > "$$tmp/roles.yaml"; \
	go run ./hack/helmchart -default "$$tmp/default.yaml" -cert-manager "$$tmp/cert-manager.yaml" -roles "$$tmp/roles.yaml" -out dist/chart

# render-with-img renders the overlay $(1) with the manager's image IMG.
render-with-img = $(KUBECTL) kustomize $(1) | sed 's|image: $(RELEASE_IMG)$$|image: $(IMG)|'

.PHONY: deploy
deploy: setup-envtest ## Deploy the manager (IMG, OVERLAY) and the customer roles into the cluster of KUBECONFIG.
	@# config/default over an install of config/cert-manager would switch it
	@# to self-signed certificates: refused (docs/upgrade.md).
	@if [ "$(OVERLAY)" != config/cert-manager ] && \
		$(KUBECTL) get certificates.cert-manager.io -n partner-operator-system partner-operator-serving-cert >/dev/null 2>&1; then \
		echo "the cluster's partner-operator takes its certificate from cert-manager: run make deploy OVERLAY=config/cert-manager (docs/upgrade.md)"; exit 1; fi
	$(call render-with-img,$(OVERLAY)) | $(KUBECTL) apply --server-side -f -
	$(KUBECTL) apply --server-side -k config/customer-roles

.PHONY: build-installer
build-installer: setup-envtest ## Render OVERLAY (with IMG) into one dist/install.yaml.
	mkdir -p dist
	{ $(call render-with-img,$(OVERLAY)); \
	  echo "---"; $(KUBECTL) kustomize config/customer-roles; } > dist/install.yaml
	@echo "wrote dist/install.yaml; install with: kubectl apply --server-side -f dist/install.yaml"

# config/undeploy is config/default without the CRDs and the Namespace: the
# customer objects and the webhook's certificate Secrets stay.
.PHONY: undeploy
undeploy: setup-envtest ## Remove the manager and the customer roles from the cluster of KUBECONFIG (CRDs, customer objects and the namespace stay).
	$(KUBECTL) delete --ignore-not-found -k config/customer-roles
	$(KUBECTL) delete --ignore-not-found -k config/undeploy
