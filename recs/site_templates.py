"""The template partials `recs init` writes, one per generator, and where each goes.

Each shows a page's related list from the data file `recs export --site` writes (Hugo also
reads a page's own `related` front matter, written by `recs regenerate`): a heading and
one link per related article, to its page as the generator knows it (`path`). The
example sites' tests build pages with exactly these texts.
"""

from __future__ import annotations

HUGO = """\
{{- /* Related articles, from recs (docs/sites.md). The page's own `related` front matter
  (written by `recs regenerate`), else data/related.json (written by `recs export --site`),
  keyed by the page's .RelPermalink. */ -}}
{{- $related := .Params.related -}}
{{- if not $related -}}
  {{- $related = index (site.Data.related | default dict) .RelPermalink -}}
{{- end -}}
{{- with $related }}
<aside class="related">
  <h2>Related articles</h2>
  <ul>
  {{- range . }}
    {{- $href := index . "path" }}
    {{- if not $href }}{{ $href = index . "webUrl" | relURL }}{{ end }}
    <li><a href="{{ $href }}">{{ index . "title" }}</a></li>
  {{- end }}
  </ul>
</aside>
{{- end }}
"""

JEKYLL = """\
{%- comment -%}
  Related articles, from recs (docs/sites.md): _data/related.json, written by
  `recs export --site`, keyed by the page's page.url.
{%- endcomment -%}
{%- assign related = site.data.related[page.url] -%}
{%- if related and related.size > 0 %}
<aside class="related">
  <h2>Related articles</h2>
  <ul>
  {%- for item in related %}
    <li><a href="{{ item.path | relative_url }}">{{ item.title | escape }}</a></li>
  {%- endfor %}
  </ul>
</aside>
{%- endif %}
"""

ELEVENTY_NUNJUCKS = """\
{#- Related articles, from recs (docs/sites.md): _data/related.json, written by
  `recs export --site`, keyed by the page's page.url. -#}
{%- set recsRelated = related[page.url] if related else [] -%}
{%- if recsRelated and recsRelated.length %}
<aside class="related">
  <h2>Related articles</h2>
  <ul>
  {%- for item in recsRelated %}
    <li><a href="{{ item.path | url }}">{{ item.title }}</a></li>
  {%- endfor %}
  </ul>
</aside>
{%- endif %}
"""

ELEVENTY_LIQUID = """\
{%- comment -%}
  Related articles, from recs (docs/sites.md): _data/related.json, written by
  `recs export --site`, keyed by the page's page.url.
{%- endcomment -%}
{%- assign recsRelated = related[page.url] -%}
{%- if recsRelated and recsRelated.size > 0 %}
<aside class="related">
  <h2>Related articles</h2>
  <ul>
  {%- for item in recsRelated %}
    <li><a href="{{ item.path | url }}">{{ item.title | escape }}</a></li>
  {%- endfor %}
  </ul>
</aside>
{%- endif %}
"""

ASTRO = """\
---
// Related articles, from recs (docs/sites.md): src/data/related.json, written by
// `recs export --site`, loaded as the `related` collection (see `recs init`'s lines for
// src/content.config.ts). Use: <RelatedArticles entry={post} />
import { getEntry } from "astro:content";

const { entry } = Astro.props;
const found = await getEntry("related", `${entry.collection}/${entry.id}`);
const items = found?.data.related ?? [];
---
{items.length > 0 && (
  <aside class="related">
    <h2>Related articles</h2>
    <ul>
      {items.map((item) => <li><a href={item.path}>{item.title}</a></li>)}
    </ul>
  </aside>
)}
"""

# generator -> (path of the partial in the site, its text, the line a layout adds)
PARTIALS: dict[str, tuple[str, str, str]] = {
    "hugo": (
        "layouts/partials/recs-related.html",
        HUGO,
        '{{ partial "recs-related.html" . }}',
    ),
    "jekyll": ("_includes/recs-related.html", JEKYLL, "{% include recs-related.html %}"),
    "eleventy": (
        "_includes/recs-related.njk",
        ELEVENTY_NUNJUCKS,
        '{% include "recs-related.njk" %}',
    ),
    "eleventy-liquid": (
        "_includes/recs-related.liquid",
        ELEVENTY_LIQUID,
        '{% include "recs-related.liquid" %}',
    ),
    "astro": (
        "src/components/RelatedArticles.astro",
        ASTRO,
        '<RelatedArticles entry={post} />  (import RelatedArticles from "../components/'
        'RelatedArticles.astro")',
    ),
}

ASTRO_COLLECTION = """\
import { file } from "astro/loaders";
const related = defineCollection({ loader: file("src/data/related.json") });
export const collections = { /* your collections, */ related };"""
