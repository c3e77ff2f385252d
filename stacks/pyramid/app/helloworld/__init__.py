"""The framework-lab contract in Pyramid, with the SQLAlchemy ORM and Jinja2 (stacks/CONTRACT.md)."""

from pyramid.config import Configurator


def main(global_config, **settings):
    """Return the Pyramid WSGI application (the same factory signature pserve would call)."""
    with Configurator(settings=settings) as config:
        config.include("pyramid_jinja2")
        config.include(".models")
        config.include(".routes")
        config.scan(".views")
    return config.make_wsgi_app()
