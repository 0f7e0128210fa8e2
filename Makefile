# casewire — thin and obvious: `make`, `make run`, `make test`, `make bench`.
#   make SANITIZE=address,undefined test   sanitizer build (in build-san/), same tests
# Everything lands in $(BUILD): generated protobuf code, objects, binaries, test programs.

SANITIZE ?=
ifeq ($(SANITIZE),)
BUILD   ?= build
OPT     ?= -O2
else
BUILD   ?= build-san
OPT     ?= -O1 -fno-omit-frame-pointer -fsanitize=$(SANITIZE) -fno-sanitize-recover=all
LDSAN    = -fsanitize=$(SANITIZE)
endif

CC      ?= cc
PKGS     = rdkafka libevent hiredis libprotobuf-c yaml-0.1 jansson libcrypto
# Evaluated lazily, after `deps` has had its chance to install what is missing.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))
CHECK_LIBS = $(shell pkg-config --libs check)
# Only the router (and its tests) link Vectorscan, the portable Hyperscan.
HS_CFLAGS  = $(shell pkg-config --cflags libhs)
HS_LIBS    = $(shell pkg-config --libs libhs)

CFLAGS  += -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-missing-field-initializers -g $(OPT) -D_GNU_SOURCE \
           -Icommon -I$(BUILD)/gen -MMD -MP
LDFLAGS += $(LDSAN)

SERVICES   = gateway router deadline notifier devbroker tail
PROTOS     = $(wildcard proto/*.proto)
PROTO_C    = $(patsubst proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
PROTO_H    = $(PROTO_C:.c=.h)
COMMON_SRC = $(wildcard common/*.c)
COMMON_OBJ = $(patsubst %.c,$(BUILD)/%.o,$(COMMON_SRC)) $(PROTO_C:.c=.o)
LIBCOMMON  = $(BUILD)/libcasewire.a
BINS       = $(patsubst %,$(BUILD)/bin/casewire-%,$(SERVICES))
UNIT_SRC   = $(wildcard tests/unit/test_*.c)
UNIT_BINS  = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
# Test and bench programs: one file (bench/hello.c) or a folder of files (bench/loadgen/*.c).
programs   = $(sort $(patsubst $(1)/%.c,%,$(wildcard $(1)/*.c)) \
                   $(patsubst $(1)/%/,%,$(dir $(wildcard $(1)/*/*.c))))
ITEST_NAMES = $(call programs,tests/integration)
ITEST_BINS = $(patsubst %,$(BUILD)/itests/%,$(ITEST_NAMES))
BENCH_NAMES = $(call programs,bench)
BENCH_BINS = $(patsubst %,$(BUILD)/benches/%,$(BENCH_NAMES))
DEPS_OK    = $(BUILD)/.deps-ok

.PHONY: all deps run test unit integration bench docs format format-check clean
.DELETE_ON_ERROR:
.SECONDARY:

all: $(BINS)

# `make deps` always checks; builds only re-check when the package list changes.
deps:
	@scripts/deps.sh
$(DEPS_OK): scripts/deps.sh
	@scripts/deps.sh
	@mkdir -p $(@D) && touch $@

$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto | $(DEPS_OK)
	@mkdir -p $(@D)
	protoc-c --proto_path=proto --c_out=$(BUILD)/gen $<

# Generated code is not ours to warn about beyond the basics.
$(BUILD)/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c
	$(CC) -std=c11 -g $(OPT) -I$(BUILD)/gen $(PKG_CFLAGS) -c $< -o $@

$(BUILD)/%.o: %.c | $(PROTO_H) $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(LIBCOMMON): $(COMMON_OBJ)
	@rm -f $@
	ar rcs $@ $^

define SERVICE_RULE
$(BUILD)/bin/casewire-$(1): $(patsubst %.c,$(BUILD)/%.o,$(wildcard services/$(1)/*.c)) $(LIBCOMMON)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$(filter %.o,$$^) $(LIBCOMMON) $$(PKG_LIBS) -lm
endef
$(foreach s,$(SERVICES),$(eval $(call SERVICE_RULE,$(s))))

# The gateway's own modules, tested without its main.
$(BUILD)/tests/test_gateway: $(BUILD)/tests/unit/test_gateway.o $(BUILD)/services/gateway/validate.o \
                              $(BUILD)/services/gateway/ratelimit.o $(LIBCOMMON)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBCOMMON) $(PKG_LIBS) $(CHECK_LIBS) -lm

# The router's modules (Vectorscan), tested without its main.
ROUTER_MODULES = $(patsubst %.c,$(BUILD)/%.o,$(filter-out services/router/main.c,$(wildcard services/router/*.c)))
$(BUILD)/services/router/%.o: CFLAGS += $(HS_CFLAGS)
$(BUILD)/tests/unit/test_router.o $(BUILD)/tests/unit/test_rulecache.o $(BUILD)/tests/integration/classify_eval.o: CFLAGS += $(HS_CFLAGS) -Iservices/router
$(BUILD)/bin/casewire-router $(BUILD)/itests/classify_eval: PKG_LIBS += $(HS_LIBS)
$(BUILD)/itests/classify_eval: $(ROUTER_MODULES)
$(BUILD)/tests/test_router $(BUILD)/tests/test_rulecache: $(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(ROUTER_MODULES) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBCOMMON) $(PKG_LIBS) $(HS_LIBS) $(CHECK_LIBS) -lm

# The deadline worker's timer store, tested against a real Redis without its main.
DEADLINE_MODULES = $(patsubst %.c,$(BUILD)/%.o,$(filter-out services/deadline/main.c services/deadline/arm.c services/deadline/fire.c,$(wildcard services/deadline/*.c)))
$(BUILD)/tests/integration/timers.o $(BUILD)/tests/integration/deadline_feed.o $(BUILD)/tests/unit/test_deadline.o: CFLAGS += -Iservices/deadline
$(BUILD)/itests/timers $(BUILD)/itests/deadline_feed $(BUILD)/benches/timerbench: $(DEADLINE_MODULES)
$(BUILD)/bench/timerbench.o: CFLAGS += -Iservices/deadline
$(BUILD)/tests/test_deadline: $(BUILD)/tests/unit/test_deadline.o $(DEADLINE_MODULES) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBCOMMON) $(PKG_LIBS) $(CHECK_LIBS) -lm

# The notifier's modules (libcurl for SMS providers and webhooks), tested without its main.
NOTIFIER_MODULES = $(patsubst %.c,$(BUILD)/%.o,$(filter-out services/notifier/main.c services/notifier/take.c services/notifier/deliver.c,$(wildcard services/notifier/*.c)))
CURL_CFLAGS = $(shell pkg-config --cflags libcurl)
CURL_LIBS   = $(shell pkg-config --libs libcurl)
$(BUILD)/services/notifier/%.o: CFLAGS += $(CURL_CFLAGS)
$(BUILD)/tests/unit/test_notifier.o $(BUILD)/tests/unit/test_alisms.o $(BUILD)/tests/unit/test_webhook.o: CFLAGS += -Iservices/notifier
$(BUILD)/bin/casewire-notifier: PKG_LIBS += $(CURL_LIBS)
$(BUILD)/tests/test_alisms: $(BUILD)/services/notifier/alisms.o
$(BUILD)/tests/test_notifier: $(NOTIFIER_MODULES)
$(BUILD)/tests/test_notifier $(BUILD)/tests/test_alisms $(BUILD)/tests/test_webhook: $(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(LIBCOMMON)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBCOMMON) $(PKG_LIBS) $(CURL_LIBS) $(CHECK_LIBS) -lm

$(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(LIBCOMMON)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBCOMMON) $(PKG_LIBS) $(CHECK_LIBS) -lm

# $(1) source folder, $(2) program, $(3) output folder under $(BUILD)
define PROGRAM_RULE
$(BUILD)/$(3)/$(2): $(patsubst %.c,$(BUILD)/%.o,$(wildcard $(1)/$(2).c $(1)/$(2)/*.c)) $(LIBCOMMON)
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$(filter %.o,$$^) $(LIBCOMMON) $$(PKG_LIBS) -lm
endef
$(foreach p,$(ITEST_NAMES),$(eval $(call PROGRAM_RULE,tests/integration,$(p),itests)))
$(foreach p,$(BENCH_NAMES),$(eval $(call PROGRAM_RULE,bench,$(p),benches)))

# The OpenAPI document is served by the gateway from its own binary: always the one it was built with.
$(BUILD)/gen/openapi.c: docs/openapi.json scripts/embed.sh
	@mkdir -p $(@D)
	scripts/embed.sh cw_openapi_json $< > $@
$(BUILD)/gen/openapi.o: $(BUILD)/gen/openapi.c
	$(CC) -std=c11 -g $(OPT) -c $< -o $@
$(BUILD)/bin/casewire-gateway: $(BUILD)/gen/openapi.o
# The staff console's files likewise (services/gateway/console/: plain HTML, CSS, JavaScript).
CONSOLE_FILES = $(sort $(wildcard services/gateway/console/*))
$(BUILD)/gen/console.c: $(CONSOLE_FILES) scripts/embed-console.sh
	@mkdir -p $(@D)
	scripts/embed-console.sh $(CONSOLE_FILES) > $@
$(BUILD)/gen/console.o: $(BUILD)/gen/console.c
	$(CC) -std=c11 -g $(OPT) -c $< -o $@
$(BUILD)/bin/casewire-gateway: $(BUILD)/gen/console.o

# The embedded default: Redis, the devbroker and every service, in the foreground.
run: all
	@scripts/run.sh $(BUILD)

# Every tier: unit, then integration against real redis-server and the devbroker.
test: $(DEPS_OK) all $(UNIT_BINS) $(ITEST_BINS)
	@tests/run.sh $(BUILD)

unit: $(DEPS_OK) $(UNIT_BINS)
	@tests/run.sh $(BUILD) unit

integration: $(DEPS_OK) all $(ITEST_BINS)
	@tests/run.sh $(BUILD) integration

bench: $(DEPS_OK) all $(ITEST_BINS) $(BENCH_BINS)
	@bench/run.sh $(BUILD)

# Generated reference: the settings table as Markdown.
docs: $(BUILD)/bin/casewire-gateway
	$(BUILD)/bin/casewire-gateway --config-doc > docs/configuration.md

format:
	clang-format -i $(COMMON_SRC) $(wildcard common/*.h services/*/*.[ch] tests/*/*.[ch] tests/integration/*/*.[ch] bench/*.c bench/*/*.[ch])
format-check:
	clang-format --dry-run --Werror $(COMMON_SRC) $(wildcard common/*.h services/*/*.[ch] tests/*/*.[ch] tests/integration/*/*.[ch] bench/*.c bench/*/*.[ch])

clean:
	rm -rf build build-san var/run

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
