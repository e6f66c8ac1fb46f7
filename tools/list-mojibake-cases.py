#!/usr/bin/env python3
"""Lists the tokenizer fixture cases whose text ftfy's mojibake repair changes.

clipag's text cleaning does everything ftfy.fix_text does except mojibake repair
(fix_encoding and its helpers). This script finds the fixture cases where that repair
changes the text, so that the tokenizer test can exempt exactly those, each with the change
as its reason. A developer tool (pip install ftfy); CI only reads its output,
tests/data/tokenizer-mojibake-cases.json.

usage: python3 tools/list-mojibake-cases.py ../shared/fixtures/tokenizer-cases.json > tests/data/tokenizer-mojibake-cases.json
"""
import difflib
import json
import sys

import ftfy

WITHOUT_REPAIR = dict(fix_encoding=False, restore_byte_a0=False, replace_lossy_sequences=False,
                      decode_inconsistent_utf8=False)


def change(before, after):
    """The first differing span, as 'before' -> 'after'."""
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
        if tag != "equal":
            return f"ftfy's mojibake repair turns {before[max(0, i1 - 3):i2 + 3]!r} into {after[max(0, j1 - 3):j2 + 3]!r}"
    return "ftfy's mojibake repair changes the text"


cases = json.load(open(sys.argv[1]))["cases"]
out = []
for case in cases:
    text = case["text"]
    repaired = ftfy.fix_text(text)
    unrepaired = ftfy.fix_text(text, **WITHOUT_REPAIR)
    if repaired != unrepaired:
        out.append({"text": text, "reason": change(unrepaired, repaired)})
json.dump({"made_with": f"ftfy {ftfy.__version__}", "cases": out}, sys.stdout, ensure_ascii=False, indent=1)
print()
