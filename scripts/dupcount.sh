#!/usr/bin/env bash
# dupcount.sh [REV]: issue 12's measure of duplicated code. Copies the
# tracked files of this checkout (or of commit REV) to a temporary
# directory, blanks Go import lists and blocks of error variables
# (`var ( ErrX = errors.New(...) ... )`, keeping line numbers), and runs the
# workplace's `duplicates` tool there: what is left are pairs of code. Prints
# its count line and rows. Import lists and sentinel errors of different
# packages look alike to the tool but are each package's own, and their
# number grows with the number of files (236 when issue 12 was filed, 646
# after it), so the issue's figure is taken without them:
#
#   scripts/dupcount.sh da3488a~1   # when issue 12 was filed
#   scripts/dupcount.sh             # this checkout
set -euo pipefail
rev=${1:-}
d=$(mktemp -d)
if [ -n "$rev" ]; then git archive "$rev" | tar -x -C "$d"; else git ls-files -co --exclude-standard | tar -cf - -T - 2>/dev/null | tar -x -C "$d"; fi
python3 - "$d" <<'PY'
import os, re, sys
root = sys.argv[1]
for dp, dn, fn in os.walk(root):
    for f in fn:
        if not f.endswith('.go'): continue
        p = os.path.join(dp, f)
        L = open(p, encoding='utf-8', errors='replace').read().split('\n')
        i = 0
        while i < len(L):
            s = L[i]
            if s.startswith('import ('):
                j = i
                while j < len(L) and L[j].strip() != ')': j += 1
                for k in range(i, min(j + 1, len(L))): L[k] = ''
                i = j + 1; continue
            if s.startswith('var ('):
                j = i
                while j < len(L) and L[j] != ')': j += 1
                body = [x for x in L[i+1:j] if x.strip() and not x.strip().startswith('//')]
                errs = [x for x in body if 'errors.New' in x or 'fmt.Errorf' in x]
                if body and len(errs) * 2 >= len(body):
                    for k in range(i, min(j + 1, len(L))): L[k] = ''
                i = j + 1; continue
            i += 1
        open(p, 'w').write('\n'.join(L))
PY
(cd "$d" && duplicates --most 200 --seconds 120)
rm -rf "$d"
