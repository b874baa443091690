"""A small Django project using sessionward (see ../README in docs/django.md)."""
