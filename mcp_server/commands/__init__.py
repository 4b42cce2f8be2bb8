"""One module per `dcr` sub-command; see `mcp_server/cli.py` for the contract."""
