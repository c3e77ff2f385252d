"""WSGI entry point for gunicorn (`app:app`): the Pyramid application built by helloworld.main."""

from helloworld import main

app = main({})
