//! The integration tests: one binary (one link of the whole crate, not one
//! per file), with a module per area and one shared harness in [`util`].

mod util;

mod profile_cases;

mod alerts;
mod cli;
mod deploy_files;
mod instances;
mod kasa_aes;
mod kasa_cli;
mod kasa_device;
mod kasa_hostile;
mod kasa_klap;
mod kasa_protocol;
mod kasa_tpap;
mod kasa_worker;
mod profile_table;
mod report_figures;
mod sensor_cli;
mod sensor_latency;
mod sensor_pair;
mod sensor_thread;
mod sensor_virtual_bus;
mod sensor_w1;
mod service_alerts;
mod service_cascade;
mod service_changes;
mod service_e2e;
mod service_inprocess;
mod service_profile;
mod soak;
mod web;
