"""recs: related articles for news and content sites.

The Python API is `Recommender` (see recs.recommender); it is imported on first use so
that `import recs` stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Recommender", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Recommender":
        from recs.recommender import Recommender

        return Recommender
    raise AttributeError(f"module 'recs' has no attribute {name!r}")
