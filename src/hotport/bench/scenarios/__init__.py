"""The benchmark's scenarios: each `run(ctx)` returns a JSON-ready dict."""
