# The two commands a new machine needs: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SITE = $(shell $(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
PROTOS := $(shell find proto -name '*.proto' | sort)
export PYTHONPATH := $(CURDIR):$(CURDIR)/gen/python

.PHONY: install gen gen-check lint test run operator bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'

# gen/: Python messages + gRPC stubs + typing stubs, the descriptor set, Envoy's config, OpenAPI.
gen: install
	rm -rf gen/python && mkdir -p gen/python gen/openapi
	$(BIN)/python -m grpc_tools.protoc -Iproto -I$(SITE) \
	  --python_out=gen/python --pyi_out=gen/python --grpc_python_out=gen/python \
	  --descriptor_set_out=gen/descriptor.binpb --include_imports --include_source_info $(PROTOS)
	$(BIN)/python -m edge.openapi --descriptor gen/descriptor.binpb --out gen/openapi/crm.openapi.json
	$(BIN)/python -m edge.envoy_config --descriptor gen/descriptor.binpb --out envoy/envoy.yaml

# Fails when gen/ or envoy/ differ from what the protos produce.
gen-check: gen
	git diff --exit-code --stat -- gen envoy || (echo "gen/ is stale: run 'make gen' and commit"; exit 1)

lint: install
	$(BIN)/buf lint gen/descriptor.binpb --path crm --config buf.yaml
	$(BIN)/ruff check services edge tests

test: install gen-check
	$(BIN)/buf lint gen/descriptor.binpb --path crm --config buf.yaml
	$(BIN)/ruff check services edge tests
	$(BIN)/python -m pytest -q -p no:cacheprovider

run: install
	$(BIN)/python -m services.devstack --data-dir .data --port 8080

# A platform operator for the stack `make run` serves (it writes .data/crm.env):
#   make operator EMAIL=ops@example.com PASSWORD='a-long-passphrase'
operator: install
	@test -f .data/crm.env || (echo "start the stack first (make run): .data/crm.env is missing"; exit 1)
	set -a && . ./.data/crm.env && set +a && \
	  $(BIN)/python -m services.tenants.operator create --email "$(EMAIL)" --password "$(PASSWORD)"

clean:
	rm -rf .data
