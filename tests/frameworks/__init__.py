"""The adapter suites: the framework test apps (``apps``), the wire-level client
(``wire``) and the ways to open an app in process or on a real server (``clients``)."""
