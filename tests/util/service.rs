//! Test helpers for the service tests.
