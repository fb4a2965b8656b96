# Developer entry points. `make test` is the one CI runs (see .ci/run and README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# system-deps: openssl, promtool/Prometheus and Alertmanager (tests/cluster/system-deps.sh).
.PHONY: test lint unit e2e control-plane tools system-deps run demo demo-stop e2e-kind bench bench-micro bench-instructions bench-checkpoint bench-pages bench-slots bench-sync status-picture prometheusrule dashboards dashboard-pictures clean

# The virtualenv is rebuilt whenever pyproject.toml changes. pip >= 25.1 reads the PEP 735
# dependency groups (test, lint, dev).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade 'pip>=25.1'
	$(BIN)/pip install --quiet -e . --group dev
	touch $@

# pint (built from its Go module, cached) lints the rules and both generated copies offline.
RULE_COPIES := deploy/prometheus-operator/prometheusrule.yaml \
	deploy/helm/kube-batch-exporter/files/prometheusrule-groups.yaml

lint: $(STAMP)
	$(BIN)/ruff check exporter tests bench demo alerts grafana
	$(BIN)/ruff format --check exporter tests bench demo alerts grafana
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile
	$$(bash tests/cluster/build-tool.sh pint) --no-color --config alerts/pint.hcl lint \
	  $(wildcard alerts/*.yaml) $(RULE_COPIES)

# Builds etcd, kube-apiserver, kube-controller-manager, kubectl and kwok from Go modules once
# per version (cold: ~12 min on 2 cores; cached: instant).
control-plane:
	bash tests/cluster/build.sh >/dev/null

# From Go modules, cached by version: helm, prometheus-operator's CRDs and kube-score for the
# deploy tests; Prometheus 3 and the current Alertmanager for the rule and live tests.
tools:
	bash tests/cluster/build-tool.sh helm >/dev/null
	bash tests/cluster/build-tool.sh monitoring-crds >/dev/null
	bash tests/cluster/build-tool.sh kube-score >/dev/null
	bash tests/cluster/build-tool.sh prometheus >/dev/null
	bash tests/cluster/build-tool.sh alertmanager >/dev/null

system-deps:
	bash tests/cluster/system-deps.sh

# Two workers, one test file each at a time (--dist loadfile): every worker starts its own
# control plane and exporter for the e2e files it gets.
PYTEST_PARALLEL := -n 2 --dist loadfile

test: lint control-plane tools system-deps
	$(BIN)/pytest $(PYTEST_PARALLEL)

unit: $(STAMP)
	$(BIN)/pytest -m "not e2e"

e2e: $(STAMP) control-plane tools system-deps
	$(BIN)/pytest -m e2e $(PYTEST_PARALLEL)

run: $(STAMP)
	$(BIN)/kube-batch-exporter $(ARGS)

# The e2e suite on a kind cluster, for contributors with Docker (not runnable in our CI).
e2e-kind: $(STAMP)
	kind create cluster --name kbe-e2e --kubeconfig $(CURDIR)/.kind-kubeconfig
	KBE_E2E_KUBECONFIG=$(CURDIR)/.kind-kubeconfig $(BIN)/pytest -m e2e; \
	  rc=$$?; kind delete cluster --name kbe-e2e; exit $$rc

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .kind-kubeconfig .bench-micro.json

demo: $(STAMP) control-plane system-deps
	$(BIN)/python -m demo.run

demo-stop: $(STAMP)
	$(BIN)/python -m tests.cluster.controlplane down .demo

# Both exporters on the module-built control plane at sizes S and M (ARGS="--sizes S,M,L
# --profile" for more), plus pytest-benchmark micro-benchmarks; writes docs/benchmarks.md.
bench: $(STAMP) control-plane
	$(BIN)/pip install --quiet --group bench
	$(BIN)/pytest bench/test_hotpaths.py -q -p no:cacheprovider --benchmark-only \
	  --benchmark-json=.bench-micro.json
	$(BIN)/python -m bench.cluster --micro-json .bench-micro.json $(ARGS)

# Checkpoint size, write and restore time at L (figures in docs/performance.md).
bench-checkpoint: $(STAMP)
	$(BIN)/python -m bench.checkpoint $(ARGS)

# Memory per object and /metrics build time (figures in docs/performance.md).
bench-micro: $(STAMP)
	$(BIN)/python -m bench.micro

# Instructions per Job event and per scrape under callgrind (repeatable where timings are not).
bench-instructions: $(STAMP)
	$(BIN)/python -m bench.instructions --jobs 2000 --scrapes 5

# CPU of the initial sync in process, the L fleet through the production wiring.
bench-sync: $(STAMP)
	$(BIN)/python -m bench.sync $(ARGS)

# CPU cost of schedule tracking for 10,000 CronJobs over a simulated hour.
bench-slots: $(STAMP)
	$(BIN)/python -m bench.slots --cronjobs 10000
	$(BIN)/python -m bench.slots --cronjobs 10000 --missing 1.0

# Regenerate deploy/prometheus-operator/prometheusrule.yaml from alerts/*.yaml.
prometheusrule: $(STAMP)
	$(BIN)/python alerts/render.py

# Regenerate grafana/dashboards/*.json and the provisioning ConfigMap from grafana/dashboards.py.
dashboards: $(STAMP)
	$(BIN)/python -m grafana.generate

# Draw docs/dashboards/*.png from the demo's Prometheus (run `make demo` in another shell first).
# The status page's render time, size and memory per owner at 3,000 owners (docs/performance.md).
bench-pages: $(STAMP)
	$(BIN)/python -m bench.pages

# docs/status.png: the demo's status page in headless Chromium (run `make demo` first).
status-picture: $(STAMP)
	$(BIN)/python -m demo.picture $(ARGS)

dashboard-pictures: $(STAMP)
	$(BIN)/python -m grafana.pictures $(ARGS)
