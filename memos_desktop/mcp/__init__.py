"""MCP server front end (issue 13)."""
