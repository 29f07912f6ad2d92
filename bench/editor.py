"""The editor's view: related lists of the sample corpus as an editor reads them.

    python -m bench.editor [-o NAME=VALUE ...] [--compare 'NAME=VALUE ...' ...] [--show]

Builds examples/content in memory with the bundled model (the pipeline of `recs build`,
dates judged at a fixed moment after every article, so runs repeat) and reports, for the
defaults and each variant, what an editor sees: the share of each list's items from the
article's own topic folder (the sample's labels), how many items have a cosine under 0.10
(filler), the lowest cosine listed, how many lists are shorter than the limit, and how many
drafts are recommended. `--show` prints the lists of three articles the team reads first:
the seed, the salmon recipe and the flu-vaccine explainer.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.common import ROOT, table

CONTENT = ROOT / "examples" / "content"
SHOWN = (
    "technology/chinese-school-facial-recognition.md",
    "cooking/weeknight-miso-butter-salmon.md",
    "health/this-seasons-flu-vaccine-who-should-get-it.md",
)
NOW = 1.8e9  # 2027-01-15: after every article of the sample


def lists(options: list[str]) -> tuple[object, object]:
    from recs.backends import load_encoder
    from recs.config import Settings, rank_options, with_rank_options
    from recs.corpus import read_corpus
    from recs.pipeline import prepare

    settings = Settings.from_env()
    encoder = load_encoder(settings.model, settings.backend, settings.model_cache)
    rank = with_rank_options(settings.rank_for(encoder.model_id), rank_options(options))
    snapshot, report = prepare(read_corpus(Path(CONTENT)).articles, encoder, rank, now=NOW)
    return snapshot, report


def figures(snapshot: object, report: object) -> dict[str, float]:
    from recs.catalog import is_draft

    articles = snapshot.articles  # type: ignore[attr-defined]
    vectors = np.asarray(snapshot.vectors, dtype=np.float64)  # type: ignore[attr-defined]
    topic = {a.url: a.source.split("/")[0] for a in articles}
    own = total = filler = drafts = 0
    lowest = 1.0
    for row, article in enumerate(articles):
        for item in snapshot.related[row]:  # type: ignore[attr-defined]
            other = articles[item.row]
            cosine = float(vectors[row] @ vectors[item.row])
            total += 1
            own += topic[other.url] == topic[article.url]
            filler += cosine < 0.10
            drafts += is_draft(other.fields)
            lowest = min(lowest, cosine)
    return {
        "own": own / max(total, 1),
        "filler": filler,
        "lowest": lowest,
        "short": report.short,  # type: ignore[attr-defined]
        "drafts": drafts,
        "items": total,
    }


def show(snapshot: object) -> None:
    articles = snapshot.articles  # type: ignore[attr-defined]
    for source in SHOWN:
        row = next(i for i, a in enumerate(articles) if a.source == source)
        print(f"\n**{articles[row].title}** ({source.split('/')[0]})\n")
        for item in snapshot.related[row]:  # type: ignore[attr-defined]
            other = articles[item.row]
            print(
                f"- {item.score:.3f} (cosine {item.similarity:.3f}) [{other.source.split('/')[0]}]"
                f" {other.title}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--option", action="append", default=[])
    parser.add_argument("--compare", action="append", default=[])
    parser.add_argument("--show", action="store_true")
    args = parser.parse_args()
    rows = []
    for name, extra in [("defaults", []), *((c, c.split()) for c in args.compare)]:
        snapshot, report = lists(args.option + extra)
        f = figures(snapshot, report)
        rows.append(
            [name, f["own"], int(f["filler"]), f["lowest"], int(f["short"]), int(f["drafts"])]
        )
        if args.show:
            print(f"\n### {name}")
            show(snapshot)
    print()
    table(["ranking", "own topic", "items < 0.10", "lowest cosine", "short lists", "drafts"], rows)


if __name__ == "__main__":
    main()
