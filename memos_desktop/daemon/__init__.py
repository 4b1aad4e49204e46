"""The background daemon (issue 12): a separate process per profile that drains the durable job
queue (extraction, merging, conflicts, summaries, decay, KV refresh, and what other layers
register) while the person is away. ``worker`` is the loop, ``control`` starts, stops and
reports on it, ``service`` renders the systemd user unit and the launchd agent.

Run it as ``memos-desktop daemon run`` (foreground: what the service units do) or
``python -m memos_desktop.daemon run``. It imports ``memos_desktop.api`` (plus config and
errors) and nothing below it."""
