/*
 * Request bodies of loadgen: realistic complaints for POST /v1/cases (docs/api.md), about
 * 1 KiB each, with Chinese text, a distinct mainland mobile number per request, and a purchase
 * in the past. Reproducible with the same seed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bodies.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

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
static void body_phone(const struct lg_bodies *lg, uint64_t seq, char out[16])
{
    uint64_t n = (lg->phone_base + seq / N_OF(mobile_prefixes)) % 100000000ULL;
    snprintf(out, 16, "%s%08" PRIu64, mobile_prefixes[seq % N_OF(mobile_prefixes)], n);
}

/* A UTC date 1..60 days ago: never after today in Asia/Shanghai, which is ahead of UTC. */
static void body_past_date(struct lg_bodies *lg, char out[16], char compact[16])
{
    time_t t = time(NULL) - (time_t)(1 + rng_below(&lg->rng, 60)) * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
    strftime(compact, 16, "%Y%m%d", &tm);
}

static void body_location(struct lg_bodies *lg, const char *site, char *out, size_t cap)
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

/* One POST /v1/cases body. */
size_t lg_body_build(struct lg_bodies *lg, uint64_t seq, char *out, size_t cap)
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
    int n = snprintf(out, cap,
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
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

void lg_body_phone(const struct lg_bodies *b, uint64_t seq, char out[16])
{
    body_phone(b, seq, out);
}

void lg_bodies_init(struct lg_bodies *b, uint64_t seed)
{
    b->rng = rng_seed(seed);
    b->phone_base = rng_next(&b->rng) % 100000000ULL;
}
