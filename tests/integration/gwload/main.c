/*
 * Real HTTP clients for tests/integration/gateway_faults.sh (fault injection against a running
 * casewire-gateway on 127.0.0.1). Plain sockets and poll(): no HTTP library between the test
 * and what the gateway really sends.
 *
 *   gwload post --port P --out PREFIX --clients N --count N --key-prefix K
 *               [--token T] [--site S] [--channel C] [--timeout-ms MS] [--case-deadline-s S]
 *               [--stop-file F] [--events]
 *       N client processes; client c posts cases with the keys K-c-0, K-c-1, ... (its share of
 *       --count), one at a time on a keep-alive connection. A connection error, a timeout, a
 *       5xx, 429 or 409 request_in_progress is retried with the same key and the same body
 *       (after Retry-After, capped at 2 s, else a backoff of 50 ms doubling to 1 s) until
 *       a 202 or the case's deadline. Every 202 is a line "key case_id case_no 202" in
 *       PREFIX.c, written at once (the test watches the files grow). With --events every
 *       attempt is also a line "start_ms end_ms key status retry_after" in PREFIX.c.events
 *       (wall-clock ms; status 0 = connection error, -1 = timeout; retry_after -1 = none).
 *       --stop-file: start no new case once F exists (--count is then an upper bound).
 *       Exit 0 only if every case started got its 202 and nothing unexpected was answered.
 *   gwload slow --port P --conns N --interval-ms MS --max-s S
 *       Slowloris: N connections each send one byte of a request every MS; even ones trickle
 *       the request line and headers, odd ones send the headers at once and trickle the body.
 *       Reports, per connection, how long after its first byte the server closed it (or that
 *       it did not within S seconds). Prints "all_first_bytes_sent" once every connection
 *       has sent its first byte, "closed i ms" as they close, then a summary.
 *   gwload cap --port P --conns N --wait-ms MS
 *       Connection cap: opens N connections, then sends GET /v1/sites on each; counts those
 *       answered within MS; closes the answered ones and counts how many of the rest are
 *       answered within 15 s after that.
 *   gwload verify --tail FILE --answers FILE [--answers FILE...] [--keys K:CLIENTS:COUNT]
 *       Reads casewire-tail's JSON lines of casewire.intake.v1 and the 202 answers, and prints
 *       key=value lines: every 202 on Kafka, one case id per Idempotency-Key (matched by the
 *       hash the gateway puts in CaseSubmitted.idempotency_key and by external_ref, which
 *       gwload sets to the key), one event id per case id, distinct case numbers, and with
 *       --keys every expected key answered 202.
 */
#include "gwload.h"

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        fprintf(stderr, "usage: gwload post|slow|cap|verify [--option value ...] (see "
                        "tests/integration/gwload/main.c)\n");
        return 2;
    }
    struct opts o = {argc - 2, argv + 2};
    if (strcmp(argv[1], "post") == 0) return run_post(&o);
    if (strcmp(argv[1], "slow") == 0) return run_slow(&o);
    if (strcmp(argv[1], "cap") == 0) return run_cap(&o);
    if (strcmp(argv[1], "verify") == 0) return run_verify(&o);
    fprintf(stderr, "gwload: unknown mode %s\n", argv[1]);
    return 2;
}
