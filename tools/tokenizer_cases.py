#!/usr/bin/env python3
"""Draws many harsh strings and records the ids open_clip's own tokenizer gives each:
tests/data/tokenizer-cases-open-clip.json.gz.

A hand-run case generator, like tools/make_fixtures.py (whose 610 tokenizer cases, from
tests/fixtures/tokenizer-cases.json, come first, so this file is a superset of them). Seven
families of strings, deterministic from --seed:

  punct       punctuation runs and symbols (ASCII, Unicode, emoji) before, inside and after
              words; a few literal special-token names ("<end_of_text>", "<|endoftext|>")
  scripts     accented Latin, Greek, Cyrillic, CJK, Arabic, Hebrew, Devanagari, Thai and
              more, emoji ZWJ sequences and skin tones, combining marks, other digits
  entities    HTML entities: named, numeric, without semicolons, invalid, chained
              (&amp;amp;lt;), with and without a literal "<" in the text (ftfy unescapes
              only where there is none)
  numbers     separators, decimals, dates, times, exponents, phone numbers, money, versions
  apostrophes contractions, possessives, quote runs, curly and look-alike apostrophes
  whitespace  tabs, newlines, runs of spaces, Unicode spaces, zero-width characters and the
              control characters ftfy drops
  lengths     60 to 120 tokens (start and end included), so that open_clip's cut to 77
              falls inside words, punctuation runs, numbers and multi-token characters;
              counted with SimpleTokenizer.encode, before the cut

Each case is {"text", "ids"}: the ids up to and including the last end-of-text token
(49407), padding removed. Not "drop every 0" (0 is "!" inside a punctuation run) nor "up to
the first 49407" (open_clip reads a literal "<end_of_text>" in the text as that token).

    $(tools/torch-env.sh) tools/tokenizer_cases.py --out tests/data/tokenizer-cases-open-clip.json.gz

tools/torch-env.sh makes (once) and names a CPU venv with open_clip 3.3.0 (and its ftfy).
Prints the count of each family and the length distribution of the last to stderr.
"""

import argparse
import collections
import gzip
import json
import random
import string
import sys
import time
import unicodedata
from pathlib import Path

import ftfy
import open_clip

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests/fixtures/tokenizer-cases.json"
START, END = 49406, 49407
CONTEXT = 77

# Each family's share of --count; lengths takes what rounding leaves.
SHARES = {"punct": 0.15, "scripts": 0.15, "entities": 0.12, "numbers": 0.12, "apostrophes": 0.10,
          "whitespace": 0.10, "lengths": 0.26}

PROMPTS = ["a photo of a", "an image of the", "a picture of", "a close-up of a", "a drawing of two",
           "this is a", "a blurry photo of the", "a painting of my", "an old", "the best"]
UNI_PUNCT = ("“”‘’„‚«»‹›…—–‐‒―¡¿€£¥¢₹₽©®™•·°±×÷§¶†‡‰′″⁄‼⁇⁈⁉‽※、。「」『』【】〈〉《》〔〕！？，．：；（）～"
             "◦▪●○■□▲△▶►◆◇★☆♠♣♥♦♪♫✓✔✗✘→←↑↓↔⇒∞≈≠≤≥∑√∫∂∆∇µΩ¦¨¯´¸¬­")
EMOJI = ["🐱", "🚀", "😀", "😂", "❤️", "❤", "👍", "🔥", "✨", "🎉", "💯", "🙏", "🤔", "😭", "🥺", "✅", "❌",
         "⭐", "🌟", "💀", "🤖", "🫠", "🦄", "🍕", "☕", "⚡", "☀️", "🌈", "🎵", "📷"]
SPECIAL_LITERALS = ["<start_of_text>", "<end_of_text>", "<START_OF_TEXT>", "<End_Of_Text>", "<|startoftext|>",
                    "<|endoftext|>", "</w>", "<unk>", "<s>", "</s>", "[CLS]", "<pad>", "<end_of_text"]
SCRIPT_WORDS = {
    "latin": ["naïve", "café", "déjà", "über", "façade", "jalapeño", "São", "Zürich", "Kraków", "Ærøskøbing",
              "smørrebrød", "crème", "brûlée", "piñata", "Ångström", "Łódź", "Şişli", "Dvořák", "Ñandú", "ÉCOLE",
              "garçon", "straße", "STRASSE", "Øresund", "fjörður", "Þingvellir", "İstanbul", "ıi", "ẞ", "ǅ", "ĳ",
              "ﬁnance", "ﬀ", "œuvre", "Æsir", "Việt", "Nguyễn", "Tiếng", "ĥ", "ŉ"],
    "greek": ["Ελληνικά", "καλημέρα", "φως", "ΑΘΗΝΑ", "ψυχή", "λόγος", "ΣΊΣΥΦΟΣ", "ΟΔΟΣ", "ς", "ἀρχή", "ᾨδή"],
    "cyrillic": ["русский", "Москва", "привет", "ЁЛКА", "щука", "Україна", "їжак", "Ђорђе", "қазақ", "Ӂ"],
    "cjk": ["日本語", "東京", "猫", "中文", "漢字", "한국어", "서울", "ひらがな", "カタカナ", "ｶﾀｶﾅ", "鑫", "龘",
            "𠮷野家", "〇", "ㄅㄆㄇ", "ｱｲｳ", "㍿", "㈱", "々"],
    "arabic": ["العربية", "مرحبا", "القاهرة", "ﷺ", "ﻻ", "كِتَابٌ", "فارسی", "اردو"],
    "hebrew": ["עברית", "שלום", "ירושלים", "שָׁלוֹם", "ﬡ"],
    "indic": ["हिन्दी", "नमस्ते", "भारत", "क़", "বাংলা", "தமிழ்", "ગુજરાતી", "ਪੰਜਾਬੀ", "తెలుగు", "ಕನ್ನಡ"],
    "thai": ["ภาษาไทย", "สวัสดี", "กรุงเทพ", "ພາສາລາວ", "ខ្មែរ", "မြန်မာ"],
    "other": ["ქართული", "Հայերեն", "አማርኛ", "བོད་ཡིག", "ᠮᠣᠩᠭᠣᠯ", "ᏣᎳᎩ", "ᚠᚢᚦ", "𐌰𐌱", "ꦗꦮ"],
    "emoji": ["👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "👍🏽", "👋🏿", "🧑🏻‍🚀", "❤️‍🔥", "🇫🇷", "🇯🇵", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "1️⃣", "#️⃣", "©️",
              "🐱", "😀", "🫶🏼", "🤷‍♀️", "👁‍🗨", "🇺🇳🇪🇺", "🏻"],
    "combining": ["e\u0301", "a\u0308", "n\u0303", "Z\u0324\u0354\u0367\u0311\u0313a\u0356\u032d\u0308\u0307l\u036e",
                  "o\u0332\u0332", "\u0301x", "i\u0307", "\u1100\u1161\u11a8", "A\u030a", "u\u0308\u0301", "\u20dd",
                  "q\u0323\u0307", "c\u0327\u0327"],
    "digits": ["٣٤٥", "१२३", "๑๒๓", "１２３", "²³", "½", "Ⅻ", "①②", "߁", "𝟘𝟙", "⁵"],
}
ENTITY_NAMES = ["amp", "lt", "gt", "quot", "apos", "nbsp", "copy", "reg", "trade", "hellip", "mdash", "ndash",
                "eacute", "Eacute", "uuml", "szlig", "euro", "pound", "yen", "deg", "plusmn", "times", "frac12",
                "rarr", "hearts", "alpha", "Omega", "notin", "not", "NotEqual", "bogus", "AMP", "Amp", "LT", "GT",
                "QUOT", "lsquo", "rsquo", "ldquo", "rdquo", "laquo", "raquo", "shy", "zwj", "zwnj", "ensp",
                "thinsp", "iuml", "ccedil", "Ntilde", "aelig", "fjlig", "bne", "nbs", "ampx", "lt3"]
NUMERIC_REFS = ["&#39;", "&#x27;", "&#X27;", "&#128512;", "&#x1F600;", "&#0;", "&#x0;", "&#13;", "&#9;",
                "&#10;", "&#x80;", "&#150;", "&#x9F;", "&#55296;", "&#xD800;", "&#1114111;", "&#1114112;",
                "&#99999999;", "&#x110000;", "&#xFFFE;", "&#65279;", "&#0000039;", "&#38;", "&#x26;", "&#60;",
                "&#x3C;", "&#8217;", "&#x200B;", "&#160;", "&#173;", "&#x41", "&#65", "&#", "&#x", "&#;", "&#x;"]
SEPARATORS = [",", ".", " ", "\u00a0", "'", "\u202f", "_", "’"]
APOS = ["'", "'", "'", "’", "‘", "ʼ", "`", "´", "′", "＇"]
CONTRACTIONS = ["it's", "don't", "can't", "won't", "I'm", "you're", "we've", "they'll", "he'd", "isn't",
                "shouldn't've", "y'all", "ma'am", "o'clock", "rock'n'roll", "'tis", "'twas", "'90s", "li'l",
                "ne'er", "fo'c'sle", "O'Brien", "D'Angelo", "N'Djamena", "L'Oréal", "let's", "who'd've",
                "the dogs'", "James'", "dog's", "children's", "'s'", "''", "'''", "''''", "'quoted'", "it'sa",
                "'re'", "'d'd", "we''ll", "'''s", "5's", "x's", "#'s", ":'s", "'s", "'S", "'LL", "'Ve", "IT'S",
                "DON'T", "It'S", "i'M", "'t", "'m", "cat'", "'cat", "s'", "'"]
APOS_SUFFIXES = ["s", "t", "re", "ve", "m", "ll", "d", "S", "T", "RE", "VE", "M", "LL", "D", "all", "n", "clock",
                 "x", "", "ss", "sa", "ts", "lll"]
SPACES = ["\t", "\n", "\r", "\r\n", "\f", " ", "  ", "   ", "\u00a0", "\u1680", "\u2000", "\u2003", "\u2007",
          "\u2009", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\x85"]
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u180e", "\u00ad", "\u034f", "\u2061", "\u206a",
             "\ufe0f", "\U000e0041"]
DROPPED_CONTROLS = ["\x0b", "\x1c", "\x1d", "\x1e", "\x1f", "\x00", "\x07", "\x7f", "\x1b[1;31m", "\x1b[0m"]
# Separators between the pieces of a long text: white space that stays white space, so that
# the pieces' token counts add up.
JOINS = [" "] * 12 + ["  ", "\t", "\n", "\u00a0", "\u3000"]


class Gen:
    def __init__(self, seed, tokenizer):
        self.rng = random.Random(seed)
        self.tok = tokenizer
        self.counts = {}
        self.redrawn = 0  # lengths texts whose count missed the plan
        # Words from the BPE vocabulary itself (each a whole word there), in its own order.
        vocab = [w[:-4] for w in tokenizer.encoder if w.endswith("</w>") and w[:-4].isalpha() and w[:-4].isascii()]
        self.words = self.rng.sample(vocab, 3000)
        self.one_token = [w for w in self.words if self.count(w) == 1]
        self.multi_chars = self.multi_token_characters()

    def count(self, text):
        """open_clip's token count of text, start and end excluded, before the cut."""
        n = self.counts.get(text)
        if n is None:
            n = self.counts[text] = len(self.tok.encode(text))
        return n

    def multi_token_characters(self):
        """Single characters that open_clip's BPE reads as two tokens or more (their UTF-8
        bytes unmerged): where a cut can fall inside one character."""
        ranges = [(0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0x1F300, 0x1FAFF), (0x1D400, 0x1D7FF),
                  (0x2600, 0x27BF), (0x20000, 0x2A6DF), (0x10000, 0x1007F), (0x13000, 0x1342E), (0x0900, 0x0DFF)]
        pool = []
        for lo, hi in ranges:
            chars = [chr(c) for c in range(lo, hi + 1) if unicodedata.category(chr(c))[0] in "LNSP"]
            pool += self.rng.sample(chars, min(len(chars), 150))
        return [c for c in pool if self.count(c) >= 2]

    # -- pieces -------------------------------------------------------------------------
    def word(self):
        r = self.rng.random()
        w = self.rng.choice(self.words)
        if r < 0.1:
            return w.upper()
        if r < 0.2:
            return w.capitalize()
        return w

    def words_(self, lo=1, hi=4):
        return " ".join(self.word() for _ in range(self.rng.randint(lo, hi)))

    def prompt(self):
        return self.rng.choice(PROMPTS) + " " + self.words_(1, 3)

    def punct_run(self, lo=1, hi=10):
        rng = self.rng
        n = rng.randint(lo, hi)
        r = rng.random()
        if r < 0.25:
            return rng.choice(string.punctuation + "…—¡¿“”'") * n
        if r < 0.55:
            pool = string.punctuation
        elif r < 0.85:
            pool = string.punctuation + UNI_PUNCT
        else:
            return "".join(rng.choice([rng.choice(UNI_PUNCT), rng.choice(EMOJI)]) for _ in range(n))
        return "".join(rng.choice(pool) for _ in range(n))

    def script_word(self):
        return self.rng.choice(SCRIPT_WORDS[self.rng.choice(list(SCRIPT_WORDS))])

    def entity(self):
        rng = self.rng
        r = rng.random()
        if r < 0.35:
            e = "&" + rng.choice(ENTITY_NAMES) + (";" if rng.random() < 0.8 else "")
        elif r < 0.6:
            e = rng.choice(NUMERIC_REFS)
        elif r < 0.8:
            e = "&#" + (f"x{rng.randrange(0x110010):X}" if rng.random() < 0.5 else str(rng.randrange(200000))) + ";"
        else:
            e = rng.choice(["&lt;b&gt;", "&quot;", "&#39;", "&amp;", "&lt;/i&gt;"])
        # A chain: each "&amp;" more is one more level to unescape.
        if rng.random() < 0.45:
            e = "&" + "amp;" * rng.randint(1, 7) + e[1:]
        return e

    def number(self):
        rng = self.rng
        d = lambda n: "".join(rng.choice(string.digits) for _ in range(n))
        sep = rng.choice(SEPARATORS)
        forms = [
            lambda: d(rng.randint(1, 3)) + "".join(sep + d(3) for _ in range(rng.randint(1, 4))),
            lambda: d(rng.randint(1, 4)) + rng.choice(".,") + d(rng.randint(1, 6)),
            lambda: "1.000,50" if rng.random() < 0.2 else d(1) + "." + d(3) + "," + d(2),
            lambda: f"{rng.randint(1900, 2099)}-{rng.randint(1, 12):02}-{rng.randint(1, 31):02}",
            lambda: f"{rng.randint(1, 31):02}/{rng.randint(1, 12):02}/{rng.randint(0, 99):02}",
            lambda: f"{rng.randint(0, 23)}:{rng.randint(0, 59):02}" + (f":{rng.randint(0, 59):02}" if rng.random() < 0.5 else rng.choice(["", "pm", "am", " AM"])),
            lambda: rng.choice(["", "-", "+", "−"]) + d(1) + "." + d(rng.randint(0, 4)) + rng.choice("eE") + rng.choice(["", "-", "+"]) + d(rng.randint(1, 2)),
            lambda: rng.choice(["+49 (0) 30 ", "(555) ", "+1-800-", "+44 20 ", "0039 "]) + d(3) + rng.choice(["-", " ", ""]) + d(4),
            lambda: rng.choice(["", "-", "+"]) + d(rng.randint(1, 3)) + rng.choice(["%", " %", "‰", ".5%"]),
            lambda: rng.choice(["$", "€", "£", "¥", "₹", "USD ", "", "-$"]) + d(1) + "," + d(3) + "." + d(2) + rng.choice(["", " €", "k", "M"]),
            lambda: rng.choice(["1/2", "3/4", "½", "¾", "2⅓", "⅞", d(2) + "/" + d(3), "1⁄2"]),
            lambda: rng.choice(["v", "V", "ver.", "", "version "]) + ".".join(d(rng.randint(1, 2)) for _ in range(rng.randint(2, 4))) + rng.choice(["", "-beta.4", "rc1", "+build.7"]),
            lambda: str(rng.randint(1, 999)) + rng.choice(["st", "nd", "rd", "th", "km", "kg", " m²", "°F", "°", "K", "p", "fps", "px", "x", "mm", "GB"]),
            lambda: rng.choice(["0x", "0b", "#", "№", "No. "]) + rng.choice(["FF", "1010", "c0ffee", d(4)]),
            lambda: ".".join(str(rng.randint(0, 255)) for _ in range(4)),
            lambda: d(rng.randint(8, 25)),
            lambda: rng.choice(["f/2.8", "1/250s", "ISO 800", "24-70mm", "4K", "1080p", "x²", "10⁻³", "H₂O", "007", "-0", "0.0.0"]),
            lambda: d(rng.randint(1, 4)) + rng.choice(["-", "–", "..", "~", " to "]) + d(rng.randint(1, 4)),
        ]
        return rng.choice(forms)()

    def apostrophe(self):
        rng = self.rng
        r = rng.random()
        if r < 0.4:
            w = rng.choice(CONTRACTIONS)
        elif r < 0.8:
            w = self.word() + rng.choice(APOS) + rng.choice(APOS_SUFFIXES)
        else:
            q = rng.choice(APOS) * rng.randint(1, 4)
            w = q + self.word() + q
        if rng.random() < 0.3:  # the same word with a look-alike apostrophe
            w = w.replace("'", rng.choice(APOS))
        return w

    def space(self):
        r = self.rng.random()
        if r < 0.7:
            return "".join(self.rng.choice(SPACES) for _ in range(self.rng.randint(1, 3)))
        if r < 0.9:
            return self.rng.choice(INVISIBLE)
        return self.rng.choice(DROPPED_CONTROLS)

    # -- families -----------------------------------------------------------------------
    def punct(self):
        rng = self.rng
        run = self.punct_run()
        r = rng.random()
        if r < 0.03:
            lit = rng.choice(SPECIAL_LITERALS)
            return rng.choice([lit + " " + self.prompt(), self.prompt() + lit, self.words_(1, 3) + " " + lit + " " + self.words_(1, 3), lit])
        if r < 0.2:
            return run + rng.choice(["", " "]) + rng.choice([self.prompt(), self.word()])
        if r < 0.37:
            return rng.choice([self.prompt(), self.word()]) + rng.choice(["", " "]) + run
        if r < 0.52:
            return self.word() + run + self.word() + rng.choice(["", " " + self.words_(1, 2)])
        if r < 0.64:  # brackets and quotes around a word, "((a))", "'''quoted'''"
            pairs = ["()", "[]", "{}", "<>", "''", '""', "“”", "«»", "**", "__", "「」", "‘’", "¡!", "¿?"]
            o, c = rng.choice(pairs)
            k = rng.randint(1, 4)
            return o * k + rng.choice([self.word(), self.words_(2, 3)]) + c * rng.choice([k, k, k - 1, k + 1])
        if r < 0.74:
            return run
        if r < 0.86:  # several runs among words, "--==>> x"
            return " ".join(rng.choice([self.punct_run(1, 5), self.word()]) for _ in range(rng.randint(2, 6)))
        if r < 0.94:  # emoji glued to words
            return self.word() + "".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 4))) + rng.choice(["", self.word(), self.punct_run(1, 3)])
        return rng.choice(["#", "@", "$", "%", "&", "*", "~", "^"]) + self.word() + rng.choice(["", "!", "?!", "...", "#$%&"])

    def scripts(self):
        rng = self.rng
        r = rng.random()
        parts = []
        if r < 0.3:  # one script alone
            pool = SCRIPT_WORDS[rng.choice(list(SCRIPT_WORDS))]
            parts = [rng.choice(pool) for _ in range(rng.randint(1, 4))]
        elif r < 0.7:  # mixed with ASCII words and digits
            parts = [rng.choice([self.script_word, self.word, lambda: str(rng.randint(0, 999))])() for _ in range(rng.randint(2, 6))]
        else:  # glued, no spaces
            parts = ["".join(rng.choice([self.script_word, self.word, lambda: rng.choice(string.digits), lambda: rng.choice(string.punctuation)])() for _ in range(rng.randint(2, 5)))]
        text = rng.choice([" ", " ", "", ", "]).join(parts)
        if rng.random() < 0.15:
            text = text.upper() if rng.random() < 0.5 else text.title()
        return text

    def entities(self):
        rng = self.rng
        r = rng.random()
        if r < 0.3:
            text = self.entity()
        elif r < 0.55:
            text = " ".join(rng.choice([self.entity, self.word])() for _ in range(rng.randint(2, 5)))
        elif r < 0.75:  # inside words: "AT&amp;T", "caf&eacute;", "don&#39;t"
            text = self.word() + "".join(self.entity() for _ in range(rng.randint(1, 2))) + self.word()
        elif r < 0.9:  # entity runs without spaces
            text = "".join(self.entity() for _ in range(rng.randint(2, 5)))
        else:
            text = rng.choice(["&lt;b&gt;", "&amp;lt;b&amp;gt;", "&amp;amp;lt;i&amp;amp;gt;"]) + self.words_(1, 3) + rng.choice(["&lt;/b&gt;", "&amp;lt;/b&amp;gt;", ""])
        if rng.random() < 0.2:  # a literal "<" (or ">") turns ftfy's unescaping off
            text = rng.choice(["<", "<b> ", "a < b ", "> "]) + text if rng.random() < 0.5 else text + rng.choice([" <", " </b>", " <3", " x<y"])
        return text

    def numbers(self):
        rng = self.rng
        r = rng.random()
        if r < 0.4:
            return self.number()
        if r < 0.75:
            return self.words_(1, 3) + " " + self.number() + rng.choice(["", " " + self.words_(1, 2), "!", "."])
        if r < 0.9:
            return self.number() + rng.choice(["", "x", "-"]) + self.word()
        return " ".join(self.number() for _ in range(rng.randint(2, 4)))

    def apostrophes(self):
        rng = self.rng
        parts = [rng.choice([self.apostrophe, self.apostrophe, self.word])() for _ in range(rng.randint(1, 5))]
        return rng.choice([" ", " ", "", ", "]).join(parts)

    def whitespace(self):
        rng = self.rng
        r = rng.random()
        if r < 0.08:
            return "".join(self.space() for _ in range(rng.randint(1, 4)))
        items = [rng.choice([self.word, self.word, self.word, self.punct_run, self.entity, self.script_word])() for _ in range(rng.randint(1, 6))]
        text = ""
        for i, item in enumerate(items):
            if i:
                text += self.space() if rng.random() < 0.8 else " "
            if rng.random() < 0.12 and len(item) > 1:  # inside a word: "ca\u200bt"
                k = rng.randrange(1, len(item))
                item = item[:k] + self.space() + item[k:]
            text += item
        if rng.random() < 0.5:
            text = self.space() + text
        if rng.random() < 0.5:
            text += self.space()
        return text

    # -- lengths around the cut ---------------------------------------------------------
    def filler(self):
        """A piece for a long text: mostly vocabulary words, sometimes the other families'."""
        r = self.rng.random()
        if r < 0.65:
            return self.word()
        return self.rng.choice([self.punct_run, self.script_word, self.entity, self.number, self.apostrophe])()

    def fill(self, n):
        """Pieces whose token counts add up to exactly n."""
        pieces = []
        while n > 0:
            piece = self.filler() if n > 3 or self.rng.random() < 0.5 else self.rng.choice(self.one_token)
            c = self.count(piece)
            if 0 < c <= n:
                pieces.append(piece)
                n -= c
        return pieces

    def straddle(self, kind):
        """A piece of two tokens or more for the cut to fall inside."""
        rng = self.rng
        while True:
            if kind == "word":  # a long word the vocabulary lacks: several pieces of BPE
                piece = "".join(rng.choice(self.words) for _ in range(rng.randint(2, 4)))
            elif kind == "punct":
                piece = rng.choice([self.punct_run(2, 16), "!" * rng.randint(2, 30), ".." + "!" * rng.randint(1, 3) + rng.choice(";.?,")])
                if rng.random() < 0.5:
                    piece = rng.choice([self.word() + piece, piece + self.word()])
            elif kind == "number":
                piece = self.number()
            elif kind == "character":  # one character of several tokens, or a run of them
                piece = "".join(rng.choice(self.multi_chars) for _ in range(rng.choice([1, 1, 1, 2, 3])))
                if rng.random() < 0.3:
                    piece = rng.choice(SCRIPT_WORDS["emoji"])
            else:  # the other families' pieces
                piece = rng.choice([self.entity, self.apostrophe, self.script_word, lambda: self.punct_run(2, 6) + self.word()])()
            if 2 <= self.count(piece) <= 24:
                return piece

    def lengths(self):
        """(text, planned count with start and end, what the cut falls inside)."""
        rng = self.rng
        while True:
            # Uniform over 60..120, with more at the edge of the cut.
            total = rng.choice([76, 77, 78]) if rng.random() < 0.15 else rng.randint(60, 120)
            kind, prefix, piece = "none", [], None
            if total > CONTEXT and rng.random() < 0.9:
                kind = rng.choice(["word", "punct", "number", "character", "other"])
                piece = self.straddle(kind)
                k = self.count(piece)
                # open_clip keeps text tokens 0..74: the piece starts at or before 74, ends after it.
                start = rng.randint(max(0, CONTEXT - 1 - k), CONTEXT - 3)
                prefix = self.fill(start)
                pieces = prefix + [piece] + self.fill(max(0, total - 2 - start - k))
                total = max(total, start + k + 2)
            else:
                pieces = self.fill(total - 2)
            joins = [rng.choice(JOINS) for _ in pieces[:-1]] + [""]
            text = "".join(p + j for p, j in zip(pieces, joins))
            # The counts of the pieces add up unless cleaning joins them: a "<" in one piece,
            # say, stops ftfy unescaping another's entities. Such a text is drawn again.
            if len(self.tok.encode(text)) + 2 != total:
                self.redrawn += 1
                continue
            if piece is not None and len(self.tok.encode("".join(p + j for p, j in zip(prefix, joins)))) != start:
                self.redrawn += 1
                continue
            return text, total, kind


def strip_padding(row):
    """Ids up to and including the last end token: padding after it (0, also the id of "!")."""
    last = max(i for i, t in enumerate(row) if t == END)
    return row[:last + 1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=37)
    parser.add_argument("--count", type=int, default=20000, help="generated strings (the fixture's come on top)")
    args = parser.parse_args()
    started = time.time()

    tok = open_clip.get_tokenizer("ViT-B-32")
    gen = Gen(args.seed, tok)
    fixture = json.loads(FIXTURE.read_text())
    texts = [c["text"] for c in fixture["cases"]]
    seen = set(texts)
    families = collections.Counter()
    sizes = {f: round(args.count * s) for f, s in SHARES.items() if f != "lengths"}
    sizes["lengths"] = args.count - sum(sizes.values())
    planned = {}  # text -> (planned count, straddle kind), for the lengths family
    for family, size in sizes.items():
        make = getattr(gen, family)
        while families[family] < size:
            drawn = make()
            text = drawn[0] if family == "lengths" else drawn
            if text in seen:  # short families repeat themselves now and then
                continue
            seen.add(text)
            texts.append(text)
            families[family] += 1
            if family == "lengths":
                planned[text] = drawn[1:]
    drawn_at = time.time()

    cases = []
    for i in range(0, len(texts), 1000):
        batch = texts[i:i + 1000]
        for text, row in zip(batch, tok(batch).tolist()):
            cases.append({"text": text, "ids": strip_padding(row)})
        print(f"\r{len(cases)}/{len(texts)} tokenized", end="", file=sys.stderr)
    print(file=sys.stderr)

    # The fixture's ids were made by dropping every 0: these must agree with them that way.
    for case, old in zip(cases, fixture["cases"]):
        assert [t for t in case["ids"] if t != 0] == old["ids"], case["text"]

    # The lengths family, measured again on the whole text.
    bins = collections.Counter()
    kinds = collections.Counter()
    off_plan = 0
    for text, (total, kind) in planned.items():
        n = len(tok.encode(text)) + 2
        off_plan += n != total
        bins["below 77" if n < CONTEXT else "at 77" if n == CONTEXT else "above 77"] += 1
        bins[f"{n // 10 * 10}-{n // 10 * 10 + 9}"] += 1
        kinds[kind] += 1

    made_with = (f"open_clip {open_clip.__version__} ViT-B-32 tokenizer (ftfy {ftfy.__version__}), "
                 f"tools/tokenizer_cases.py --seed {args.seed} --count {args.count}")
    data = json.dumps({"made_with": made_with, "cases": cases}, ensure_ascii=False).encode()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "wb") as f, gzip.GzipFile(filename="", fileobj=f, mode="wb", mtime=0) as z:
        z.write(data)  # mtime 0 and no name: the same seed gives the same bytes

    print(f"{len(cases)} cases: {len(fixture['cases'])} from {FIXTURE.relative_to(ROOT)}, "
          + ", ".join(f"{f} {n}" for f, n in families.items()), file=sys.stderr)
    print("lengths (start and end included, before the cut): "
          + ", ".join(f"{b} {bins[b]}" for b in sorted(bins, key=lambda b: (b[0].isdigit(), int(b.split("-")[0]) if b[0].isdigit() else 0))), file=sys.stderr)
    print("lengths' cut falls inside: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
          + f"; {gen.redrawn} drawn again, {off_plan} off plan", file=sys.stderr)
    print(f"{args.out}: {len(data)} bytes of JSON, {args.out.stat().st_size} gzipped; "
          f"drawn in {drawn_at - started:.1f} s, all in {time.time() - started:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
