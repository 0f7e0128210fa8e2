/*
 * What firing a timer publishes, and the timer it arms next (docs/deadline.md, "Firing").
 *
 *   warning "w<pct>"  DeadlineFired (warning) and an SMS to the case's owner
 *   breach  "b<N>"    DeadlineFired at ladder level N and, for each person notified, an SMS and
 *                     a staff task; an emergency notifies levels N, N+1 and N+2 at once. Then
 *                     the breach of the next level up is armed, the clock's duration later,
 *                     until the top of the site's ladder.
 *
 * The people of a level are those holding its role on duty when the timer came due (the
 * site's, else the group's), else whoever holds the ladder's fallback role on duty, else
 * everyone holding the level's role: never nobody.
 *
 * Every event id is derived from the timer id (a ULID whose time is the timer's due time and
 * whose other 80 bits are a SHA-256 of the timer id and the event's place), and task ids name
 * the timer: a timer fired twice publishes the same events twice, which every consumer
 * applies once. Pure: no I/O.
 */
#ifndef DL_ESCALATE_H
#define DL_ESCALATE_H

#include <stdbool.h>
#include <stdint.h>

#include "clocks.h"

#define DL_NOTIFY_PER_LEVEL 3
#define DL_EMERGENCY_LEVELS 3
#define DL_MAX_NOTIFY (DL_NOTIFY_PER_LEVEL * DL_EMERGENCY_LEVELS)
#define DL_MAX_TASKS (2 * DL_MAX_NOTIFY)

struct dl_task {
    Casewire__V1__Envelope env;
    Casewire__V1__EventMeta meta;
    Casewire__V1__NotificationTask task;
    Casewire__V1__NotificationTask__ParamsEntry entries[6], *params[6];
    char event_id[CW_ULID_LEN + 1];
    char task_id[DL_TIMER_ID_MAX + 80];
};

struct dl_firing {
    /* DeadlineFired, on the cases topic */
    Casewire__V1__Envelope env;
    Casewire__V1__EventMeta meta;
    Casewire__V1__DeadlineFired fired;
    char event_id[CW_ULID_LEN + 1];
    char case_id[DL_CASE_ID_MAX];
    const char *notified[DL_MAX_NOTIFY];
    /* NotificationTasks, on the notify topic */
    struct dl_task tasks[DL_MAX_TASKS];
    size_t ntasks;
    char level_s[16], due_s[40];
    /* the next level's breach, when there is one */
    bool has_next;
    struct dl_arm next;
    char next_stage[DL_STAGE_MAX];
    char next_payload[DL_PAYLOAD_MAX];
};

/* Plans the firing of timer_id (payload pl) at Redis time now_ms, the case now owned by owner
 * ("" when unknown; the firing points to it: keep it as long). 0, or -1 when the timer's site is
 * not in the chain (the timer is then committed without effects, and logged). */
int dl_firing_plan(const struct dl_ctx *ctx, const char *timer_id, const struct dl_payload *pl,
                   const char *owner, int64_t now_ms, struct dl_firing *out);

/* The event id of the k-th event published for timer_id due at due_ms. */
void dl_event_id(const char *timer_id, unsigned k, int64_t due_ms, char out[CW_ULID_LEN + 1]);

#endif
