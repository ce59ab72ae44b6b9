"""Sandbox tooling: a fake Telegram Bot API server for tests, demos and benchmarks."""
