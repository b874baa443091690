"""The real-browser suite: Chromium against the framework test apps on real servers."""
