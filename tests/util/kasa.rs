//! Test helpers for the kasa tests.
