/*
 * loadgen: the HTTP/1.1 load generator of the gateway benchmark (bench/gateway.sh).
 *
 * One thread, one libevent loop, N keep-alive connections speaking raw HTTP/1.1 over
 * bufferevents. evhttp's client would allocate a request object and a header queue per request;
 * all we need from an answer is its status, its Content-Length and where it ends.
 *
 * Two modes:
 *  1. Closed loop (default): each connection sends its next request as soon as the previous
 *     answer has arrived; latency runs from the send to the end of the answer. This measures
 *     how many requests a server can answer.
 *  2. Open loop (--rate R): request i is due at start + i/R whatever the server does. A due
 *     request goes out on any idle connection; when every connection is busy it waits for one,
 *     and the wait counts: latency runs from the due time, not from the send. A server that
 *     stalls for a second shows a second in the percentiles, instead of one slow request and a
 *     polite pause in the load (no coordinated omission).
 *
 * Requests due (open) or sent (closed) during --warmup are not counted, and warm-up requests
 * still waiting when the measured time begins are dropped. At the end, counted requests still
 * in flight get up to --timeout to finish; due requests that never went out are reported as
 * unsent. The result is one line of key=value pairs on stdout (summary_print()); the first
 * answer of each non-2xx status is shown on stderr, so that a benchmark of 404s or 422s
 * explains itself.
 *
 * Bodies are realistic complaints for POST /v1/cases (docs/api.md), about 1 KiB each, with
 * Chinese text, a distinct mainland mobile number and a unique Idempotency-Key per request.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#define MAX_CONNECTIONS 10000
#define MAX_SECONDS 600.0
#define MAX_RATE 1000000.0
#define MAX_LINE 8192         /* a status or header line longer than this is a protocol error */
#define MAX_BODY 8192         /* generated request bodies stay well under this */
#define SAMPLE_BYTES 300      /* how much of a non-2xx answer is shown */
#define MIN_TICK_NS 100000ULL /* open loop: at most 10,000 wakeups a second, batches beyond */
#define LATE_NS 1000000ULL    /* open loop: sent more than 1 ms after due = waited for a conn */
#define BACKOFF_MAX_MS 1000
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Latency histogram in microseconds, HDR style: exact below 128 us, then 128 linear buckets
 * per power of two, so every value is known to within 1 % in a fixed 32 KiB whatever the
 * duration or rate. */
#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_SHIFT 31
#define HIST_BUCKETS (HIST_SUB + (HIST_MAX_SHIFT + 1) * HIST_SUB)

struct lg_hist {
    uint64_t counts[HIST_BUCKETS];
    uint64_t total;
    uint64_t max_us;
};

struct lg_opts {
    char host[256];
    char port[8];
    char path[1024];
    char host_header[300];
    int post;
    int connections;
    double duration_s, warmup_s, rate, timeout_s;
    int idempotency;
    uint64_t seed;
    int sample;
};

enum conn_state { CONN_CLOSED, CONN_CONNECTING, CONN_IDLE, CONN_BUSY };
enum parse_state { PARSE_STATUS, PARSE_HEADERS, PARSE_BODY };

struct lg;

struct lg_conn {
    struct lg *lg;
    struct bufferevent *bev;
    struct event *retry; /* frees a closed bufferevent, then reconnects after the backoff */
    enum conn_state state;
    int idle_pos; /* index in lg->idle, -1 when not idle */
    int fails;    /* consecutive failures since the last complete answer: the backoff */
    int backoff_ms;
    /* the request in flight */
    uint64_t start_ns; /* due time (open loop) or send time (closed loop) */
    int counted;
    /* the answer being parsed */
    enum parse_state pstate;
    int status;
    int64_t content_length; /* -1: not given */
    int chunked, close_after, until_close, want_sample;
    uint64_t body_left;
    char sample[SAMPLE_BYTES];
    size_t sample_len;
};

struct lg_stats {
    uint64_t sent, completed, status[6], errors, timeouts, unfinished;
    uint64_t connect_errors, reconnects, late, loader_late, unsent, offered, warmup_skipped;
    uint64_t body_bytes;
};

struct lg {
    struct lg_opts o;
    struct event_base *base;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct lg_conn *conns;
    int *idle; /* open loop: stack of idle connections */
    int nidle;
    struct event *tick, *end_ev, *drain_ev, *sig_int, *sig_term;
    uint64_t t0, warm_end, end, stopped_at;
    int stopping;
    uint64_t next_idx;       /* open loop: the next request to send */
    uint64_t first_counted;  /* open loop: the first request due after the warm-up */
    uint64_t seq;            /* request number: phone numbers and keys */
    uint64_t inflight_count; /* counted requests in flight */
    uint64_t rng;
    uint64_t phone_base;
    char runid[24];
    unsigned char sample_seen[600];
    struct lg_stats st;
    struct lg_hist hist;
    char body[MAX_BODY];
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static struct timeval tv_from_ns(uint64_t ns)
{
    struct timeval tv = {.tv_sec = (time_t)(ns / 1000000000ULL),
                         .tv_usec = (suseconds_t)(ns % 1000000000ULL / 1000)};
    return tv;
}

/* xorshift64*: fast, and reproducible with --seed. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}
/* splitmix64 of the seed: nearby seeds (1, 2, 3...) still start far apart. */
static uint64_t rng_seed(uint64_t seed)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return z ? z : 1; /* xorshift stays at 0 forever */
}
static unsigned rng_below(uint64_t *s, unsigned n) { return (unsigned)(rng_next(s) % n); }

/* ---- latency histogram ---- */

static size_t hist_index(uint64_t us)
{
    if (us < HIST_SUB) return (size_t)us;
    unsigned msb = 63u - (unsigned)__builtin_clzll(us);
    unsigned shift = msb - HIST_SUB_BITS;
    if (shift > HIST_MAX_SHIFT) return HIST_BUCKETS - 1;
    return HIST_SUB + (size_t)shift * HIST_SUB + (size_t)((us >> shift) - HIST_SUB);
}

/* The highest value a bucket holds: percentiles err on the slow side. */
static uint64_t hist_bucket_high(size_t idx)
{
    if (idx < HIST_SUB) return idx;
    size_t shift = (idx - HIST_SUB) / HIST_SUB, sub = (idx - HIST_SUB) % HIST_SUB;
    return ((HIST_SUB + sub) << shift) + ((uint64_t)1 << shift) - 1;
}

static void hist_add(struct lg_hist *h, uint64_t us)
{
    h->counts[hist_index(us)]++;
    h->total++;
    if (us > h->max_us) h->max_us = us;
}

static double hist_percentile_ms(const struct lg_hist *h, double p)
{
    if (h->total == 0) return 0;
    uint64_t want = (uint64_t)(p / 100.0 * (double)h->total + 0.999999);
    if (want == 0) want = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= want) {
            uint64_t v = hist_bucket_high(i);
            return (double)(v < h->max_us ? v : h->max_us) / 1000.0;
        }
    }
    return (double)h->max_us / 1000.0;
}

/* ---- request bodies ---- */

struct complaint {
    const char *category, *type, *text, *request;
};

/* What customers actually write at a mall, a supermarket and a department store. */
static const struct complaint complaints[] = {
    {"product_quality", "complaint",
     "上周六在超市买了一箱进口纯牛奶，回家打开发现有三盒已经胀包，摇起来有结块，生产日期还在保质期"
     "内，孩子差点就喝了。小票和剩下的牛奶都还在，希望超市查一下这批货的进货和储存情况，给我一个说"
     "法。",
     "退货退款并检查同批次商品"},
    {"product_quality", "complaint",
     "在3楼专柜买的保温杯，用了不到一周就开始漏水，杯盖的密封圈明显有问题，装热水时还烫到了手。去专"
     "柜要求换货，店员说要先寄回厂家检测，至少等半个月才有结果，期间也不给换，我觉得这样处理很不合"
     "理。",
     "直接换新"},
    {"service_attitude", "complaint",
     "今天下午四点左右在一楼化妆品专柜咨询粉底色号，导购员一直低头玩手机，问了两遍才不耐烦地回答，"
     "试色时还说“买不起就别试”。我是商场的金卡会员，从来没有受到过这样的对待，非常失望，请管理方严"
     "肃处理。",
     "导购当面道歉"},
    {"service_attitude", "complaint",
     "周日晚上超市只开了两个收银台，排队二十多分钟。轮到我时收银员态度很差，扫码速度慢还嫌我装袋慢"
     "，当着后面顾客的面数落我，我说了一句她还翻白眼。旁边的值班经理看到了也没有过来处理。",
     "加开收银台，收银员道歉"},
    {"parking", "complaint",
     "地下二层停车场出口的闸机坏了，车辆排队出场等了四十分钟，现场没有任何工作人员指挥，也没有广播"
     "通知。最后出场时系统还按超时多收了我十元停车费，收费员说他没有权限退，让我自己找服务台。",
     "退还多收的停车费"},
    {"parking", "complaint",
     "停车场B区的车位线画得太窄，旁边的车开门时把我的车门刮花了一大块漆。我当天就找保安要求调看监控"
     "，对方说要等经理批准，到现在已经两天了，打电话问了三次都说在走流程，没有任何回音。",
     "调取监控，协助联系对方车主"},
    {"cleanliness", "complaint",
     "五楼美食广场的桌子上全是油渍，地上有食物残渣，垃圾桶满了溢出来也没人清理，吃饭的时候还看见一"
     "只蟑螂从墙角爬过去。中午人最多的时候只看到一个保洁阿姨，根本忙不过来。这样的卫生条件怎么让人"
     "放心就餐？",
     "加强保洁和除虫"},
    {"cleanliness", "complaint",
     "二楼女卫生间已经连续好几天没有卫生纸，洗手液也是空的，烘手机坏了没人修，地面湿滑有积水，我母"
     "亲差点在里面摔倒。跟门口的保洁员说过，她说物资没有补货她也没有办法。",
     "尽快补充物资并安排保洁"},
    {"environment", "complaint",
     "商场空调温度开得太低，三楼儿童游乐区特别冷，孩子玩了半个小时就开始打喷嚏，回家后发烧了。跟现"
     "场工作人员反映过两次，都说空调是统一控制的调不了，建议至少在儿童区做一下单独的温度调整。",
     "调高儿童区温度"},
    {"price_dispute", "complaint",
     "货架上标的是会员价29.9元，结账时却按49."
     "9元收费，我当场指出后，收银员说价签没有及时更换，只肯退差价，不肯按规定赔偿。价签和实际收费不"
     "符，已经属于价格欺诈，我拍了价签和小票的照片作为证据。",
     "按规定赔偿"},
    {"price_dispute", "complaint",
     "参加满300减50的周年庆活动，结账时系统没有自动减免，去服务台询问，工作人员说活动商品不包括这个"
     "品牌，但现场的海报和广播上都没有任何说明，导购在我购买时也说可以参加活动。",
     "按海报兑现优惠"},
    {"order_handling", "complaint",
     "在小程序上下单的生鲜配送，约定下午两点到四点送达，结果晚上七点才送到，冰鲜的虾已经完全化冻变"
     "软，有异味。期间客服电话一直打不通，在线客服也只会自动回复，订单状态一直显示配送中。",
     "退还生鲜货款"},
    {"returns", "complaint",
     "上周买的羽绒服吊牌还在，也没有穿过，七天内去专柜退货，专柜说打折商品不退不换。但购买时没有任"
     "何人告诉我这个规定，小票上也没有注明，专柜墙上的告示是我退货时才贴上去的。",
     "按七天无理由退货"},
    {"safety", "complaint",
     "一楼中庭通往二楼的扶梯运行时有很大的异响，还明显抖动，今天我带家里老人乘坐时老人差点摔倒，幸"
     "好旁边有人扶了一把。扶梯口没有任何安全提示，也没有工作人员看护，请尽快停用检修，避免发生事故"
     "。",
     "停用检修扶梯"},
    {"lost_and_found", "inquiry",
     "昨天晚上大约八点在四楼电影院检票口附近丢失一个黑色双肩包，里面有一台笔记本电脑、工作证和一些"
     "文件，对我非常重要。请帮忙查看那个时间段的监控，如果有人捡到交到服务台，请联系我。",
     "帮忙寻找失物"},
    {"product_quality", "complaint",
     "前天在熟食区买的卤牛肉，回家吃了以后全家三口都开始拉肚子，剩下的肉闻起来有明显的酸味。已经去"
     "医院看过急诊，病历、发票和购物小票都保留了，剩下的牛肉也放在冰箱里，可以拿去检测。",
     "赔偿医药费并下架同批熟食"},
    {"service_attitude", "complaint",
     "打商场的服务热线投诉停车场的问题，接线员没听我说完就说这不归他们管，然后直接挂断了电话，再打"
     "过去一直占线。作为消费者，我的问题到现在都没有人处理，也没有人告诉我应该找哪个部门。",
     "安排专人回电"},
    {"other", "suggestion",
     "建议商场在母婴室增加温奶器和尿布台，现在只有一个很小的房间，周末人多的时候要在门口排很久，里"
     "面的沙发也很旧了。带孩子逛街的家庭很多，希望商场能重视一下这方面的设施。",
     NULL},
    {"environment", "complaint",
     "六楼健身房在装修，噪音非常大，工作日上午十点就开始用电钻，一直持续到晚上，楼下书店和咖啡馆完"
     "全没法待。请问商场能否规定装修施工的时间，至少避开营业的高峰时段？",
     "限制装修施工时间"},
    {"other", "praise",
     "上周在服务台附近遗失钱包，里面有身份证和银行卡，工作人员小李帮我调监控找了一个多小时，最后在"
     "停车场找到并完整归还，还主动送我到车边。非常感谢，希望商场给予表扬。",
     NULL},
};

/* Put around the templates' texts, so that lengths vary beyond the templates'. */
static const char *const openers[] = {
    "",
    "我是你们商场的老会员，平时基本每周都会来购物，这次的经历让我非常不满意。",
    "今天是周末，带家人来逛街，本来心情很好，结果遇到了下面这件事。",
    "我已经在服务台口头反映过一次，工作人员让我在网上再提交一遍，所以写了这份投诉。",
    "想反映一个问题，我觉得不只是我一个人遇到过，希望商场管理层能够重视。",
    "本来不想投诉，但是回家想了想，觉得还是有必要让商场知道这件事。",
};
static const char *const evidence[] = {
    "",
    "当时是下午三点左右，现场有好几位顾客都看到了，可以调监控核实。",
    "我保留了照片、视频和购物小票，需要的话可以随时提供给你们。",
    "事情发生后我当场找了现场的工作人员，但对方说这不归他管，让我自己去服务台反映。",
    "我的家人当时也在场，可以作证，我们都觉得这样的处理方式很难接受。",
    "我查了商场公众号上的服务承诺，和实际的情况完全不一样。",
};
static const char *const closers[] = {
    "",
    "希望尽快处理，处理结果请短信或电话告诉我，谢谢。",
    "请相关负责人尽快与我联系，白天工作时间打电话都可以，晚上八点以后请发短信。",
    "如果三天内没有答复，我会向12315和市场监管部门投诉，也会在网上如实发布这次的经历。",
    "这已经不是第一次了，上个月也遇到过类似的情况，当时答应整改，但到现在没有任何变化。希望这次"
    "能认真对待，给消费者一个满意的答复。",
    "我对贵商场一直印象不错，也推荐过很多朋友来，希望这次能妥善解决，不要让老顾客寒心。",
};
static const char *const names[] = {"张伟", "王芳", "李娜",   "刘洋", "陈静",   "杨磊",
                                    "赵敏", "黄丽", "周杰明", "吴倩", "徐晓东", "孙悦"};
static const char *const sites[] = {"SH01", "SH02", "HZ01"};
static const char *const channels[] = {"web", "app", "mini_program", "kiosk"};
static const char *const floors[] = {"B2", "B1", "1F", "2F", "3F", "4F", "5F", "6F"};
static const char *const details[] = {"东侧电梯旁", "中庭扶梯口",  "北门入口",
                                      "收银台附近", "地下车库B区", "美食广场"};
/* Tenants of SH01 in deploy/chain.example.yaml: a complaint may name the shop. */
static const struct {
    const char *id, *floor, *unit;
} tenants[] = {{"T-SH01-0312", "3F", "3F-12"},
               {"T-SH01-0105", "1F", "1F-05"},
               {"T-SH01-0520", "5F", "5F-20"},
               {"T-SH01-B112", "B1", "B1-12"}};
static const char *const mobile_prefixes[] = {"139", "138", "137", "136", "135", "150",
                                              "151", "158", "186", "188", "177", "199"};

/* Distinct per request: the prefix cycles and the 8 digits count up from a random base. */
static void body_phone(struct lg *lg, uint64_t seq, char out[16])
{
    uint64_t n = (lg->phone_base + seq / N_OF(mobile_prefixes)) % 100000000ULL;
    snprintf(out, 16, "%s%08" PRIu64, mobile_prefixes[seq % N_OF(mobile_prefixes)], n);
}

/* A UTC date 1..60 days ago: never after today in Asia/Shanghai, which is ahead of UTC. */
static void body_past_date(struct lg *lg, char out[16], char compact[16])
{
    time_t t = time(NULL) - (time_t)(1 + rng_below(&lg->rng, 60)) * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
    strftime(compact, 16, "%Y%m%d", &tm);
}

static void body_location(struct lg *lg, const char *site, char *out, size_t cap)
{
    const char *detail = details[rng_below(&lg->rng, N_OF(details))];
    if (strcmp(site, "SH01") == 0 && rng_below(&lg->rng, 2) == 0) {
        unsigned t = rng_below(&lg->rng, N_OF(tenants));
        snprintf(out, cap, "{\"floor\":\"%s\",\"unit\":\"%s\",\"tenant\":\"%s\",\"detail\":\"%s\"}",
                 tenants[t].floor, tenants[t].unit, tenants[t].id, detail);
    } else {
        snprintf(out, cap, "{\"floor\":\"%s\",\"detail\":\"%s\"}",
                 floors[rng_below(&lg->rng, N_OF(floors))], detail);
    }
}

/* Writes one POST /v1/cases body into lg->body; returns its length, 0 if it did not fit. */
static size_t body_build(struct lg *lg, uint64_t seq)
{
    const struct complaint *c = &complaints[rng_below(&lg->rng, N_OF(complaints))];
    const char *site = sites[rng_below(&lg->rng, N_OF(sites))];
    char phone[16], date[16], compact[16], location[256], request[160];
    body_phone(lg, seq, phone);
    body_past_date(lg, date, compact);
    body_location(lg, site, location, sizeof location);
    if (c->request)
        snprintf(request, sizeof request, "\"%s\"", c->request);
    else
        snprintf(request, sizeof request, "null");
    unsigned yuan = 5 + rng_below(&lg->rng, 3000), fen = rng_below(&lg->rng, 100);
    int n = snprintf(lg->body, sizeof lg->body,
                     "{\"site\":\"%s\",\"channel\":\"%s\",\"text\":\"%s%s%s%s\","
                     "\"customer\":{\"name\":\"%s\",\"phone\":\"%s\",\"language\":\"zh\"},"
                     "\"location\":%s,"
                     "\"purchase\":{\"date\":\"%s\",\"amount\":\"%u.%02u\",\"currency\":\"CNY\","
                     "\"receipt_no\":\"R%s-%04u\",\"order_no\":null,\"under_warranty\":%s},"
                     "\"request\":%s,\"type_hint\":\"%s\",\"category_hint\":\"%s\","
                     "\"external_ref\":\"LG-%06u\"}",
                     site, channels[rng_below(&lg->rng, N_OF(channels))],
                     openers[rng_below(&lg->rng, N_OF(openers))], c->text,
                     evidence[rng_below(&lg->rng, N_OF(evidence))],
                     closers[rng_below(&lg->rng, N_OF(closers))],
                     names[rng_below(&lg->rng, N_OF(names))], phone, location, date, yuan, fen,
                     compact, rng_below(&lg->rng, 10000), rng_below(&lg->rng, 2) ? "true" : "false",
                     request, c->type, c->category, rng_below(&lg->rng, 1000000));
    return n > 0 && (size_t)n < sizeof lg->body ? (size_t)n : 0;
}

/* ---- connections ---- */

static void conn_connect(struct lg_conn *c);
static void conn_ready(struct lg_conn *c);
static void lg_dispatch(struct lg *lg, uint64_t now, int from_tick);
static void lg_maybe_done(struct lg *lg);

static void idle_push(struct lg_conn *c)
{
    struct lg *lg = c->lg;
    c->idle_pos = lg->nidle;
    lg->idle[lg->nidle++] = (int)(c - lg->conns);
}

static void idle_remove(struct lg_conn *c)
{
    struct lg *lg = c->lg;
    if (c->idle_pos < 0) return;
    int last = lg->idle[--lg->nidle];
    lg->idle[c->idle_pos] = last;
    lg->conns[last].idle_pos = c->idle_pos;
    c->idle_pos = -1;
}

static int conn_send(struct lg_conn *c, uint64_t start_ns)
{
    struct lg *lg = c->lg;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    uint64_t seq = lg->seq++;
    size_t len = 0;
    if (lg->o.post && (len = body_build(lg, seq)) == 0) return -1;
    int r =
        evbuffer_add_printf(out, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: casewire-loadgen\r\n",
                            lg->o.post ? "POST" : "GET", lg->o.path, lg->o.host_header);
    if (r >= 0 && lg->o.post)
        r = evbuffer_add_printf(out, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                                len);
    if (r >= 0 && lg->o.post && lg->o.idempotency)
        r = evbuffer_add_printf(out, "Idempotency-Key: lg-%s-%" PRIu64 "\r\n", lg->runid, seq);
    if (r >= 0) r = evbuffer_add(out, "\r\n", 2);
    if (r >= 0 && len) r = evbuffer_add(out, lg->body, len);
    if (r < 0) return -1;

    struct timeval tv = tv_from_ns((uint64_t)(lg->o.timeout_s * 1e9));
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    c->state = CONN_BUSY;
    c->start_ns = start_ns;
    c->counted = start_ns >= lg->warm_end && start_ns < lg->end;
    c->pstate = PARSE_STATUS;
    if (c->counted) {
        lg->st.sent++;
        lg->st.body_bytes += len;
        lg->inflight_count++;
    }
    return 0;
}

/* Closes the connection (accounting for a request in flight) and arranges the reconnect. The
 * bufferevent is freed from the retry event, never inside its own callback. */
static void conn_close(struct lg_conn *c, int timed_out)
{
    struct lg *lg = c->lg;
    if (c->state == CONN_BUSY && c->counted) {
        lg->inflight_count--;
        if (timed_out)
            lg->st.timeouts++;
        else
            lg->st.errors++;
    }
    if (c->state == CONN_CONNECTING) lg->st.connect_errors++;
    idle_remove(c);
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
    c->state = CONN_CLOSED;
    /* The first failure reconnects at once (a server closing an idle keep-alive connection is
     * normal); repeated ones back off, so that a dead server is not hammered. */
    c->backoff_ms = c->fails == 0 ? 0 : 10 << (c->fails < 8 ? c->fails - 1 : 7);
    if (c->backoff_ms > BACKOFF_MAX_MS) c->backoff_ms = BACKOFF_MAX_MS;
    c->fails++;
    struct timeval now = {0, 0};
    evtimer_add(c->retry, &now);
    lg_maybe_done(lg);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct lg_conn *c = arg;
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
        if (c->backoff_ms > 0 && !c->lg->stopping) {
            struct timeval tv = {c->backoff_ms / 1000, c->backoff_ms % 1000 * 1000};
            evtimer_add(c->retry, &tv);
            return;
        }
    }
    if (c->lg->stopping) return;
    c->lg->st.reconnects++;
    conn_connect(c);
}

static int parse_status(struct lg_conn *c, const char *line)
{
    /* "HTTP/1.1 202 Accepted" */
    if (strncmp(line, "HTTP/1.", 7) != 0 || !line[7] || line[8] != ' ') return -1;
    char *end;
    long status = strtol(line + 9, &end, 10);
    if (end == line + 9 || status < 100 || status > 599) return -1;
    c->status = (int)status;
    c->content_length = -1;
    c->chunked = 0;
    c->close_after = line[7] == '0'; /* HTTP/1.0 closes unless told otherwise: we do not care */
    c->pstate = PARSE_HEADERS;
    return 0;
}

static int parse_header_end(struct lg_conn *c)
{
    if (c->status < 200) { /* an interim answer (100 Continue): the real one follows */
        c->pstate = PARSE_STATUS;
        return 0;
    }
    if (c->chunked) return -1; /* evhttp always sends Content-Length; no need for chunks */
    c->until_close = c->content_length < 0 && c->status != 204 && c->status != 304;
    c->body_left = c->content_length > 0 ? (uint64_t)c->content_length : 0;
    if (c->status == 204 || c->status == 304) c->body_left = 0;
    c->want_sample = c->status >= 300 && !c->lg->sample_seen[c->status];
    c->sample_len = 0;
    c->pstate = PARSE_BODY;
    return 0;
}

static int parse_header(struct lg_conn *c, const char *line)
{
    if (!*line) return parse_header_end(c);
    const char *colon = strchr(line, ':');
    if (!colon) return -1;
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    size_t name_len = (size_t)(colon - line);
    if (name_len == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno || end == v || n < 0) return -1;
        c->content_length = n;
    } else if (name_len == 10 && strncasecmp(line, "Connection", 10) == 0) {
        if (strcasestr(v, "close")) c->close_after = 1;
        if (strcasestr(v, "keep-alive")) c->close_after = 0;
    } else if (name_len == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
        if (strcasestr(v, "chunked")) c->chunked = 1;
    }
    return 0;
}

/* Consumes what has arrived: 1 when the answer is complete, 0 for more, -1 on garbage. */
static int conn_parse(struct lg_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    while (c->pstate != PARSE_BODY) {
        size_t eol_len = 0;
        struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
        if (eol.pos < 0) return evbuffer_get_length(in) > MAX_LINE ? -1 : 0;
        char line[MAX_LINE + 1];
        if ((size_t)eol.pos > MAX_LINE) return -1;
        evbuffer_remove(in, line, (size_t)eol.pos);
        line[eol.pos] = '\0';
        evbuffer_drain(in, eol_len);
        int r = c->pstate == PARSE_STATUS ? parse_status(c, line) : parse_header(c, line);
        if (r < 0) return -1;
    }
    size_t have = evbuffer_get_length(in);
    size_t take = c->until_close || have < c->body_left ? have : (size_t)c->body_left;
    if (c->want_sample && c->sample_len < SAMPLE_BYTES - 1) {
        size_t room = SAMPLE_BYTES - 1 - c->sample_len;
        ev_ssize_t got = evbuffer_copyout(in, c->sample + c->sample_len, take < room ? take : room);
        if (got > 0) c->sample_len += (size_t)got;
    }
    evbuffer_drain(in, take);
    if (c->until_close) return 0; /* complete at EOF */
    c->body_left -= take;
    return c->body_left == 0 ? 1 : 0;
}

static void conn_answered(struct lg_conn *c)
{
    struct lg *lg = c->lg;
    uint64_t now = now_ns();
    if (c->want_sample && !lg->sample_seen[c->status]) {
        lg->sample_seen[c->status] = 1;
        c->sample[c->sample_len] = '\0';
        for (char *p = c->sample; *p; p++) /* one line on stderr, whatever the body */
            if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' ';
        fprintf(stderr, "loadgen: first %d answer: %s\n", c->status, c->sample);
    }
    if (c->counted) {
        lg->inflight_count--;
        lg->st.completed++;
        lg->st.status[c->status / 100]++;
        hist_add(&lg->hist, now > c->start_ns ? (now - c->start_ns) / 1000 : 0);
    }
    c->fails = 0;
    bufferevent_set_timeouts(c->bev, NULL, NULL);
    if (c->close_after || c->until_close) {
        c->state = CONN_IDLE; /* nothing in flight any more: the close costs no request */
        conn_close(c, 0);
        return;
    }
    conn_ready(c);
    lg_maybe_done(lg);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct lg_conn *c = arg;
    /* A new request may be sent from conn_answered(): keep going while one is in flight. */
    while (c->state == CONN_BUSY) {
        int r = conn_parse(c);
        if (r < 0) {
            conn_close(c, 0);
            return;
        }
        if (r == 0) return;
        conn_answered(c);
    }
    /* Bytes nobody asked for: the server is confused, start afresh. */
    if (c->state == CONN_IDLE && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        conn_close(c, 0);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct lg_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        /* Small requests must leave at once, not wait for Nagle. */
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        bufferevent_set_timeouts(bev, NULL, NULL);
        conn_ready(c);
        return;
    }
    if (what & BEV_EVENT_EOF && c->state == CONN_BUSY && c->until_close &&
        c->pstate == PARSE_BODY) {
        conn_answered(c); /* the body ran to the close */
        return;
    }
    conn_close(c, (what & BEV_EVENT_TIMEOUT) != 0);
}

static void conn_connect(struct lg_conn *c)
{
    struct lg *lg = c->lg;
    c->bev = bufferevent_socket_new(lg->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        fprintf(stderr, "loadgen: bufferevent_socket_new failed\n");
        event_base_loopbreak(lg->base);
        return;
    }
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    struct timeval tv = tv_from_ns((uint64_t)(lg->o.timeout_s * 1e9));
    bufferevent_set_timeouts(c->bev, &tv, &tv); /* bounds the connect too */
    c->state = CONN_CONNECTING;
    c->idle_pos = -1;
    c->until_close = 0;
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&lg->addr, (int)lg->addrlen) < 0)
        conn_close(c, 0);
}

/* A connection can take a request: the next one at once (closed loop), or whatever is due. */
static void conn_ready(struct lg_conn *c)
{
    struct lg *lg = c->lg;
    c->state = CONN_IDLE;
    if (lg->stopping) return;
    if (lg->o.rate > 0) {
        idle_push(c);
        lg_dispatch(lg, now_ns(), 0);
        return;
    }
    if (conn_send(c, now_ns()) < 0) {
        fprintf(stderr, "loadgen: cannot build a request\n");
        event_base_loopbreak(lg->base);
    }
}

/* ---- the schedule ---- */

/* Open loop: request i is due at t0 + i/rate. */
static uint64_t due_time(const struct lg *lg, uint64_t i)
{
    return lg->t0 + (uint64_t)((double)i * 1e9 / lg->o.rate);
}
/* How many requests are due at `at`. */
static uint64_t due_count(const struct lg *lg, uint64_t at)
{
    if (at < lg->t0) return 0;
    return (uint64_t)((double)(at - lg->t0) * 1e-9 * lg->o.rate) + 1;
}

/* Sends what is due on idle connections. A request sent over 1 ms after it fell due waited
 * either for a free connection (sent when one came free: the server was slow) or for the
 * loader's own timer (sent from the tick: the loader was short of CPU). While requests wait,
 * every connection is busy, so the tick cannot send them: the two causes stay apart. */
static void lg_dispatch(struct lg *lg, uint64_t now, int from_tick)
{
    /* A backlog left from the warm-up is dropped when the measured time starts: it is not
     * counted, and an overloaded server would otherwise spend the whole measured time on it
     * (every counted request unsent, 0 accepted per second). */
    if (now >= lg->warm_end && lg->next_idx < lg->first_counted) {
        lg->st.warmup_skipped += lg->first_counted - lg->next_idx;
        lg->next_idx = lg->first_counted;
    }
    uint64_t due = due_count(lg, now < lg->end ? now : lg->end - 1);
    while (lg->next_idx < due && lg->nidle > 0) {
        uint64_t at = due_time(lg, lg->next_idx);
        struct lg_conn *c = &lg->conns[lg->idle[lg->nidle - 1]];
        idle_remove(c);
        if (conn_send(c, at) < 0) {
            fprintf(stderr, "loadgen: cannot build a request\n");
            event_base_loopbreak(lg->base);
            return;
        }
        if (c->counted && now > at && now - at > LATE_NS) {
            if (from_tick)
                lg->st.loader_late++;
            else
                lg->st.late++;
        }
        lg->next_idx++;
    }
}

static void timer_in(struct event *ev, uint64_t ns)
{
    struct timeval tv = tv_from_ns(ns);
    evtimer_add(ev, &tv);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct lg *lg = arg;
    if (lg->stopping) return;
    uint64_t now = now_ns();
    lg_dispatch(lg, now, 1);
    /* Wake when the next request falls due; batch when they come faster than the tick. */
    uint64_t next = due_time(lg, due_count(lg, now));
    timer_in(lg->tick, next > now + MIN_TICK_NS ? next - now : MIN_TICK_NS);
}

static void lg_maybe_done(struct lg *lg)
{
    if (lg->stopping && lg->inflight_count == 0) event_base_loopbreak(lg->base);
}

/* The end (or a signal): no new requests; counted ones in flight get --timeout to finish. */
static void lg_stop(struct lg *lg)
{
    if (lg->stopping) return;
    uint64_t now = now_ns();
    if (lg->o.rate > 0) {
        lg_dispatch(lg, now, 1);
        uint64_t until = now < lg->end ? now : lg->end - 1;
        uint64_t due = due_count(lg, until);
        lg->st.offered = due > lg->first_counted ? due - lg->first_counted : 0;
        lg->st.unsent = lg->st.offered > lg->st.sent ? lg->st.offered - lg->st.sent : 0;
    }
    lg->stopping = 1;
    lg->stopped_at = now < lg->end ? now : lg->end;
    timer_in(lg->drain_ev, (uint64_t)(lg->o.timeout_s * 1e9));
    lg_maybe_done(lg);
}

static void on_end(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    lg_stop(arg);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct lg *lg = arg;
    lg->st.unfinished = lg->inflight_count;
    event_base_loopbreak(lg->base);
}

/* ---- set-up, summary, options ---- */

static void summary_print(const struct lg *lg)
{
    double secs = lg->stopped_at > lg->warm_end ? (double)(lg->stopped_at - lg->warm_end) / 1e9 : 0;
    const struct lg_stats *s = &lg->st;
    printf("mode=%s connections=%d duration_s=%.3f sent=%" PRIu64 " completed=%" PRIu64
           " status_2xx=%" PRIu64 " status_3xx=%" PRIu64 " status_4xx=%" PRIu64
           " status_5xx=%" PRIu64 " errors=%" PRIu64 " timeouts=%" PRIu64 " unfinished=%" PRIu64
           " connect_errors=%" PRIu64 " reconnects=%" PRIu64 " rate_2xx=%.1f",
           lg->o.rate > 0 ? "open" : "closed", lg->o.connections, secs, s->sent, s->completed,
           s->status[2], s->status[3], s->status[4], s->status[5], s->errors, s->timeouts,
           s->unfinished, s->connect_errors, s->reconnects,
           secs > 0 ? (double)s->status[2] / secs : 0.0);
    if (lg->o.rate > 0)
        printf(" offered_rate=%.1f offered=%" PRIu64 " late=%" PRIu64 " loader_late=%" PRIu64
               " unsent=%" PRIu64 " warmup_skipped=%" PRIu64,
               secs > 0 ? (double)s->offered / secs : 0.0, s->offered, s->late, s->loader_late,
               s->unsent, s->warmup_skipped);
    printf(" p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f body_bytes_avg=%.0f\n",
           hist_percentile_ms(&lg->hist, 50), hist_percentile_ms(&lg->hist, 90),
           hist_percentile_ms(&lg->hist, 99), hist_percentile_ms(&lg->hist, 99.9),
           (double)lg->hist.max_us / 1000.0,
           s->sent ? (double)s->body_bytes / (double)s->sent : 0.0);
    fflush(stdout);
}

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: loadgen [options]\n"
        "\n"
        "HTTP/1.1 keep-alive load against one URL; prints one line of key=value pairs.\n"
        "Default: POST realistic ~1 KiB complaints (docs/api.md POST /v1/cases), each with a\n"
        "distinct phone number and a unique Idempotency-Key.\n"
        "\n"
        "  -u, --url URL          http://HOST:PORT/PATH (default http://127.0.0.1:8080/v1/cases)\n"
        "  -c, --connections N    keep-alive connections, 1..%d (default 64)\n"
        "  -d, --duration S       measured seconds, after the warm-up, up to %.0f (default 10)\n"
        "  -w, --warmup S         seconds of load first, not counted (default 2)\n"
        "  -r, --rate R           open loop: R requests/s on a fixed schedule, latency from the\n"
        "                         scheduled time (a request waiting for a free connection counts\n"
        "                         its wait); without it, closed loop: each connection sends its\n"
        "                         next request when the answer arrives\n"
        "  -t, --timeout S        a request unanswered after S seconds is a timeout; also how\n"
        "                         long requests in flight at the end may finish (default 10)\n"
        "  -m, --method M         POST (default) or GET (no body)\n"
        "      --no-idempotency   send no Idempotency-Key header\n"
        "      --seed N           random seed for the bodies (default: from the clock)\n"
        "      --sample           print one request body and exit\n"
        "  -h, --help             this help\n"
        "\n"
        "Output keys:\n"
        "  mode connections duration_s  what ran (duration_s: the measured time)\n"
        "  sent completed               counted requests sent and answered\n"
        "  status_2xx .. status_5xx     answers by class\n"
        "  errors                       connection reset or unparsable answer, request in flight\n"
        "  timeouts unfinished          no answer within --timeout; still in flight at the end\n"
        "  connect_errors reconnects    failed connects; connections opened again\n"
        "  rate_2xx                     2xx answers per measured second\n"
        "  offered_rate offered         open loop: the schedule, per second and in all\n"
        "  late                         open loop: sent over 1 ms after due, waiting for a free\n"
        "                               connection (the server was slow)\n"
        "  loader_late                  open loop: sent over 1 ms after due because this\n"
        "                               program woke late (it was short of CPU)\n"
        "  unsent                       open loop: due, never sent before the end\n"
        "  warmup_skipped               open loop: warm-up requests still waiting when the\n"
        "                               measured time began, dropped\n"
        "  p50_ms p90_ms p99_ms p999_ms max_ms  latency of every counted answer, any status,\n"
        "                               within 1 %%\n"
        "  body_bytes_avg               average request body\n"
        "The first answer of each non-2xx status is shown on stderr.\n",
        MAX_CONNECTIONS, MAX_SECONDS);
}

static int parse_double(const char *s, double lo, double hi, double *out, const char *what)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "loadgen: %s must be a number in %g..%g, not \"%s\"\n", what, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_url(struct lg_opts *o, const char *url)
{
    if (strncmp(url, "http://", 7) != 0) {
        fprintf(stderr, "loadgen: only http:// URLs are supported, not \"%s\"\n", url);
        return -1;
    }
    const char *h = url + 7, *slash = strchr(h, '/');
    size_t hostport_len = slash ? (size_t)(slash - h) : strlen(h);
    const char *colon = memchr(h, ':', hostport_len);
    size_t host_len = colon ? (size_t)(colon - h) : hostport_len;
    size_t port_len = colon ? hostport_len - host_len - 1 : 2;
    const char *path = slash ? slash : "/";
    if (host_len == 0 || host_len >= sizeof o->host || port_len == 0 ||
        port_len >= sizeof o->port || strlen(path) >= sizeof o->path) {
        fprintf(stderr, "loadgen: cannot use URL \"%s\" (http://HOST[:PORT]/PATH)\n", url);
        return -1;
    }
    memcpy(o->host, h, host_len);
    o->host[host_len] = '\0';
    if (colon) {
        memcpy(o->port, colon + 1, port_len);
        o->port[port_len] = '\0';
    } else {
        strcpy(o->port, "80");
    }
    strcpy(o->path, path);
    snprintf(o->host_header, sizeof o->host_header, "%.*s", (int)hostport_len, h);
    return 0;
}

/* 0: run; 1: help shown; -1: bad usage. */
static int opts_parse(struct lg_opts *o, int argc, char **argv)
{
    enum { OPT_NO_IDEMPOTENCY = 256, OPT_SEED, OPT_SAMPLE };
    static const struct option longopts[] = {
        {"url", required_argument, NULL, 'u'},
        {"connections", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},
        {"rate", required_argument, NULL, 'r'},
        {"timeout", required_argument, NULL, 't'},
        {"method", required_argument, NULL, 'm'},
        {"no-idempotency", no_argument, NULL, OPT_NO_IDEMPOTENCY},
        {"seed", required_argument, NULL, OPT_SEED},
        {"sample", no_argument, NULL, OPT_SAMPLE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url = "http://127.0.0.1:8080/v1/cases";
    double conns = 64;
    *o = (struct lg_opts){
        .post = 1, .duration_s = 10, .warmup_s = 2, .timeout_s = 10, .idempotency = 1};
    o->seed = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid() ^ now_ns();
    int ch, rc = 0;
    while (rc == 0 && (ch = getopt_long(argc, argv, "u:c:d:w:r:t:m:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'u': url = optarg; break;
        case 'c': rc = parse_double(optarg, 1, MAX_CONNECTIONS, &conns, "--connections"); break;
        case 'd':
            rc = parse_double(optarg, 0.001, MAX_SECONDS, &o->duration_s, "--duration");
            break;
        case 'w': rc = parse_double(optarg, 0, MAX_SECONDS, &o->warmup_s, "--warmup"); break;
        case 'r': rc = parse_double(optarg, 0.001, MAX_RATE, &o->rate, "--rate"); break;
        case 't': rc = parse_double(optarg, 0.001, MAX_SECONDS, &o->timeout_s, "--timeout"); break;
        case 'm':
            if (strcasecmp(optarg, "GET") == 0 || strcasecmp(optarg, "POST") == 0) {
                o->post = strcasecmp(optarg, "POST") == 0;
            } else {
                fprintf(stderr, "loadgen: --method is GET or POST, not \"%s\"\n", optarg);
                rc = -1;
            }
            break;
        case OPT_NO_IDEMPOTENCY: o->idempotency = 0; break;
        case OPT_SEED: {
            char *end;
            errno = 0;
            o->seed = strtoull(optarg, &end, 0);
            if (errno || end == optarg || *end) {
                fprintf(stderr, "loadgen: --seed must be a whole number, not \"%s\"\n", optarg);
                rc = -1;
            }
            break;
        }
        case OPT_SAMPLE: o->sample = 1; break;
        case 'h': usage(stdout); return 1;
        default: rc = -1;
        }
    }
    if (rc == 0 && optind < argc) {
        fprintf(stderr, "loadgen: unexpected argument \"%s\"\n", argv[optind]);
        rc = -1;
    }
    if (rc == 0 && conns != (int)conns) {
        fprintf(stderr, "loadgen: --connections must be a whole number\n");
        rc = -1;
    }
    o->connections = (int)conns;
    if (rc == 0) rc = parse_url(o, url);
    if (rc < 0) fprintf(stderr, "loadgen: see --help\n");
    return rc;
}

/* One descriptor per connection plus a few: raise the soft limit up to the hard one. */
static int fd_limit_raise(int connections)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)connections + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return -1;
    if (rl.rlim_cur >= need) return 0;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < need) {
        fprintf(stderr, "loadgen: %d connections need %lu descriptors; the limit is %lu\n",
                connections, (unsigned long)need, (unsigned long)rl.rlim_cur);
        return -1;
    }
    return 0;
}

static int lg_resolve(struct lg *lg)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(lg->o.host, lg->o.port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "loadgen: cannot resolve %s:%s: %s\n", lg->o.host, lg->o.port,
                gai_strerror(rc));
        return -1;
    }
    memcpy(&lg->addr, res->ai_addr, res->ai_addrlen);
    lg->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    lg_stop(arg);
}

static int lg_init(struct lg *lg)
{
    struct event_config *cfg = event_config_new();
    if (!cfg) return -1;
    /* Open-loop schedules need sub-millisecond timers (timerfd), not epoll's milliseconds. */
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    lg->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    lg->conns = calloc((size_t)lg->o.connections, sizeof *lg->conns);
    lg->idle = calloc((size_t)lg->o.connections, sizeof *lg->idle);
    if (!lg->base || !lg->conns || !lg->idle) return -1;
    lg->tick = evtimer_new(lg->base, on_tick, lg);
    lg->end_ev = evtimer_new(lg->base, on_end, lg);
    lg->drain_ev = evtimer_new(lg->base, on_drain_timeout, lg);
    lg->sig_int = evsignal_new(lg->base, SIGINT, on_signal, lg);
    lg->sig_term = evsignal_new(lg->base, SIGTERM, on_signal, lg);
    if (!lg->tick || !lg->end_ev || !lg->drain_ev || !lg->sig_int || !lg->sig_term) return -1;
    evsignal_add(lg->sig_int, NULL);
    evsignal_add(lg->sig_term, NULL);
    for (int i = 0; i < lg->o.connections; i++) {
        lg->conns[i].lg = lg;
        lg->conns[i].idle_pos = -1;
        lg->conns[i].retry = evtimer_new(lg->base, on_retry, &lg->conns[i]);
        if (!lg->conns[i].retry) return -1;
    }
    lg->rng = rng_seed(lg->o.seed);
    lg->phone_base = rng_next(&lg->rng) % 100000000ULL;
    snprintf(lg->runid, sizeof lg->runid, "%" PRIx64, now_ns() ^ ((uint64_t)getpid() << 40));
    return 0;
}

static void lg_free(struct lg *lg)
{
    for (int i = 0; lg->conns && i < lg->o.connections; i++) {
        if (lg->conns[i].bev) bufferevent_free(lg->conns[i].bev);
        if (lg->conns[i].retry) event_free(lg->conns[i].retry);
    }
    struct event *evs[] = {lg->tick, lg->end_ev, lg->drain_ev, lg->sig_int, lg->sig_term};
    for (size_t i = 0; i < N_OF(evs); i++)
        if (evs[i]) event_free(evs[i]);
    free(lg->conns);
    free(lg->idle);
    if (lg->base) event_base_free(lg->base);
    free(lg);
}

static void lg_run(struct lg *lg)
{
    lg->t0 = now_ns();
    lg->warm_end = lg->t0 + (uint64_t)(lg->o.warmup_s * 1e9);
    lg->end = lg->warm_end + (uint64_t)(lg->o.duration_s * 1e9);
    if (lg->o.rate > 0) lg->first_counted = due_count(lg, lg->warm_end - 1);
    timer_in(lg->end_ev, lg->end - lg->t0);
    for (int i = 0; i < lg->o.connections; i++) conn_connect(&lg->conns[i]);
    if (lg->o.rate > 0) timer_in(lg->tick, 0);
    event_base_dispatch(lg->base);
    if (!lg->stopping) { /* broken out of by an error: report what there is */
        lg->stopped_at = now_ns() < lg->end ? now_ns() : lg->end;
        lg->st.unfinished = lg->inflight_count;
    }
}

int main(int argc, char **argv)
{
    struct lg *lg = calloc(1, sizeof *lg);
    if (!lg) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 1;
    }
    int rc = opts_parse(&lg->o, argc, argv);
    if (rc != 0) {
        free(lg);
        return rc > 0 ? 0 : 2;
    }
    if (lg->o.sample) {
        lg->rng = rng_seed(lg->o.seed);
        lg->phone_base = rng_next(&lg->rng) % 100000000ULL;
        size_t len = body_build(lg, 0);
        printf("%.*s\n", (int)len, lg->body);
        free(lg);
        return len ? 0 : 1;
    }
    /* A server closing a connection while we write must be an error code, not a death. */
    signal(SIGPIPE, SIG_IGN);
    if (fd_limit_raise(lg->o.connections) < 0 || lg_resolve(lg) < 0) {
        free(lg);
        return 1;
    }
    if (lg_init(lg) < 0) {
        fprintf(stderr, "loadgen: cannot set up the event loop\n");
        lg_free(lg);
        return 1;
    }
    lg_run(lg);
    summary_print(lg);
    lg_free(lg);
    return 0;
}
