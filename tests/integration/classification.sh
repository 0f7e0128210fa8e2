#!/usr/bin/env bash
# The default rules of deploy/chain.example.yaml against the labelled set
# (tests/data/classification.jsonl; tests/data/README.md says how it was written and labelled).
# Prints the accuracy of every field on all samples, the dev part and the held-out part (the
# rules were tuned on dev only), and each category's recall. Of issue 3/7's targets, category
# >= 90% right on the whole set is checked; every emergency recognised is not met yet (47 of
# 49: two held-out ones), so emergency recall is reported, with a floor that keeps it from
# sliding back.
source "$CW_ROOT/tests/lib/common.sh"
data="$CW_ROOT/tests/data/classification.jsonl"
out="$CW_TMP/eval.out"

if "$CW_BUILD/itests/classify_eval" --chain "$CW_ROOT/deploy/chain.example.yaml" --data "$data" \
  >"$out" 2>"$CW_TMP/eval.err"; then
  ok "the labelled set is read and every sample classified"
else
  not_ok "the labelled set is read and every sample classified" "$(head -3 "$CW_TMP/eval.err")"
  exit 0
fi
grep '^split=' "$out" | sed 's/^/# figure: /'
echo "# figure: $(grep '^category_recall' "$out" | sed 's/^category_recall //; s/ (.*//' | paste -sd' ')"

kv() { grep "^split=$1 " "$out" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
at_least() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a + 0 >= b + 0)}'; }

n=$(kv all n)
check "at least 300 labelled samples ($n)" at_least "$n" 300
emergencies=$(kv all emergencies)
check "the set has emergencies to find ($emergencies)" at_least "$emergencies" 30
# The rows add up: every sample counted once in dev or holdout.
dev=$(kv dev n) holdout=$(kv holdout n)
check "dev ($dev) and holdout ($holdout) make up the whole set" test "$((dev + holdout))" = "$n"
check "the holdout part is a real part (at least a quarter: $holdout of $n)" at_least "$((holdout * 4))" "$n"
category=$(kv all category)
check "category right for at least 90% of the whole set ($category)" at_least "$category" 0.90
recall=$(kv all emergency_recall)
check "emergencies recognised: at least 95% of the whole set ($recall; the target is 100%)" at_least "$recall" 0.95
check "emergencies recognised: all of the dev part ($(kv dev emergency_recall))" at_least "$(kv dev emergency_recall)" 1
