/* The small chain the router's unit tests classify with (test_router.c, test_rulecache.c):
 * one rule for each behaviour they check, written so each rule's purpose is plain. */
#ifndef CW_TEST_ROUTER_CHAIN_H
#define CW_TEST_ROUTER_CHAIN_H

#include <check.h>

#include "chain_yaml.h"

/* clang-format off */
#define CHAIN_HEAD                                                                                 \
    "chain: {id: t, name: 测试集团, timezone: Asia/Shanghai}\n"                                    \
    "roles:\n"                                                                                     \
    "  - {id: desk_agent, name: 服务台}\n"                                                         \
    "  - {id: duty_manager, name: 值班经理}\n"                                                     \
    "sites:\n"
#define SITE(ID)                                                                                   \
    "  - id: " ID "\n"                                                                             \
    "    name: 店" ID "\n"                                                                         \
    "    kind: mall\n"                                                                             \
    "    opening_hours: {mon: \"00:00-24:00\", tue: \"00:00-24:00\", wed: \"00:00-24:00\",\n"     \
    "                    thu: \"00:00-24:00\", fri: \"00:00-24:00\", sat: \"00:00-24:00\",\n"     \
    "                    sun: \"00:00-24:00\"}\n"                                                  \
    "    departments: [{id: " ID "-desk, name: 服务台, kind: service_desk}]\n"                     \
    "    staff:\n"                                                                                 \
    "      - {id: " ID "-S1, name: 张三, department: " ID "-desk,\n"                               \
    "         roles: [desk_agent, duty_manager],\n"                                                \
    "         shifts: [{days: [mon, tue, wed, thu, fri, sat, sun], from: \"00:00\", to: \"24:00\"}]}\n" \
    "    escalation: {ladder: [desk_agent], fallback_role: duty_manager}\n"
#define CHAIN_TAIL                                                                                 \
    "routing:\n"                                                                                   \
    "  - {category: other, departments: [service_desk]}\n"                                         \
    "sla_policies:\n"                                                                              \
    "  - {id: default, clocks: {reply: 24h}}\n"

static const char rules_yaml[] =
    CHAIN_HEAD SITE("SH01") SITE("HZ01") CHAIN_TAIL
    "classification_rules:\n"
    "  - id: fire\n"
    "    priority: 100\n"
    "    patterns: [\"着火\", \"fire\", \"burning smell\", \"smoke\"]\n"
    "    set: {category: safety, urgency: emergency, type: complaint}\n"
    "  - id: tenant-leak\n"
    "    priority: 90\n"
    "    patterns: [\"漏水\"]\n"
    "    when: {channels: [tenant_api]}\n"
    "    set: {category: environment, urgency: important, type: request}\n"
    "  - id: hz-only\n"
    "    priority: 80\n"
    "    patterns: [\"杭州\"]\n"
    "    when: {sites: [HZ01]}\n"
    "    set: {department_kind: security}\n"
    "  - id: pests\n"
    "    priority: 50\n"
    "    patterns: [\"rat\", \"toilet\", \"老鼠\", \"drip\", \"scurry\"]\n"
    "    set: {category: cleanliness}\n"
    "  - id: price\n"
    "    priority: 50\n"
    "    patterns: [\"价格\", \"a+b\"]\n"
    "    regex: [\"多收(了)?[[:space:]]*[0-9]+[[:space:]]*元\"]\n"
    "    set: {category: price_dispute, type: complaint}\n"
    "  - id: praise\n"
    "    priority: 40\n"
    "    patterns: [\"谢谢\", \"thank\"]\n"
    "    set: {type: praise}\n"
    "  - id: where\n"
    "    priority: 30\n"
    "    patterns: [\"在哪？\"]\n"
    "    regex: [\"（急）\", \"\\\\（问\"]\n"
    "    set: {type: inquiry}\n"
    "  - id: weather\n"
    "    priority: 20\n"
    "    patterns: [\"下雨\"]\n"
    "    set: {validity: invalid}\n";
/* clang-format on */

static inline cw_chain *load_yaml(const char *yaml)
{
    cw_chain *c = cw_test_chain_from_yaml(yaml);
    ck_assert_msg(c != NULL, "the test chain does not load");
    return c;
}

#endif
