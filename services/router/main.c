/*
 * casewire-router: classifies and assigns cases, plans their clocks (issue 3/7).
 *
 * Runs in the common service frame (common/service.h): settings, logging, the loop, the
 * HTTP endpoints /healthz, /readyz and /metrics, the chain, Redis and a Kafka producer, and
 * the orderly shutdown. Its own logic arrives with its issue; until then it starts, connects
 * and reports readiness, and consumes nothing (a consumer that committed offsets without
 * handling the events would lose them for the real one).
 */
#include "service.h"

static const struct cw_service_def def = {
    .name = "router",
    .id = CW_SVC_ROUTER,
    .needs = CW_NEEDS_CHAIN | CW_NEEDS_REDIS | CW_NEEDS_PRODUCER,
};

int main(int argc, char **argv) { return cw_service_main(&def, argc, argv); }
