//! The TP-Link Kasa local protocol (DESIGN §3): codec and framing, a blocking
//! client, the plug worker thread, UDP discovery and a simulated plug.

pub mod cli;
pub mod worker;
