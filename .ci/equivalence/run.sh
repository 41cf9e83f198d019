#!/bin/bash
# The equivalence check of issue 18 ("behaviour unchanged"): the ledger
# library at the baseline (d33021a: issue 17 landed, before the
# restructuring) and at the restructured code (6542226) is fed the same
# 3,000 signed events, the same log, cosigner and demo keys and a fixed
# clock, in the same batches; each writes every kept checkpoint, every tile
# of the final tree, three inzage bundles (two for the central desk, one for
# a party's desk) and the FG audit's JSON report. The two outputs are then
# compared byte for byte, after masking the one thing neither commit can
# fix: the cosignature's timestamp, which transparency-dev/formats stamps
# from the wall clock (with the signature over it, and the audit's
# cosigned_at times that read it). The request id in a bundle is a random
# UUIDv7 and is replaced by REQUEST-ID before writing.
#
# Usage: bash .ci/equivalence/run.sh [amersfoort|waterweg] (from the
# repository root; needs the full history). Exit 0 when identical.
set -euo pipefail
demo=${1:-amersfoort}
repo=$(git rev-parse --show-toplevel)
here=$repo/.ci/equivalence
r=$(mktemp -d)
trap 'git -C "$repo" worktree remove --force "$r/src-before" >/dev/null 2>&1 || true; git -C "$repo" worktree remove --force "$r/src-after" >/dev/null 2>&1 || true' EXIT
git -C "$repo" worktree add -q --detach "$r/src-before" d33021a
git -C "$repo" worktree add -q --detach "$r/src-after" 6542226
mkdir -p "$r/keys"
for w in after before; do
  d=$r/src-$w/internal/equivcheck
  mkdir -p "$d"
  cp "$here/common_test.go.in" "$d/common_test.go"
  cp "$here/${w}_test.go.in" "$d/${w}_test.go"
  # The first run (after) makes the keys and events; the second reads them.
  ( cd "$r/src-$w" && EQUIV_DEMO=$demo EQUIV_KEYS=$r/keys EQUIV_OUT=$r/$w EQUIV_EVENTS=$r/events.b64 \
      go test -count=1 -v ./internal/equivcheck/ 2>&1 | grep -E 'tree size|^(ok|FAIL|---)' )
done
cp -r "$r/before" "$r/before.raw"; cp -r "$r/after" "$r/after.raw"
mask() {
  find "$1" -type f \( -name '*.json' -o -name '*.txt' \) -exec sed -i -E \
    's#(/cosigner )[A-Za-z0-9+/=]+#\1COSIG#g; s#("(first_|last_)?cosigned_at": )"[^"]*"#\1"T"#g' {} +
}
mask "$r/before"; mask "$r/after"
echo "$demo: files that differ before masking: $(diff -rq "$r/before.raw" "$r/after.raw" | wc -l) of $(find "$r/after" -type f | wc -l)"
diff -r "$r/before" "$r/after"
echo "$demo: identical after masking the cosignature timestamps: $(find "$r/after" -type f | wc -l) files ($(du -sb "$r/after" | cut -f1) bytes)"
