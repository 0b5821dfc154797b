# The two commands a new machine needs: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SITE = $(shell $(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
PROTOS := $(shell find proto -name '*.proto' | sort)
# Envoy's rate-limit protocol (wire-compatible subset), kept apart from the product's contracts.
RLS_PROTOS := $(shell find edge/ratelimit/proto -name '*.proto' | sort)
export PYTHONPATH := $(CURDIR):$(CURDIR)/gen/python

.PHONY: install gen gen-check lint test fuzz breaking run operator bench load clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'

# gen/: Python messages + gRPC stubs + typing stubs, the descriptor set, Envoy's config, OpenAPI;
# edge/ratelimit/proto/: the rate-limit service's stubs.
# Typing stubs come from mypy-protobuf: protoc's --pyi_out types extensions as bare FieldDescriptors.
gen: install
	rm -f edge/ratelimit/proto/*_pb2*.py edge/ratelimit/proto/*_pb2*.pyi
	$(BIN)/python -m grpc_tools.protoc -I. -I$(SITE) \
	  --plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy --plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc \
	  --python_out=. --grpc_python_out=. --mypy_out=quiet:. --mypy_grpc_out=quiet:. $(RLS_PROTOS)
	rm -rf gen/python && mkdir -p gen/python gen/openapi
	$(BIN)/python -m grpc_tools.protoc -Iproto -I$(SITE) \
	  --plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy --plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc \
	  --python_out=gen/python --grpc_python_out=gen/python \
	  --mypy_out=quiet:gen/python --mypy_grpc_out=quiet:gen/python \
	  --descriptor_set_out=gen/descriptor.binpb --include_imports --include_source_info $(PROTOS)
	$(BIN)/python -m edge.openapi --descriptor gen/descriptor.binpb --out gen/openapi/crm.openapi.json
	$(BIN)/python -m edge.envoy_config --descriptor gen/descriptor.binpb --out envoy/envoy.yaml

# Fails when gen/ or envoy/ differ from what the protos produce.
gen-check: gen
	git diff --exit-code --stat -- gen envoy edge/ratelimit/proto \
	  || (echo "gen/ is stale: run 'make gen' and commit"; exit 1)

lint: install
	$(BIN)/buf lint gen/descriptor.binpb --path crm --config buf.yaml
	$(BIN)/ruff check services edge tests bench
	$(BIN)/mypy services edge tests bench

test: install gen-check
	$(BIN)/buf lint gen/descriptor.binpb --path crm --config buf.yaml
	$(BIN)/ruff check services edge tests bench
	$(BIN)/mypy services edge tests bench
	$(BIN)/python -m pytest -q -p no:cacheprovider --basetemp=/tmp/crm-pytest-$(notdir $(CURDIR))

# The schemathesis sweep of tests/fuzz, longer and random (make test runs it short and derandomized):
# FUZZ_MAX_EXAMPLES fuzzed cases per operation, FUZZ_SEED (printed; set it to replay a run),
# FUZZ_PHASES (the stateful phase runs where schemathesis finds links between operations).
FUZZ_MAX_EXAMPLES ?= 100
ifeq ($(origin FUZZ_SEED), undefined)
FUZZ_SEED := $(shell od -An -N4 -tu4 /dev/urandom | tr -d ' ')
endif
FUZZ_PHASES ?= examples,coverage,fuzzing,stateful
fuzz: install
	@echo "make fuzz FUZZ_SEED=$(FUZZ_SEED) FUZZ_MAX_EXAMPLES=$(FUZZ_MAX_EXAMPLES)"
	FUZZ_SEED=$(FUZZ_SEED) FUZZ_MAX_EXAMPLES=$(FUZZ_MAX_EXAMPLES) FUZZ_PHASES=$(FUZZ_PHASES) FUZZ_BUDGET_SECONDS=3600 \
	  $(BIN)/python -m pytest tests/fuzz -q -s -p no:cacheprovider

# Contracts must not break their users: compare the protos with BASE's (the previous commit of
# main by default; origin/main when there is one, as on a branch).
BASE ?= $(shell git rev-parse -q --verify origin/main >/dev/null && echo origin/main || echo HEAD~1)
breaking: gen
	@if ! git cat-file -e $(BASE):proto 2>/dev/null; then echo "no protos at $(BASE): nothing to compare"; exit 0; fi; \
	rm -rf .breaking && mkdir -p .breaking && git archive $(BASE) proto | tar -x -C .breaking && \
	$(BIN)/python -m grpc_tools.protoc -I.breaking/proto -I$(SITE) --include_imports \
	  --descriptor_set_out=.breaking/base.binpb $$(find .breaking/proto -name '*.proto' | sort) && \
	$(BIN)/buf breaking gen/descriptor.binpb --against .breaking/base.binpb --path crm --config buf.yaml && \
	echo "buf breaking: no breaking change against $(BASE)"; status=$$?; rm -rf .breaking; exit $$status

run: install
	$(BIN)/python -m services.devstack --data-dir .data --port 8080

# Not a test: prints throughput and latency tables (README "Performance"); about 90 s.
# Knobs: BENCH_CONCURRENCY, BENCH_DURATION, BENCH_WARMUP, BENCH_SEED, BENCH_IMPORT_ROWS,
# BENCH_DEALS, BENCH_CONTACTS, BENCH_SCALE_CONCURRENCY.
bench: install
	$(BIN)/python -m bench.run

# Not in `make test` (minutes long): an open-loop mix of operations through Envoy on a fresh stack,
# several tenants with sales reps; fails on any request not answered as intended or on memory growth.
# Knobs: LOAD_RATE, LOAD_DURATION (180 s; `LOAD_DURATION=20 make load` for a quick run), LOAD_WARMUP,
# LOAD_MIX, LOAD_TENANTS, LOAD_SEED ... (`python -m bench.load --help`).
load: install
	$(BIN)/python -m bench.load

# A platform operator for the stack `make run` serves (it writes .data/crm.env):
#   make operator EMAIL=ops@example.com PASSWORD='a-long-passphrase'
operator: install
	@test -f .data/crm.env || (echo "start the stack first (make run): .data/crm.env is missing"; exit 1)
	set -a && . ./.data/crm.env && set +a && \
	  $(BIN)/python -m services.tenants.operator create --email "$(EMAIL)" --password "$(PASSWORD)"

clean:
	rm -rf .data
