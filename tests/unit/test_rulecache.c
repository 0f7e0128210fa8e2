/* The router's compiled-rules cache (services/router/rulecache.c) and the classifier's use of
 * it: a round trip classifies alike, damage is refused and replaced, changed rules miss, an
 * unwritable directory is no error, and pruning keeps the entries used last. */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <hs.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "classify.h"
#include "router_chain.h"
#include "rulecache.h"
#include "testing.h"

static char *temp_dir(void)
{
    char *d = strdup("/tmp/cw-rulecache.XXXXXX");
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_nonnull(mkdtemp(d));
    return d;
}

/* The directory's cache entries; the first one's path in first (when given). */
static int cache_entries(const char *dir, char *first, size_t firstlen)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len <= 5 || strcmp(de->d_name + len - 5, ".hsdb") != 0) continue;
        if (n++ == 0 && first) snprintf(first, firstlen, "%s/%s", dir, de->d_name);
    }
    closedir(d);
    return n;
}

static void remove_dir(char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
    }
    rmdir(dir);
    free(dir);
}

/* Every decision of x on text, as one string, to compare two classifiers. */
static void explain(rt_classifier *x, const cw_chain *c, const char *text, char *out, size_t n)
{
    struct rt_case_text in = {.text = text,
                              .len = strlen(text),
                              .channel = CASEWIRE__V1__CHANNEL__CHANNEL_WEB,
                              .site = cw_chain_site(c, "SH01")};
    struct rt_verdict v;
    char err[128];
    ck_assert_msg(rt_classify(x, &in, &v, err, sizeof err) == 0, "%s", err);
    int k = snprintf(out, n, "%d %d %d %d %u", v.type, v.category, v.urgency, v.validity,
                     v.rules_matched);
    for (int f = 0; f < RT_FIELDS && k > 0 && (size_t)k < n; f++)
        k += snprintf(out + k, n - (size_t)k, " %s:%s", v.why[f].rule_id ? v.why[f].rule_id : "-",
                      v.why[f].matched ? v.why[f].matched : "-");
}

static rt_classifier *classifier_with_cache(const cw_chain *c, const char *dir)
{
    char err[256];
    rt_classifier *x = rt_classifier_new(c, dir, err, sizeof err);
    ck_assert_msg(x != NULL, "%s", err);
    return x;
}

START_TEST(compiled_rules_are_stored_and_loaded_back_unchanged)
{
    char *dir = temp_dir();
    cw_chain *c = load_yaml(rules_yaml);
    rt_classifier *compiled = classifier_with_cache(c, dir);
    const struct rt_classifier_origin *o = rt_classifier_origin(compiled);
    ck_assert_msg(!o->from_cache && o->stored && !o->cache_note[0], "first start: %s",
                  o->cache_note);
    ck_assert_int_eq(cache_entries(dir, NULL, 0), 1);
    rt_classifier *loaded = classifier_with_cache(c, dir);
    o = rt_classifier_origin(loaded);
    ck_assert_msg(o->from_cache && !o->stored && !o->cache_note[0], "second start: %s",
                  o->cache_note);
    ck_assert_int_eq(rt_classifier_expressions(loaded), rt_classifier_expressions(compiled));
    static const char *const texts[] = {"收银台旁边好像着火了，有烟",
                                        "the toilets are dripping",
                                        "separate",
                                        "多收了 5 元，价格不对",
                                        "（急）在哪？",
                                        "下雨了谢谢",
                                        "nothing matches here"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        char a[512], b[512];
        explain(compiled, c, texts[i], a, sizeof a);
        explain(loaded, c, texts[i], b, sizeof b);
        ck_assert_msg(strcmp(a, b) == 0, "%s: compiled \"%s\", loaded \"%s\"", texts[i], a, b);
    }
    rt_classifier_free(compiled);
    rt_classifier_free(loaded);
    /* no cache: compiled, nothing written, nothing to say */
    rt_classifier *plain = classifier_with_cache(c, "");
    o = rt_classifier_origin(plain);
    ck_assert(!o->from_cache && !o->stored && !o->cache_note[0]);
    rt_classifier_free(plain);
    cw_chain_free(c);
    remove_dir(dir);
}
END_TEST

static void overwrite(const char *path, long offset, const void *bytes, size_t n,
                      bool truncate_after)
{
    int fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    if (offset < 0) offset += (long)lseek(fd, 0, SEEK_END);
    ck_assert_int_eq(pwrite(fd, bytes, n, offset), (ssize_t)n);
    if (truncate_after) ck_assert_int_eq(ftruncate(fd, offset + (long)n), 0);
    close(fd);
}

START_TEST(a_damaged_cache_entry_is_refused_and_replaced)
{
    char *dir = temp_dir();
    cw_chain *c = load_yaml(rules_yaml);
    rt_classifier_free(classifier_with_cache(c, dir));
    char path[4096];
    ck_assert_int_eq(cache_entries(dir, path, sizeof path), 1);
    static const struct {
        long offset;
        const char *bytes;
        bool truncate;
        const char *note;
    } damage[] = {
        {-100, "\xff\xfe\xfd\xfc", false, "damaged (checksum does not match)"}, /* bit rot */
        {-1000, "", true, "damaged (checksum does not match)"},                 /* torn write */
        {0, "not ours", true, "not a cache entry"},          /* someone else's file */
        {0, "casewire-hsdb-1\n", true, "not a cache entry"}, /* header only */
    };
    for (size_t i = 0; i < sizeof damage / sizeof *damage; i++) {
        overwrite(path, damage[i].offset, damage[i].bytes, strlen(damage[i].bytes),
                  damage[i].truncate);
        rt_classifier *x = classifier_with_cache(c, dir);
        const struct rt_classifier_origin *o = rt_classifier_origin(x);
        ck_assert_msg(!o->from_cache && o->stored && strstr(o->cache_note, damage[i].note),
                      "damage %zu: from_cache=%d stored=%d note \"%s\"", i, o->from_cache,
                      o->stored, o->cache_note);
        char got[512];
        explain(x, c, "收银台旁边好像着火了", got, sizeof got);
        ck_assert_msg(strstr(got, "fire:着火") != NULL, "damage %zu: %s", i, got);
        rt_classifier_free(x);
        /* replaced: the next start loads it */
        x = classifier_with_cache(c, dir);
        ck_assert_msg(rt_classifier_origin(x)->from_cache, "damage %zu: not replaced", i);
        rt_classifier_free(x);
    }
    cw_chain_free(c);
    remove_dir(dir);
}
END_TEST

START_TEST(changed_rules_miss_the_cache_and_an_unwritable_cache_is_no_error)
{
    char *dir = temp_dir();
    cw_chain *c = load_yaml(rules_yaml);
    rt_classifier_free(classifier_with_cache(c, dir));
    /* one keyword changed: another key, compiled and stored beside the first */
    char *changed = strdup(rules_yaml);
    char *at = strstr(changed, "\"下雨\"");
    ck_assert_ptr_nonnull(at);
    memcpy(at, "\"暴雨\"", strlen("\"暴雨\""));
    cw_chain *c2 = load_yaml(changed);
    rt_classifier *x = classifier_with_cache(c2, dir);
    const struct rt_classifier_origin *o = rt_classifier_origin(x);
    ck_assert_msg(!o->from_cache && o->stored && !o->cache_note[0], "%s", o->cache_note);
    ck_assert_int_eq(cache_entries(dir, NULL, 0), 2);
    char got[512];
    explain(x, c2, "暴雨", got, sizeof got);
    ck_assert_msg(strstr(got, "weather:暴雨") != NULL, "%s", got);
    rt_classifier_free(x);
    /* a directory that cannot be made (a file is in the way): compiled, said, not an error */
    char blocked[4096];
    snprintf(blocked, sizeof blocked, "%s/a-file/rules", dir);
    char file[4096];
    snprintf(file, sizeof file, "%s/a-file", dir);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    x = classifier_with_cache(c, blocked);
    o = rt_classifier_origin(x);
    ck_assert_msg(!o->from_cache && !o->stored &&
                      strstr(o->cache_note, "not stored: cannot create"),
                  "%s", o->cache_note);
    rt_classifier_free(x);
    free(changed);
    cw_chain_free(c2);
    cw_chain_free(c);
    remove_dir(dir);
}
END_TEST

static bool entry_exists(const char *dir, int i)
{
    unsigned char key[RT_RULECACHE_KEY_LEN] = {(unsigned char)i};
    char path[4096], hex[2 * RT_RULECACHE_KEY_LEN + 1];
    for (size_t k = 0; k < RT_RULECACHE_KEY_LEN; k++) sprintf(hex + 2 * k, "%02x", key[k]);
    snprintf(path, sizeof path, "%s/%s.hsdb", dir, hex);
    return access(path, F_OK) == 0;
}

static void set_age(const char *dir, const char *name, time_t seconds_ago)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct timespec t[2] = {{time(NULL) - seconds_ago, 0}, {time(NULL) - seconds_ago, 0}};
    ck_assert_int_eq(utimensat(AT_FDCWD, path, t, 0), 0);
}

static void set_entry_age(const char *dir, int i, time_t seconds_ago)
{
    char name[2 * RT_RULECACHE_KEY_LEN + 8];
    snprintf(name, sizeof name, "%02x", i);
    for (size_t k = 1; k < RT_RULECACHE_KEY_LEN; k++) strcat(name, "00");
    strcat(name, ".hsdb");
    set_age(dir, name, seconds_ago);
}

START_TEST(the_cache_keeps_the_entries_used_last)
{
    char *dir = temp_dir();
    hs_database_t *db = NULL;
    hs_compile_error_t *cerr = NULL;
    ck_assert_int_eq(hs_compile("abc", 0, HS_MODE_BLOCK, NULL, &db, &cerr), HS_SUCCESS);
    char why[512];
    /* entries 0..9, entry i last used 1000 - i seconds ago (0 the oldest) */
    for (int i = 0; i < 10; i++) {
        unsigned char key[RT_RULECACHE_KEY_LEN] = {(unsigned char)i};
        ck_assert_msg(rt_rulecache_store(dir, key, db, why, sizeof why) == 0, "%s", why);
        set_entry_age(dir, i, 1000 - i);
    }
    /* each store pruned what was there: the two oldest are gone */
    ck_assert_int_eq(cache_entries(dir, NULL, 0), RT_RULECACHE_KEEP);
    ck_assert(!entry_exists(dir, 0) && !entry_exists(dir, 1));
    /* loading entry 2 makes it recent: the next store drops 3, not 2 */
    unsigned char key2[RT_RULECACHE_KEY_LEN] = {2};
    hs_database_t *loaded = NULL;
    ck_assert_int_eq(rt_rulecache_load(dir, key2, &loaded, why, sizeof why), 1);
    hs_free_database(loaded);
    /* a writer's temporary file: a stale one goes, a fresh one (a writer at work) stays;
     * files that are not this module's are never touched, however old */
    FILE *f;
    char stale[96], fresh[96];
    snprintf(stale, sizeof stale, ".%064d.a1b2c3.tmp", 0);
    snprintf(fresh, sizeof fresh, ".%064d.d4e5f6.tmp", 0);
    const char *others[] = {stale, fresh, "README", "old.hsdb", ".someone-elses.tmp"};
    const size_t nothers = sizeof others / sizeof *others;
    for (size_t i = 0; i < nothers; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, others[i]);
        ck_assert_ptr_nonnull(f = fopen(path, "w"));
        fclose(f);
        set_age(dir, others[i], i == 1 ? 0 : 7200);
    }
    unsigned char key10[RT_RULECACHE_KEY_LEN] = {10};
    ck_assert_msg(rt_rulecache_store(dir, key10, db, why, sizeof why) == 0, "%s", why);
    ck_assert_int_eq(cache_entries(dir, NULL, 0), RT_RULECACHE_KEEP + 1 /* old.hsdb */);
    ck_assert(entry_exists(dir, 2));
    ck_assert(!entry_exists(dir, 3));
    for (int i = 4; i <= 10; i++) ck_assert_msg(entry_exists(dir, i), "entry %d", i);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, stale);
    ck_assert_msg(access(path, F_OK) != 0, "a stale temporary file is left");
    for (size_t i = 1; i < nothers; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, others[i]);
        ck_assert_msg(access(path, F_OK) == 0, "%s was removed", others[i]);
    }
    /* an entry with no key of ours: a miss, not an error */
    unsigned char absent[RT_RULECACHE_KEY_LEN] = {99};
    ck_assert_int_eq(rt_rulecache_load(dir, absent, &loaded, why, sizeof why), 0);
    hs_free_database(db);
    remove_dir(dir);
}
END_TEST

CW_TEST_MAIN("rulecache", compiled_rules_are_stored_and_loaded_back_unchanged,
             a_damaged_cache_entry_is_refused_and_replaced,
             changed_rules_miss_the_cache_and_an_unwritable_cache_is_no_error,
             the_cache_keeps_the_entries_used_last)
