"""memos-desktop: a private memory assistant."""

__version__ = "0.1.0"
