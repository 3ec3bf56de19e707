# cnfs.netlab build and test plumbing.
#
#   make setup   OS packages, .venv, .collections symlink (idempotent, fast when done)
#   make test    everything CI runs: lint sanity unit integration system molecule, then vagrant
#   make test-quick   the same without the Vagrant tier (no VMs: minutes less)
#   make demo    build the lab, the overlay, and verify it (inventory/netns)
#   make bench   benchmarks/run.py
#   make clean   remove .venv build .collections and caches
#   single tiers: lint test-sanity test-unit test-property test-integration [TARGETS=netns] test-system test-molecule
#                 test-vagrant
#
# Every target runs the tools from .venv. Run as root: the lab, the integration tests and
# the OS packages need it.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
PY_VERSION := 3.11
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export DEBIAN_FRONTEND := noninteractive
# CI logs are files: no colour escapes from ansible-lint and molecule.
ifeq ($(CI),true)
export NO_COLOR := 1
endif

# Tools the lab, the tests and the benchmarks call on the host.
OS_PACKAGES := iproute2 socat iperf3 tcpdump graphviz python3-venv git rsync make procps util-linux shellcheck iputils-ping

# The venv is rebuilt when the requirements change: the stamp's name carries their hash.
REQ_FILES := requirements.txt requirements-dev.txt
REQ_HASH := $(shell cat $(REQ_FILES) 2>/dev/null | sha256sum | cut -c1-16)
VENV_STAMP := $(VENV)/.installed-$(REQ_HASH)

# ansible-test needs the tree under .../ansible_collections/cnfs/netlab and uses the real cwd,
# so sanity and integration run in a fresh copy of the tracked + untracked-not-ignored files.
COLLECTION_COPY := $(CURDIR)/build/sanity/ansible_collections/cnfs/netlab
ANSIBLE_TEST := ansible-test
ANSIBLE_TEST_ENV := --python $(PY_VERSION) --color no

.PHONY: help setup os-packages venv collections-link ansible-test-pip test test-quick lint test-sanity test-unit \
	test-property test-integration test-system test-molecule demo bench clean collection-copy build

help:
	@sed -n '3,10s/^#  //p' $(firstword $(MAKEFILE_LIST))

# ---------------------------------------------------------------- setup

setup: os-packages venv collections-link ansible-test-pip

os-packages:
	@missing=""; \
	for p in $(OS_PACKAGES); do \
		dpkg -s "$$p" >/dev/null 2>&1 || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "Installing OS packages:$$missing"; \
		apt-get update -qq; \
		apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

venv: $(VENV_STAMP)

$(VENV_STAMP):
	@if ! $(VENV)/bin/python -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then \
		echo "Creating $(VENV)"; rm -rf $(VENV); $(PYTHON) -m venv $(VENV); \
	fi
	@echo "Installing $(REQ_FILES) into $(VENV)"
	@# This machine's pip.conf names local indexes that may be absent: drop only that warning.
	$(VENV)/bin/python -m pip install -q --no-input -r requirements-dev.txt 2>&1 | \
		{ grep -v 'is ignored: it is neither a file nor a directory' || true; }
	@rm -f $(VENV)/.installed-*
	@touch $@

# Lets playbooks and unit tests find the collection as cnfs.netlab from a checkout.
collections-link:
	@mkdir -p .collections/ansible_collections/cnfs
	@[ "$$(readlink .collections/ansible_collections/cnfs/netlab)" = "../../.." ] || \
		ln -sfn ../../.. .collections/ansible_collections/cnfs/netlab

# ansible-test bootstraps pip into each sanity venv with a get-pip.py it downloads from a host
# that is not reachable here; give it .ci/get_pip.py and the same pip release as a wheel from PyPI.
ANSIBLE_TEST_CACHE := $(HOME)/.ansible/test/cache
ansible-test-pip: venv
	@v=$$(cd / && python -c 'from types import SimpleNamespace as N; \
		from ansible_test._internal.python_requirements import get_venv_packages as g; \
		print(g(N(version="$(PY_VERSION)"))["pip"])'); \
	shim=$(ANSIBLE_TEST_CACHE)/get_pip_$${v//./_}.py; \
	if ! ls $(ANSIBLE_TEST_CACHE)/pip-$$v-*.whl >/dev/null 2>&1; then \
		python -m pip download -q --no-deps --only-binary :all: -d $(ANSIBLE_TEST_CACHE) "pip==$$v" 2>&1 | \
			{ grep -v 'is ignored: it is neither a file nor a directory' || true; }; \
	fi; \
	cmp -s .ci/get_pip.py "$$shim" || install -D -m 0644 .ci/get_pip.py "$$shim"

# ---------------------------------------------------------------- tests

# Two lanes at once (tests/utils/tiers.py): the integration tier (the longest, in a collection copy of its own)
# beside the others (lint, sanity, unit, property, system, Molecule: one after another); then, alone, the Vagrant
# tier (its emulated VMs want both cores). Each tier gets a /dev/null of its own as stdin and its output in
# build/logs/TIER.log, printed when it ends, with its time.
LANES := test-integration lint,test-sanity,test-unit,test-property,test-system,test-molecule
test: setup
	@python3 tests/utils/sane_stdio.py "before make test"
	@python3 tests/utils/tiers.py $(LANES) -- test-vagrant

test-quick: setup
	@python3 tests/utils/sane_stdio.py "before make test-quick"
	@python3 tests/utils/tiers.py $(LANES)

# antsibull-docs reads the plugins through ansible-doc, which needs the collection under ansible_collections/.
lint: setup collection-copy
	ruff check .
	shellcheck -x .ci/run $$(git ls-files -co --exclude-standard '*.sh')
	ansible-lint
	cd $(COLLECTION_COPY) && antsibull-docs lint-collection-docs --plugin-docs .

collection-copy:
	@$(call copy_collection,$(COLLECTION_COPY))

# $(call copy_collection,DIR): the tracked and untracked-not-ignored files in DIR, a repository of its own
# (otherwise ansible-test lists files through the enclosing checkout, where build/ is ignored, and skips every
# target without failing).
define copy_collection
rm -rf $(1) && mkdir -p $(1); \
git ls-files -co --exclude-standard -z | rsync -a --from0 --ignore-missing-args --files-from=- ./ $(1)/; \
cd $(1) && git init -q && git add -A
endef

test-sanity: setup collection-copy
	cd $(COLLECTION_COPY) && $(ANSIBLE_TEST) sanity $(ANSIBLE_TEST_ENV) --local

test-unit: setup
	@if [ -z "$$(find tests/unit -name 'test_*.py' 2>/dev/null)" ]; then \
		echo "test-unit: no tests under tests/unit"; exit 0; \
	fi; \
	PYTHONPATH=$(CURDIR)/.collections pytest tests/unit

# Root, in namespaces of their own: the modules' code run in-process against the real kernel (regression
# tests, and hypothesis property tests with a fixed seed and a bounded number of examples).
test-property: setup
	PYTHONPATH=$(CURDIR)/.collections pytest -p no:cacheprovider tests/property

# Root and destructive by design: the targets create namespaces, links and routes. A collection copy of its own
# (build/integration), so that the tier runs beside lint and sanity (make test's lanes), which use build/sanity.
INTEGRATION_COPY := $(CURDIR)/build/integration/ansible_collections/cnfs/netlab
test-integration: setup
	@if [ -z "$$(find tests/integration/targets -mindepth 1 -maxdepth 1 -type d 2>/dev/null)" ]; then \
		echo "test-integration: no targets under tests/integration/targets"; exit 0; \
	fi
	@$(call copy_collection,$(INTEGRATION_COPY))
	cd $(INTEGRATION_COPY) && $(ANSIBLE_TEST) integration $(ANSIBLE_TEST_ENV) --local \
		--allow-root --allow-destructive $(TARGETS)

# Two pytest workers, a test file each at a time (a file's tests share its lab), except files that spread their
# tests (tests/system/conftest.py): every lab has a name of its own, and the ansible runs leave CPU idle often
# enough that two at once take ~0.7x the time of one after the other.
SYSTEM_WORKERS ?= 2
test-system: setup
	@if [ -z "$$(find tests/system -name 'test_*.py' 2>/dev/null)" ]; then \
		echo "test-system: no tests under tests/system"; exit 0; \
	fi; \
	PYTHONPATH=$(CURDIR)/.collections pytest -n $(SYSTEM_WORKERS) --dist loadgroup tests/system

test-molecule: setup
	@if ! compgen -G 'molecule/*/molecule.yml' >/dev/null; then \
		echo "test-molecule: no scenarios under molecule/"; exit 0; \
	fi; \
	molecule test --all --exclude vagrant  # molecule/vagrant needs the Vagrant lab: make test-vagrant

# ---------------------------------------------------------------- use

demo: setup
	ansible-playbook -i inventory/netns playbooks/lab.yml
	ansible-playbook -i inventory/netns playbooks/overlay.yml
	ansible-playbook -i inventory/netns playbooks/verify.yml

bench: setup
	$(VENV)/bin/python benchmarks/run.py

build: setup
	@mkdir -p build
	ansible-galaxy collection build --force --output-path build .

clean:
	rm -rf .venv build .collections .pytest_cache .ruff_cache tests/output
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# ---------------------------------------------------------------- Vagrant lab (docs/vagrant.md)
# Real VMs (software emulation where KVM is unusable) in libvirt namespaces of the lab's own; minutes, not
# seconds. The last tier of `make test`.
VAGRANT_LAB := CNFS_VAGRANT_ISOLATED=1 vagrant/lab.sh
.PHONY: test-vagrant vagrant-box vagrant-up vagrant-destroy

test-vagrant: setup
	vagrant/test.sh

vagrant-box:
	$(VAGRANT_LAB) deps
	$(VAGRANT_LAB) box

vagrant-up: setup vagrant-box
	$(VAGRANT_LAB) ns-up
	$(VAGRANT_LAB) up

vagrant-destroy:
	$(VAGRANT_LAB) ns-down
