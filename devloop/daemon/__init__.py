"""The daemon's wiring: one `devloop up`/`ci` session (engine, API server, terminal UI) and
`devloop down`. The only package that knows every layer below it."""
