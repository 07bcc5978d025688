"""Chromium driven by Playwright against the real server."""
