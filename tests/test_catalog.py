"""recs/catalog.py: what ranking knows of every article (Facts, the Catalog columns and
lookups) and of the article asking (Query)."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from recs.catalog import title_key


@given(st.text(alphabet=st.characters(max_codepoint=0x2FFF), max_size=30))
def test_title_key_of_any_text_is_its_nfkd_ascii_folding(title):
    folded = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    expected = re.sub(r"[\W_]+", " ", folded.lower()).strip() or title.strip().lower()
    assert title_key(title) == expected
    assert title_key("Café — ÉTÉ") == "cafe ete" and title_key("Cafe ete!") == "cafe ete"
