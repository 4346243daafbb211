//! The shared test harness: helpers used by several integration test files.
//! Each area keeps its own helpers in a submodule.
#![allow(dead_code)]

pub mod kasa;
pub mod sensor;
pub mod service;
