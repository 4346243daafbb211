//! Test helpers for the sensor tests.
