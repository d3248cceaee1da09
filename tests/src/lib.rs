//! Integration tests for latchkey live in `tests/`.
