#include "rulecache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* File: MAGIC, the SHA-256 of the payload, the payload (hs_serialize_database's bytes). */
static const char MAGIC[16] = "casewire-hsdb-1\n";
#define HEADER_LEN (sizeof MAGIC + RT_RULECACHE_KEY_LEN)
#define SUFFIX ".hsdb"
/* A compiled rule set is a few MB; anything this big is not one of ours. */
#define MAX_FILE (256u << 20)
/* A temporary file older than this was left by a writer that died. */
#define STALE_TMP_S 3600

static void key_hex(const unsigned char key[RT_RULECACHE_KEY_LEN],
                    char out[2 * RT_RULECACHE_KEY_LEN + 1])
{
    for (size_t i = 0; i < RT_RULECACHE_KEY_LEN; i++) sprintf(out + 2 * i, "%02x", key[i]);
}

static int entry_path(char *out, size_t outlen, const char *dir,
                      const unsigned char key[RT_RULECACHE_KEY_LEN])
{
    char hex[2 * RT_RULECACHE_KEY_LEN + 1];
    key_hex(key, hex);
    int n = snprintf(out, outlen, "%s/%s" SUFFIX, dir, hex);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

static int digest(const void *data, size_t len, unsigned char out[RT_RULECACHE_KEY_LEN])
{
    unsigned int n = 0;
    return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 && n == RT_RULECACHE_KEY_LEN
               ? 0
               : -1;
}

/* The whole file, or NULL with errno set (ENOENT: no entry; EFBIG: too big). */
static unsigned char *read_all(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    unsigned char *buf = NULL;
    if (fstat(fd, &st) != 0) goto fail;
    if (!S_ISREG(st.st_mode) || st.st_size < 0 || (uintmax_t)st.st_size > MAX_FILE) {
        errno = EFBIG;
        goto fail;
    }
    size_t want = (size_t)st.st_size, got = 0;
    if (!(buf = malloc(want ? want : 1))) goto fail;
    while (got < want) {
        ssize_t n = read(fd, buf + got, want - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = EIO; /* shrank while read */
            goto fail;
        }
        got += (size_t)n;
    }
    close(fd);
    *len = got;
    return buf;
fail:;
    int saved = errno;
    free(buf);
    close(fd);
    errno = saved;
    return NULL;
}

int rt_rulecache_load(const char *dir, const unsigned char key[RT_RULECACHE_KEY_LEN],
                      hs_database_t **db, char *why, size_t whylen)
{
    char path[4096];
    if (entry_path(path, sizeof path, dir, key) != 0) {
        snprintf(why, whylen, "cache directory name too long");
        return -1;
    }
    size_t len = 0;
    unsigned char *buf = read_all(path, &len);
    if (!buf) {
        if (errno == ENOENT) return 0;
        snprintf(why, whylen, "%s: %s", path,
                 errno == EFBIG ? "not a cache entry" : strerror(errno));
        return -1;
    }
    unsigned char sum[RT_RULECACHE_KEY_LEN];
    int rc = -1;
    if (len < HEADER_LEN || memcmp(buf, MAGIC, sizeof MAGIC) != 0)
        snprintf(why, whylen, "%s: not a cache entry", path);
    else if (digest(buf + HEADER_LEN, len - HEADER_LEN, sum) != 0 ||
             memcmp(sum, buf + sizeof MAGIC, sizeof sum) != 0)
        snprintf(why, whylen, "%s: damaged (checksum does not match)", path);
    else if (hs_deserialize_database((const char *)buf + HEADER_LEN, len - HEADER_LEN, db) !=
             HS_SUCCESS)
        snprintf(why, whylen, "%s: the rule library cannot load it", path);
    else
        rc = 1;
    free(buf);
    /* Touched on use: pruning keeps what routers load, not what was compiled last. */
    if (rc == 1) utimensat(AT_FDCWD, path, NULL, 0);
    return rc;
}

/* mkdir -p */
static int make_dirs(const char *dir)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(path, dir, n + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(path, 0750) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(path, 0750) != 0 && errno != EEXIST) return -1;
    return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

struct entry {
    char name[2 * RT_RULECACHE_KEY_LEN + sizeof SUFFIX];
    struct timespec used;
};

static int newest_first(const void *a, const void *b)
{
    const struct timespec *x = &((const struct entry *)a)->used;
    const struct timespec *y = &((const struct entry *)b)->used;
    if (x->tv_sec != y->tv_sec) return x->tv_sec > y->tv_sec ? -1 : 1;
    if (x->tv_nsec != y->tv_nsec) return x->tv_nsec > y->tv_nsec ? -1 : 1;
    return 0;
}

static bool is_entry_name(const char *name)
{
    size_t hexlen = 2 * RT_RULECACHE_KEY_LEN;
    if (strlen(name) != hexlen + strlen(SUFFIX) || strcmp(name + hexlen, SUFFIX) != 0) return false;
    for (size_t i = 0; i < hexlen; i++)
        if (!strchr("0123456789abcdef", name[i])) return false;
    return true;
}

/* ".<entry key>.XXXXXX.tmp", the temporary name rt_rulecache_store() writes under. */
static bool is_tmp_name(const char *name)
{
    size_t hexlen = 2 * RT_RULECACHE_KEY_LEN, len = strlen(name);
    if (len != 1 + hexlen + 1 + 6 + 4 || name[0] != '.' || name[1 + hexlen] != '.' ||
        strcmp(name + len - 4, ".tmp") != 0)
        return false;
    for (size_t i = 1; i <= hexlen; i++)
        if (!strchr("0123456789abcdef", name[i])) return false;
    return true;
}

/* Keeps the RT_RULECACHE_KEEP entries used last and removes temporary files a dead writer
 * left. Only names this module writes are touched: the directory may hold anything else. */
static void prune(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct entry *list = NULL;
    size_t n = 0, cap = 0;
    time_t now = time(NULL);
    struct dirent *de;
    while ((de = readdir(d))) {
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        size_t len = strlen(de->d_name);
        if (is_tmp_name(de->d_name)) {
            if (now - st.st_mtim.tv_sec > STALE_TMP_S) unlinkat(dirfd(d), de->d_name, 0);
            continue;
        }
        if (!is_entry_name(de->d_name)) continue;
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            struct entry *grown = realloc(list, ncap * sizeof *grown);
            if (!grown) break; /* pruning is housekeeping: try again at the next store */
            list = grown;
            cap = ncap;
        }
        memcpy(list[n].name, de->d_name, len + 1);
        list[n++].used = st.st_mtim;
    }
    if (n > RT_RULECACHE_KEEP) {
        qsort(list, n, sizeof *list, newest_first);
        for (size_t i = RT_RULECACHE_KEEP; i < n; i++) unlinkat(dirfd(d), list[i].name, 0);
    }
    free(list);
    closedir(d);
}

int rt_rulecache_store(const char *dir, const unsigned char key[RT_RULECACHE_KEY_LEN],
                       const hs_database_t *db, char *why, size_t whylen)
{
    char path[4096], tmp[4096];
    char hex[2 * RT_RULECACHE_KEY_LEN + 1];
    key_hex(key, hex);
    if (entry_path(path, sizeof path, dir, key) != 0 ||
        snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX.tmp", dir, hex) >= (int)sizeof tmp) {
        snprintf(why, whylen, "cache directory name too long");
        return -1;
    }
    if (make_dirs(dir) != 0) {
        snprintf(why, whylen, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    char *bytes = NULL;
    size_t len = 0;
    if (hs_serialize_database(db, &bytes, &len) != HS_SUCCESS) {
        snprintf(why, whylen, "the rule library cannot serialize the rules");
        return -1;
    }
    unsigned char header[HEADER_LEN];
    memcpy(header, MAGIC, sizeof MAGIC);
    int rc = -1;
    if (digest(bytes, len, header + sizeof MAGIC) != 0) {
        snprintf(why, whylen, "cannot checksum the entry");
        goto out;
    }
    /* A name of its own (O_EXCL): routers in containers sharing the directory may share a pid. */
    int fd = mkostemps(tmp, 4, O_CLOEXEC);
    if (fd >= 0) fchmod(fd, 0640); /* as readable as before for routers sharing the group */
    if (fd < 0) {
        snprintf(why, whylen, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    /* fsync before rename: after a power cut the name points at the whole file or at
     * nothing, never at an empty one (the checksum would refuse it, at the cost of a compile). */
    if (write_all(fd, header, sizeof header) != 0 || write_all(fd, bytes, len) != 0 ||
        fsync(fd) != 0) {
        snprintf(why, whylen, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        snprintf(why, whylen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    prune(dir);
    rc = 0;
out:
    free(bytes); /* hs_serialize_database allocates with the misc allocator: malloc */
    return rc;
}
