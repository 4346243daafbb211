//! The DS18B20 sensor (DESIGN §6): backends, fault classification and the
//! sensor thread.

pub mod cli;
