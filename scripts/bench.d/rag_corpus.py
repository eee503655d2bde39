"""Builds the retrieval benchmark's corpus and labelled queries from Debian's package
descriptions (the `Translation-en` indexes of bookworm and trixie main, fetched with apt
into a private lists directory; the system's apt configuration is untouched).

Corpus: every distinct long description (the synopsis line removed), one document each,
with at least 20 words. Labelled queries: bookworm packages sampled with a fixed seed;
the query is the package's synopsis (its one-line summary, e.g. "Recursively searches
directories for a regex pattern"), and the relevant documents are the long descriptions
of that same package (bookworm's and, where it differs, trixie's). The descriptions are
written by Debian maintainers and carry their packages' licences: they are derived here
at bench time and never committed.

    python3 rag_corpus.py OUT_DIR [N_QUERIES]
writes OUT_DIR/corpus.jsonl ({id, package, release, text}) and OUT_DIR/queries.jsonl
({query, package, relevant: [ids]}), and prints the corpus's size and make-up.
"""
import hashlib
import json
import os
import random
import subprocess
import sys

out = sys.argv[1]
n_queries = int(sys.argv[2]) if len(sys.argv) > 2 else 500
os.makedirs(out, exist_ok=True)
apt = os.path.join(out, "apt")
os.makedirs(os.path.join(apt, "lists", "partial"), exist_ok=True)
src = os.path.join(apt, "sources.list")
with open(src, "w") as f:
    f.write("deb http://deb.debian.org/debian bookworm main\ndeb http://deb.debian.org/debian trixie main\n")
lists = os.path.join(apt, "lists")
if not any(n.endswith("Translation-en") for n in os.listdir(lists)):
    subprocess.run(
        ["apt-get", "-qq", "-o", f"Dir::Etc::sourcelist={src}", "-o", "Dir::Etc::sourceparts=-", "-o", f"Dir::State::Lists={lists}",
         "-o", "APT::Get::List-Cleanup=0", "-o", "Acquire::Languages=en", "-o", "Acquire::IndexTargets::deb::Packages::DefaultEnabled=false",
         "-o", "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false", "-o", "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false",
         "-o", "Acquire::GzipIndexes=false", "update"],
        check=True,
    )


def entries(path):
    pkg, synopsis, body, in_desc = None, None, [], False
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        if not line:
            if pkg and synopsis is not None:
                yield pkg, synopsis, body
            pkg, synopsis, body, in_desc = None, None, [], False
        elif line.startswith("Package: "):
            pkg = line[9:].strip()
        elif line.startswith("Description-en: "):
            synopsis, in_desc = line[16:].strip(), True
        elif in_desc and line.startswith(" "):
            body.append("" if line.strip() == "." else line[1:])
        else:
            in_desc = False
    if pkg and synopsis is not None:
        yield pkg, synopsis, body


docs, by_text, synopsis_of = [], {}, {}
for release in ("bookworm", "trixie"):
    name = next(n for n in os.listdir(lists) if f"_{release}_main_i18n_Translation-en" in n)
    for pkg, synopsis, body in entries(os.path.join(lists, name)):
        text = "\n".join(body).strip()
        if len(text.split()) < 20:
            continue
        h = hashlib.sha256(text.encode()).hexdigest()
        if release == "bookworm":
            synopsis_of.setdefault(pkg, synopsis)
        if h in by_text:
            docs[by_text[h]]["packages"].add(pkg)
            continue
        by_text[h] = len(docs)
        docs.append({"id": len(docs), "packages": {pkg}, "release": release, "text": text})

with open(os.path.join(out, "corpus.jsonl"), "w") as f:
    for d in docs:
        f.write(json.dumps({"id": d["id"], "package": sorted(d["packages"])[0], "release": d["release"], "text": d["text"]}) + "\n")

relevant = {}
for d in docs:
    for p in d["packages"]:
        relevant.setdefault(p, []).append(d["id"])
# A query is only fair if its synopsis names one package: drop synopses shared by several.
count = {}
for p, s in synopsis_of.items():
    count[s] = count.get(s, 0) + 1
candidates = sorted(p for p, s in synopsis_of.items() if count[s] == 1 and p in relevant and len(s.split()) >= 3)
random.Random(20261126).shuffle(candidates)
with open(os.path.join(out, "queries.jsonl"), "w") as f:
    for p in candidates[:n_queries]:
        f.write(json.dumps({"query": synopsis_of[p], "package": p, "relevant": relevant[p]}) + "\n")

words = sum(len(d["text"].split()) for d in docs)
print(json.dumps({
    "source": "Debian bookworm + trixie main Translation-en (package long descriptions)",
    "documents": len(docs),
    "from_bookworm": sum(d["release"] == "bookworm" for d in docs),
    "from_trixie": sum(d["release"] == "trixie" for d in docs),
    "mean_words": round(words / len(docs), 1),
    "queries": min(n_queries, len(candidates)),
    "labelling": "query = a bookworm package's synopsis; relevant = that package's long description(s)",
}))
