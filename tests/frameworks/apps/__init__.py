"""One test app per framework, serving the routes of the adapter contract; ``serve`` holds
the entry points of the real-server processes."""
