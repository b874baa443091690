"""Shared Django set-up of the peer apps: settings, migrations into a per-app SQLite file."""

from __future__ import annotations

from typing import Any

import django
from django.conf import settings


def configure(urlconf: str, db_name: str | None = None, **options: Any) -> None:
    """``settings.configure`` + ``django.setup()``; with ``db_name``, a SQLite database in the
    work directory, migrated at start (the worker is the database's only user)."""
    import _env

    databases = (
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(_env.db_path(db_name))}}
        if db_name
        else {}
    )
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        SECRET_KEY=_env.HS_SECRET,
        ROOT_URLCONF=urlconf,
        DATABASES=databases,
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        **options,
    )
    django.setup()
    if db_name:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False, run_syncdb=True)


def fixed_user() -> Any:
    """The benchmark's user (created once, no usable password: logins here check none)."""
    import _env
    from django.contrib.auth import get_user_model

    user, _created = get_user_model().objects.get_or_create(username=_env.USER_ID)
    return user
