"""``sessionward demo``: a small web app that shows the whole session protocol in a browser.

- :mod:`sessionward.demo.app` builds the Starlette app (pages and JSON API);
- :mod:`sessionward.demo.devices` names a session's browser from its ``User-Agent`` (the
  "your devices" panel);
- :mod:`sessionward.demo.theft` holds the theft simulation (a copied refresh token, replayed);
- :mod:`sessionward.demo.server` runs the app under uvicorn and prints where to point a browser.

The pages (``assets/``) use the package's own browser client, ``sessionward.js``. Needs the
``demo`` extra (Starlette and uvicorn): ``pip install 'sessionward[demo]'``.
See ``docs/cli.md``.
"""
