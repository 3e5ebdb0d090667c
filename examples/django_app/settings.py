"""Settings of the example Django app next to Rotary (see urls.py).

Run (with Rotary's HMAC secret, the config's token_hmac_secret_key):

    ROTARY_EXAMPLE_SECRET=... django-admin runserver 5000 --settings examples.django_app.settings

Sessions live in a signed cookie, so the example needs no database.
"""

import os
import secrets

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(32)
ROTARY_SECRET = os.environ["ROTARY_EXAMPLE_SECRET"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "examples.django_app.urls"
INSTALLED_APPS = ["django.contrib.sessions"]
MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware"]
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
DATABASES: dict[str, object] = {}
USE_TZ = True
