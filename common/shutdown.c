#include "shutdown.h"

#include <event2/event.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ids.h"
#include "log.h"

#define MAX_STEPS 32
#define POLL_MS 10

struct step {
    enum cw_shutdown_stage stage;
    const char *name;
    void (*begin)(void *);
    int (*done)(void *);
    void *arg;
    int begun;
};

struct cw_shutdown {
    struct event_base *base;
    long long timeout_ms;
    struct step steps[MAX_STEPS];
    int nsteps;
    struct event *sigint_ev, *sigterm_ev, *poll_ev;
    int started, stage, clean;
    int64_t deadline;       /* of the whole shutdown */
    int64_t stage_deadline; /* of the current stage */
};

/* Share of the time still left that a stage may use when it starts, so a drain that overruns
 * cannot leave the flush and the consumer close (the final offset commit) with nothing. */
static const double stage_share[CW_STAGE__COUNT] = {0.2, 0.5, 0.5, 0.67, 1.0};

static const char *const stage_names[] = {"stop_accepting", "drain", "flush_producers",
                                          "close_consumers", "disconnect_redis"};

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "shutdown: did not finish in time after the loop ended; exiting\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(3);
}

static void finish(cw_shutdown *sd)
{
    event_del(sd->poll_ev);
    /* Destructors run after the loop ends; if one hangs (seen with librdkafka 2.0.2's
     * rd_kafka_destroy), the alarm ends the process within the promised time. */
    signal(SIGALRM, on_alarm);
    /* What is left of the shutdown timeout, at least 2 s: a client library's destroy may
     * still be leaving a consumer group or joining its threads (slowly under sanitizers). */
    int64_t left_ms = sd->deadline - cw_mono_ms();
    alarm(left_ms > 2000 ? (unsigned)((left_ms + 999) / 1000) : 2);
    event_base_loopbreak(sd->base);
}

/* Runs the current stage's steps; moves on when they are all done or time is up. */
static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    cw_shutdown *sd = arg;
    int64_t now = cw_mono_ms();
    while (sd->stage < CW_STAGE__COUNT) {
        int pending = 0;
        if (!sd->stage_deadline) {
            int64_t left = sd->deadline > now ? sd->deadline - now : 0;
            sd->stage_deadline = now + (int64_t)((double)left * stage_share[sd->stage]);
        }
        for (int i = 0; i < sd->nsteps; i++) {
            struct step *s = &sd->steps[i];
            if ((int)s->stage != sd->stage) continue;
            if (!s->begun) {
                s->begun = 1;
                if (s->begin) s->begin(s->arg);
            }
            if (s->done && !s->done(s->arg)) pending++;
        }
        if (pending && now < sd->stage_deadline) return; /* poll again */
        if (pending) {
            sd->clean = 0;
            for (int i = 0; i < sd->nsteps; i++)
                if ((int)sd->steps[i].stage == sd->stage && sd->steps[i].done &&
                    !sd->steps[i].done(sd->steps[i].arg))
                    cw_warn("shutdown.deadline", "stage=%s step=%s reason=\"not finished in time\"",
                            stage_names[sd->stage], sd->steps[i].name);
        }
        sd->stage++;
        sd->stage_deadline = 0;
    }
    cw_info("shutdown.done", "clean=%s", sd->clean ? "yes" : "no");
    finish(sd);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    cw_shutdown *sd = arg;
    if (sd->started) {
        cw_warn("shutdown.forced", "signal=%d reason=\"second signal\"", (int)sig);
        _exit(3);
    }
    cw_shutdown_begin(sd, sig == SIGINT ? "SIGINT" : "SIGTERM");
}

cw_shutdown *cw_shutdown_new(struct event_base *base, long long timeout_ms)
{
    cw_shutdown *sd = calloc(1, sizeof *sd);
    if (!sd) return NULL;
    sd->base = base;
    sd->timeout_ms = timeout_ms;
    sd->clean = 1;
    sd->poll_ev = event_new(base, -1, EV_PERSIST, on_poll, sd);
    if (!sd->poll_ev) {
        free(sd);
        return NULL;
    }
    return sd;
}

void cw_shutdown_free(cw_shutdown *sd)
{
    if (!sd) return;
    if (sd->sigint_ev) event_free(sd->sigint_ev);
    if (sd->sigterm_ev) event_free(sd->sigterm_ev);
    event_free(sd->poll_ev);
    free(sd);
}

int cw_shutdown_add(cw_shutdown *sd, enum cw_shutdown_stage stage, const char *name,
                    void (*begin)(void *), int (*done)(void *), void *arg)
{
    if (sd->nsteps == MAX_STEPS || stage >= CW_STAGE__COUNT) return -1;
    sd->steps[sd->nsteps++] = (struct step){stage, name, begin, done, arg, 0};
    return 0;
}

int cw_shutdown_watch_signals(cw_shutdown *sd)
{
    signal(SIGPIPE, SIG_IGN);
    sd->sigint_ev = evsignal_new(sd->base, SIGINT, on_signal, sd);
    sd->sigterm_ev = evsignal_new(sd->base, SIGTERM, on_signal, sd);
    if (!sd->sigint_ev || !sd->sigterm_ev || evsignal_add(sd->sigint_ev, NULL) ||
        evsignal_add(sd->sigterm_ev, NULL))
        return -1;
    return 0;
}

void cw_shutdown_begin(cw_shutdown *sd, const char *reason)
{
    if (sd->started) return;
    sd->started = 1;
    sd->deadline = cw_mono_ms() + sd->timeout_ms;
    cw_info("shutdown.begin", "reason=\"%s\" timeout_ms=%lld", reason, sd->timeout_ms);
    struct timeval tv = {0, POLL_MS * 1000};
    event_add(sd->poll_ev, &tv);
    event_active(sd->poll_ev, EV_TIMEOUT, 0);
}

int cw_shutdown_started(const cw_shutdown *sd) { return sd->started; }
int cw_shutdown_clean(const cw_shutdown *sd) { return sd->clean; }
