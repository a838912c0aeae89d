"""A plugin module whose import fails (not with ImportError)."""

raise RuntimeError("boom at import")
