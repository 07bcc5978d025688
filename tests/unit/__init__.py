"""Pure functions: rules, assessment, arbitration, normaliser, knowledge, cards, units. No app, no server."""
