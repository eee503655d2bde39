"""Builds the semantic-cache evaluation set from real text installed on this machine, at
bench time (the sources carry their packages' licences, so nothing is committed):

* Debian's gettext catalogs (/usr/share/locale/*/LC_MESSAGES/*.mo, shipped inside the
  Debian packages installed here: coreutils, git, PostgreSQL, glib, gtk, apt, ...):
  (a) paraphrase positives by pivoting: two different English messages (not differing
      only in case and punctuation) whose translations are identical in at least 2
      languages and in at least 1/5 of the languages that translate both (translators
      reword freely, so identical translations in two languages are strong evidence;
      below 1/5 the pairs were mostly copies of the wrong message);
  (b) hard negatives: two English messages one word apart (one word substituted, added
      or removed) whose translations differ in every language that translates both
      (at least 3);
  (c) the same message in English and in another language: must not be served across
      languages;
  (e) numbers: messages with a number, the number changed; entities: messages naming a
      capitalised product or proper name, swapped for another such name from the
      catalogs.
* The PyPI package chatterbot-corpus (its English questions):
  (d) negations: a question and the same question negated by rule ("do you" -> "don't
      you", "is it" -> "isn't it", "can you" -> "can't you", "what is" -> "what is not").

Usage: semantic_pairs.py CHATTERBOT_DATA_DIR OUT.jsonl [max_per_class]
Prints the make-up as JSON on stdout.
"""
import collections
import gettext
import glob
import json
import os
import random
import re
import sys

LANGS = ["de", "fr", "es", "it", "pt_BR", "pt", "nl", "pl", "ru", "sv", "cs", "ja", "zh_CN", "uk", "da", "fi", "hu", "tr", "ca", "ro", "nb", "ko"]
WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d+")


def norm(s):
    return " ".join(re.findall(r"\w+", s.lower()))


def usable(msgid):
    if any(c in msgid for c in "%{}<>\n\t_/\\=|[]@#$\x04") or "--" in msgid:
        return False
    words = msgid.split()
    return 3 <= len(words) <= 14 and sum(ch.isalpha() for ch in msgid) >= 0.8 * len(msgid.replace(" ", ""))


def load_catalogs():
    """domain -> msgid -> {lang: msgstr}"""
    out = collections.defaultdict(lambda: collections.defaultdict(dict))
    for lang in LANGS:
        for path in glob.glob(f"/usr/share/locale/{lang}/LC_MESSAGES/*.mo"):
            domain = os.path.basename(path)[:-3]
            if domain.startswith("iso_"):
                continue
            try:
                with open(path, "rb") as f:
                    cat = gettext.GNUTranslations(f)._catalog
            except Exception:
                continue
            for msgid, msgstr in cat.items():
                if isinstance(msgid, str) and msgid and msgstr and usable(msgid) and msgstr != msgid:
                    out[domain][msgid.strip()][lang] = msgstr.strip()
    return out


def main():
    cb_dir, out_path = sys.argv[1], sys.argv[2]
    cap = int(sys.argv[3]) if len(sys.argv) > 3 else 1500
    rng = random.Random(20261127)
    cats = load_catalogs()
    # msgid -> {lang: {normalised translations}} over every domain.
    trans = collections.defaultdict(lambda: collections.defaultdict(set))
    for domain, msgs in cats.items():
        for msgid, by_lang in msgs.items():
            for lang, t in by_lang.items():
                trans[msgid][lang].add(norm(t))
    msgids = sorted(trans)

    # (a) positives by pivoting.
    by_translation = collections.defaultdict(set)
    for m in msgids:
        for lang, ts in trans[m].items():
            for t in ts:
                if len(t) >= 8:
                    by_translation[(lang, t)].add(m)
    shared = collections.Counter()
    for group in by_translation.values():
        if 2 <= len(group) <= 20:
            g = sorted(group)
            for i in range(len(g)):
                for j in range(i + 1, len(g)):
                    shared[(g[i], g[j])] += 1
    positives = []
    for (a, b), n in shared.items():
        if n < 2 or norm(a) == norm(b):
            continue
        both = [l for l in trans[a] if l in trans[b]]
        if n >= 0.2 * len(both):
            positives.append(("paraphrase", a, b))

    # (b) hard negatives: one word apart, translated differently everywhere.
    def keys(m):
        w = norm(m).split()
        for i in range(len(w)):
            yield ("sub", len(w), tuple(w[:i]), tuple(w[i + 1:]))
            yield ("del", tuple(w[:i] + w[i + 1:]))
        yield ("del", tuple(w))

    blocks = collections.defaultdict(set)
    for m in msgids:
        for k in keys(m):
            blocks[k].add(m)
    seen, hard = set(), []
    for group in blocks.values():
        if not 2 <= len(group) <= 8:
            continue
        g = sorted(group)
        for i in range(len(g)):
            for j in range(i + 1, len(g)):
                a, b = g[i], g[j]
                if (a, b) in seen or norm(a) == norm(b):
                    continue
                seen.add((a, b))
                both = [l for l in trans[a] if l in trans[b]]
                if len(both) >= 3 and all(not (trans[a][l] & trans[b][l]) for l in both):
                    hard.append(("lexical_neighbour", a, b))

    # (c) the same message in another language (as its translator wrote it).
    raw = {}
    for msgs in cats.values():
        for msgid, by_lang in msgs.items():
            for lang, t in by_lang.items():
                raw.setdefault(msgid, {}).setdefault(lang, t)
    cross = []
    for m in msgids:
        for lang in ("de", "fr", "es", "it", "nl", "pt_BR"):
            t = raw.get(m, {}).get(lang)
            if t and norm(t) != norm(m):
                cross.append(("other_language", m, t))

    # (e) numbers and entities.
    numbers = []
    for m in msgids:
        w = m.split()
        idx = [i for i, x in enumerate(w) if x.isdigit()]
        if idx:
            i = idx[0]
            n = int(w[i])
            w2 = list(w)
            w2[i] = str(n + 1 if n < 10 else n * 2)
            numbers.append(("number_changed", m, " ".join(w2)))
    names = collections.Counter()
    for m in msgids:
        for i, x in enumerate(m.split()):
            x = x.strip(".,:;!?\"'()")
            if i > 0 and x[:1].isupper() and x[1:].islower() and len(x) > 2 or sum(c.isupper() for c in x) > 1 and x.isalpha():
                names[x] += 1
    common_names = [n for n, c in names.items() if c >= 2]
    entities = []
    for m in msgids:
        ws = m.split()
        for i, x in enumerate(ws):
            core = x.strip(".,:;!?\"'()")
            if core in names and i > 0:
                other = rng.choice(common_names)
                if other.lower() != core.lower():
                    entities.append(("entity_changed", m, " ".join(ws[:i] + [x.replace(core, other)] + ws[i + 1:])))
                break

    # (d) negations of chatterbot-corpus questions.
    rules = [(r"^(do|does|did|can|could|will|would|should|is|are|was|were|have|has) (you|i|it|we|they|he|she|there)\b", lambda m: f"{m.group(1)}n't {m.group(2)}" if m.group(1) not in ("can", "will") else {"can": "can't", "will": "won't"}[m.group(1)] + f" {m.group(2)}"),
             (r"^what (is|are) ", lambda m: f"what {m.group(1)} not ")]
    negations = []
    for path in sorted(glob.glob(os.path.join(cb_dir, "english", "*.yml"))):
        for line in open(path, encoding="utf-8"):
            s = line.strip()
            if not s.startswith("- - "):
                continue
            q = s[4:].strip().strip("'\"")
            if not (3 <= len(q.split()) <= 16):
                continue
            for pat, rep in rules:
                neg = re.sub(pat, rep, q, count=1, flags=re.I)
                if neg != q:
                    negations.append(("negation", q, neg))
                    break

    classes = {"paraphrase": positives, "lexical_neighbour": hard, "other_language": cross, "number_changed": numbers, "entity_changed": entities, "negation": negations}
    out = []
    makeup = {}
    for name, pairs in classes.items():
        uniq = sorted(set(pairs))
        rng.shuffle(uniq)
        take = uniq[:cap]
        makeup[name] = {"available": len(uniq), "used": len(take)}
        for kind, a, b in take:
            out.append({"kind": kind, "a": a, "b": b, "should_hit": kind == "paraphrase"})
    with open(out_path, "w", encoding="utf-8") as f:
        for o in out:
            f.write(json.dumps(o, ensure_ascii=False) + "\n")
    domains = sorted(cats)
    print(json.dumps({
        "sources": {"gettext_domains": len(domains), "languages": [l for l in LANGS if glob.glob(f"/usr/share/locale/{l}/LC_MESSAGES/*.mo")], "english_messages": len(msgids), "chatterbot_corpus": os.path.dirname(cb_dir.rstrip("/"))},
        "classes": makeup,
        "examples": {k: list(v[0][1:]) for k, v in classes.items() if v},
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
