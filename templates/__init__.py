"""The Jinja2 templates (channels/, pages/, partials/), installed as the package ``hub.templates``.

This folder stays at the repository's top level; setup.py maps it onto ``hub.templates`` so the
wheel carries it inside ``hub/`` and an editable install finds it here. Code locates it with
``importlib.resources.files("hub.templates")`` (connectors/markup.py), never relative to the
current directory or to another module's file.
"""
