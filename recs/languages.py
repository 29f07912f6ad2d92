"""An article's language: the code its front matter declares, or one detected from its text.

Lists of a multilingual model keep to the article's own language (`same_language`, on by
the model's calibration, recs.models): its vectors place a German and an English report of
one story side by side, which a reader of either page does not want. The language is the
primary subtag of a BCP 47 tag, lower case (`de` for `de-CH`, `pt` for `pt_BR`). Where a
file declares none, it is detected from the title and excerpt with py3langid (a naive
Bayes model over byte n-grams that ships inside the package, 97 languages; about 0.1 to
0.3 ms a text here), only for stores whose model asks for it: a monolingual store never
loads it.
"""

from __future__ import annotations

import re
from typing import Any

# A BCP 47 language tag as sites write it: the primary subtag (2 or 3 letters) and
# optional subtags, with - or _ (`en`, `de-CH`, `pt_BR`, `zh-Hant-TW`).
_TAG = re.compile(r"([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{1,8})*")


def language_code(value: Any) -> str | None:
    """The primary language subtag of a declared `value`, lower case; None for a value
    that is not a language tag (a name such as "German", a number)."""
    match = _TAG.fullmatch(value.strip()) if isinstance(value, str) else None
    return match.group(1).lower() if match else None


def detect(text: str) -> str | None:
    """The language of `text` (its primary subtag), or None when there is no text."""
    if not text.strip():
        return None
    import py3langid

    language, _ = py3langid.classify(text)
    return str(language)
