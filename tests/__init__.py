"""The test suite, by layer: unit/, http/, integration/, browser/; shared helpers in support/."""
