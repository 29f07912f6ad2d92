"""Measure related lists on labelled articles: the production pipeline against baselines.

A labelled file has one JSON object a line: `id`, `title`, `excerpt`, `label`, and
optionally `date`, `url`, `provider` (the format of the shared evaluation data). Each row
becomes an Article exactly as a content file would, through the same field mapping
(recs.fieldmap: `description` or `summary` for the excerpt, `pubDate` for the date, `tags`
for topics...; `provider` -> provider.name, `url` -> webUrl; a row without a usable URL of
its own gets `https://labelled.invalid/<id>`). A folder of article files (a Hugo, Jekyll,
Eleventy or Astro site, or a plain content folder) is read as `recs build` reads it, each
article labelled by one of its front-matter keys (a list gives its first value; articles
without it are left out). `recs.pipeline.prepare` builds the store in memory with the
settings given. The label never reaches the pipeline: it is used only to score.

Figures, for lists cut to `limit` = K items, averaged over every article of the file:
- precision: share of the K slots holding an article with the same label (a short list
  counts its empty slots as misses);
- ndcg: nDCG@K with gain 1 for the same label; articles whose label no other article
  has are left out of this mean (their ideal list is empty);
- coverage: share of articles whose list has K items;
- duplicates: share of articles whose list holds a near-duplicate pair, counting both
  (article, item) and (item, item) pairs; a pair is a near-duplicate when its cosine
  (model vectors, float64) is at least 0.95 or the two normalised titles are equal;
- providers: distinct provider names among a list's items (articles with an empty list are
  left out; items without a provider are not counted).

The same figures are computed in the same run for two baselines, over the same articles
and vectors: `tfidf` (cosine of TF-IDF vectors of the same "title. excerpt" texts) and
`random` (seeded), both excluding the article itself and articles with the same text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from recs.articles import Article, article_from_data
from recs.catalog import title_key
from recs.corpus import read_corpus
from recs.encoder import Encoder
from recs.errors import InvalidInput, RecsError
from recs.fieldmap import derive
from recs.frontmatter import ArticleError
from recs.index import exact_scores
from recs.options import ReadOptions
from recs.pipeline import prepare
from recs.progress import Progress, no_progress
from recs.rank_settings import RankSettings
from recs.urls import canonical_url

DUPLICATE_COSINE = 0.95
SYNTHETIC_PREFIX = "https://labelled.invalid/"
RANDOM_SEED = 20240501
BLOCK = 512
ROW_FIELDS = ("title", "excerpt", "publishedDateTime", "provider", "topics", "draft")


@dataclass(frozen=True)
class Labelled:
    """The articles of a labelled file and their labels (label i belongs to article i)."""

    articles: list[Article]
    labels: list[str]
    synthetic_urls: int  # rows without a usable URL of their own


def _row_article(
    row: Any, number: int, source: str, taken: set[str], read: ReadOptions = ReadOptions()
) -> tuple[Article, str, bool]:
    where = f"{source}:{number}"
    if not isinstance(row, dict):
        raise InvalidInput(f"{where}: expected a JSON object, not {type(row).__name__}")
    if row.get("id") is None or isinstance(row["id"], bool | dict | list):
        raise InvalidInput(f"{where}: 'id' is required (text or number)")
    if row.get("label") is None or isinstance(row["label"], bool | dict | list):
        raise InvalidInput(f"{where}: 'label' is required (text or number)")
    fields: dict[str, Any] = {k: v for k, v in row.items() if k not in ("id", "label", "url")}
    if isinstance(row.get("provider"), str):
        fields.pop("provider")
        if row["provider"].strip():
            fields["provider"] = {"name": row["provider"].strip()}
    fields.setdefault("excerpt", "")  # optional in a labelled row; other keys may give one
    try:  # the same mapping as a content file's front matter
        fields, _ = derive(fields, "", source, read)
    except ArticleError as error:
        raise InvalidInput(f"{where}: {error.reason}") from None
    # What the mapping derived, and nothing else of the row (a key that repeats the label
    # under another name must not reach ranking).
    fields = {k: fields[k] for k in ROW_FIELDS if k in fields}
    title = fields.get("title")
    if not isinstance(title, str) or not title.strip():
        raise InvalidInput(f"{where}: 'title' must be non-empty text")
    if not isinstance(fields.get("excerpt"), str):
        raise InvalidInput(f"{where}: 'excerpt' must be text")
    own: str | None = None
    if isinstance(row.get("url"), str) and row["url"].strip():
        try:
            own = canonical_url(row["url"])
        except InvalidInput:
            own = None
    synthetic = own is None or own in taken
    fallback = None
    if synthetic:
        fallback = canonical_url(SYNTHETIC_PREFIX + quote(str(row["id"]), safe=""))
        if fallback in taken:
            raise InvalidInput(f"{where}: id {row['id']!r} is used by another row; ids must differ")
    else:
        fields["webUrl"] = row["url"]
    try:  # exactly as a content file's front matter is read
        article = article_from_data(fields, source, line=number, fallback_url=fallback)
    except ArticleError as error:
        raise InvalidInput(f"{where}: {error.reason}") from None
    taken.add(article.url)
    return article, str(row["label"]), synthetic


def read_labelled(path: Path, read: ReadOptions = ReadOptions(), label: str = "label") -> Labelled:
    """Read a labelled .jsonl file, or a folder of article files labelled by the front-matter
    key `label`; a malformed line is an error naming the line."""
    if Path(path).is_dir():
        return _read_folder(Path(path), read, label)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"no labelled file at {path}: pass a .jsonl file of articles") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(f"cannot read {path}: {error}; it must be UTF-8 JSON lines") from None
    articles: list[Article] = []
    labels: list[str] = []
    taken: set[str] = set()
    synthetic = 0
    rows_read = replace(read, urls=None)  # a row has no path to make a URL from
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise InvalidInput(f"{path}:{number}: invalid JSON: {error}") from None
        article, label_, made_up = _row_article(row, number, Path(path).name, taken, rows_read)
        articles.append(article)
        labels.append(label_)
        synthetic += made_up
    if len(articles) < 2:
        raise InvalidInput(f"{path} has {len(articles)} article(s); evaluation needs at least 2")
    return Labelled(articles, labels, synthetic)


def _read_folder(root: Path, read: ReadOptions, label: str) -> Labelled:
    corpus = read_corpus(root, read)
    articles: list[Article] = []
    labels: list[str] = []
    for article in corpus.articles:
        value = article.fields.get(label)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value):
            articles.append(article)
            labels.append(str(value))
    if len(articles) < 2:
        raise InvalidInput(
            f"{root}: {len(articles)} of {len(corpus.articles)} articles have a {label!r} "
            "front-matter key; evaluation needs at least 2 (choose the key with --label)"
        )
    return Labelled(articles, labels, 0)


# --- figures ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Scores:
    """The figures of one method (see the module docstring)."""

    precision: float
    ndcg: float
    coverage: float
    duplicates: float
    providers: float


def _duplicate_pair(a: int, b: int, cosine: float, keys: Sequence[str]) -> bool:
    return cosine >= DUPLICATE_COSINE or keys[a] == keys[b]


def has_duplicate(row: int, items: Sequence[int], vectors: np.ndarray, keys: Sequence[str]) -> bool:
    """Whether the list `items` of article `row` holds a near-duplicate pair."""
    members = [row, *items]
    for position, a in enumerate(members[:-1]):
        others = members[position + 1 :]
        sims = exact_scores(vectors, vectors[a], others)
        if any(_duplicate_pair(a, b, float(c), keys) for b, c in zip(others, sims, strict=True)):
            return True
    return False


def score(
    lists: Sequence[Sequence[int]],
    labels: Sequence[str],
    vectors: np.ndarray,
    keys: Sequence[str],
    providers: Sequence[str | None],
    limit: int,
) -> Scores:
    """The figures of related lists (row -> rows, best first) cut to `limit` items."""
    n = len(lists)
    label_size: dict[str, int] = {}
    for label in labels:
        label_size[label] = label_size.get(label, 0) + 1
    discounts = 1.0 / np.log2(np.arange(limit) + 2.0)
    precision = ndcg = coverage = duplicates = 0.0
    ndcg_count = 0
    provider_sum, provider_count = 0.0, 0
    for row, full in enumerate(lists):
        items = list(full[:limit])
        gains = np.array([labels[i] == labels[row] for i in items], dtype=np.float64)
        precision += float(gains.sum()) / limit
        relevant = min(limit, label_size[labels[row]] - 1)
        if relevant > 0:
            ndcg += float(gains @ discounts[: len(items)]) / float(discounts[:relevant].sum())
            ndcg_count += 1
        coverage += len(items) >= limit
        duplicates += has_duplicate(row, items, vectors, keys)
        if items:
            provider_sum += len({providers[i] for i in items} - {None})
            provider_count += 1
    return Scores(
        precision=precision / n,
        ndcg=ndcg / ndcg_count if ndcg_count else math.nan,
        coverage=coverage / n,
        duplicates=duplicates / n,
        providers=provider_sum / provider_count if provider_count else 0.0,
    )


# --- baselines --------------------------------------------------------------------------


def tfidf_lists(
    texts: Sequence[str], limit: int, progress: Progress = no_progress
) -> list[list[int]]:
    """Nearest neighbours by TF-IDF cosine, without the article itself or the same text.

    Sublinear term frequency and English stop words: the strongest of the plain TF-IDF
    variants on the shared evaluation data. Ties go to the lower row.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    matrix = TfidfVectorizer(sublinear_tf=True, stop_words="english").fit_transform(texts)
    matrix = matrix.tocsr()
    same_text = _same_text(texts)
    lists: list[list[int]] = []
    n = len(texts)
    progress("tf-idf", 0, n)
    for start in range(0, n, BLOCK):
        scores = (matrix[start : start + BLOCK] @ matrix.T).toarray()
        order = np.argsort(-scores, axis=1, kind="stable")
        for offset, ranked in enumerate(order):
            row = start + offset
            found: list[int] = []
            for candidate in ranked.tolist():
                if candidate != row and same_text[candidate] != same_text[row]:
                    found.append(candidate)
                    if len(found) == limit:
                        break
            lists.append(found)
        progress("tf-idf", min(start + BLOCK, n), n)
    return lists


def random_lists(texts: Sequence[str], limit: int, seed: int = RANDOM_SEED) -> list[list[int]]:
    """`limit` articles drawn at random (seeded), without the article itself or its text."""
    rng = np.random.default_rng(seed)
    same_text = _same_text(texts)
    n = len(texts)
    lists: list[list[int]] = []
    for row in range(n):
        found: list[int] = []
        seen: set[int] = set()
        while len(found) < limit and len(seen) < n:
            candidate = int(rng.integers(n))
            if candidate in seen:
                continue
            seen.add(candidate)
            if candidate != row and same_text[candidate] != same_text[row]:
                found.append(candidate)
        lists.append(found)
    return lists


def _same_text(texts: Sequence[str]) -> list[int]:
    """An id per distinct text: equal ids, equal texts."""
    ids: dict[str, int] = {}
    return [ids.setdefault(text, len(ids)) for text in texts]


# --- the run ----------------------------------------------------------------------------


@dataclass
class Evaluation:
    """What `recs eval` reports."""

    file: str
    articles: int
    labels: int
    limit: int
    model_id: str
    settings: dict[str, Any]  # every ranking option used
    options: dict[str, Any]  # those that differ from the defaults
    synthetic_urls: int
    methods: dict[str, Scores] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)  # method -> options

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["methods"] = {
            name: {k: _rounded(v) for k, v in asdict(s).items()} for name, s in self.methods.items()
        }
        return data

    def table(self) -> str:
        """A plain-text table, one line per method."""
        k = self.limit
        options = ", ".join(f"{name}={value}" for name, value in sorted(self.options.items()))
        width = max(8, *(len(name) for name in self.methods))
        lines = [
            f"{self.file}: {self.articles} articles, {self.labels} labels, limit {k}, "
            f"model {self.model_id}, ranking {options or 'defaults'}",
            f"{'method':<{width}} {f'precision@{k}':>12} {f'nDCG@{k}':>8} {'coverage':>9} "
            f"{'near-dup':>9} {'providers':>10}",
        ]
        for name, s in self.methods.items():
            lines.append(
                f"{name:<{width}} {s.precision:>12.4f} {s.ndcg:>8.4f} {s.coverage:>9.1%} "
                f"{s.duplicates:>9.2%} {s.providers:>10.2f}"
            )
        return "\n".join(lines)


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)


def changed_options(settings: RankSettings) -> dict[str, Any]:
    """The ranking options that differ from the defaults (limit aside)."""
    default = asdict(RankSettings())
    return {k: v for k, v in asdict(settings).items() if k != "limit" and default.get(k) != v}


def evaluate(
    path: Path,
    encoder: Encoder,
    settings: RankSettings,
    *,
    baselines: bool = True,
    variants: Mapping[str, RankSettings] | None = None,
    progress: Progress = no_progress,
    read: ReadOptions = ReadOptions(),
    label: str = "label",
) -> Evaluation:
    """Build the store of a labelled file in memory and score its lists and the baselines.

    `variants` (name -> settings) are scored too, as methods "recs <name>": each is a
    build of the same articles with the same vectors (embedded once), other settings.
    """
    data = read_labelled(path, read, label)
    snapshot, _ = prepare(data.articles, encoder, settings, progress=progress)
    if len(snapshot) != len(data.articles):
        raise RecsError(  # read_labelled gives every row its own URL; this is a bug
            f"{len(data.articles) - len(snapshot)} labelled rows were merged by URL"
        )
    label_of = {a.url: label for a, label in zip(data.articles, data.labels, strict=True)}
    labels = [label_of[a.url] for a in snapshot.articles]
    keys = [title_key(a.title) for a in snapshot.articles]
    providers = snapshot.catalog.providers
    vectors = snapshot.vectors
    limit = settings.limit
    evaluation = Evaluation(
        file=Path(path).name,
        articles=len(snapshot),
        labels=len(set(labels)),
        limit=limit,
        model_id=encoder.model_id,
        settings=asdict(settings),
        options=changed_options(settings),
        synthetic_urls=data.synthetic_urls,
    )
    methods: dict[str, list[list[int]]] = {
        "recs": [[item.row for item in items] for items in snapshot.related]
    }
    for name, variant in (variants or {}).items():
        if variant.limit != limit:
            raise InvalidInput(f"variant {name!r} has limit {variant.limit}, not {limit}")
        other, _ = prepare(data.articles, encoder, variant, previous=snapshot, progress=progress)
        methods[f"recs {name}"] = [[item.row for item in items] for items in other.related]
        evaluation.variants[f"recs {name}"] = changed_options(variant)
    if baselines:
        texts = [a.text for a in snapshot.articles]
        methods["tfidf"] = tfidf_lists(texts, limit, progress)
        methods["random"] = random_lists(texts, limit)
    for name, lists in methods.items():
        progress(f"scoring {name}", 0, 1)
        evaluation.methods[name] = score(lists, labels, vectors, keys, providers, limit)
        progress(f"scoring {name}", 1, 1)
    return evaluation
