"""``pidgin serve``: a local web view and a GraphQL API over an output root.

Modules, one job each: ``_command`` (the click command; imports only click), ``_catalog``
(live state from the logs: StateBuilder and ``pidgin_cli._transcript``'s readers, which
``pidgin transcript`` shares), ``_history`` (DuckDB, read-only, finished runs), ``_types`` and
``_api`` (the GraphQL schema, built with strawberry), ``_pages`` and ``_svg`` (HTML),
``_http`` (routes, token, headers, event stream); ``static/`` holds the page's script and
style sheet. Nothing is imported here, so that ``pidgin --help`` never loads the server.
"""
