//! What an instance locks before it starts: each plug it drives, its sensor
//! by id, and with the `hal` backend the GPIO line it bit-bangs (one process
//! per line: two bit-bangers on one wire garble each other). Two instances
//! reading two sensors on one kernel w1 bus is fine: the kernel serialises.

use std::net::{IpAddr, ToSocketAddrs};

use log::{info, warn};

use super::error::ServiceError;
use crate::config::Config;
use crate::instance::lock::{self, Locks, Resource};
use crate::kasa::Outlet;
use crate::sensor::Backend;

/// The things `config` drives, in a lockable spelling.
pub(crate) fn resources(config: &Config) -> Vec<Resource> {
    let mut out: Vec<Resource> = config
        .plugs()
        .into_iter()
        .map(|(_, p)| Resource::Plug {
            host: canonical_host(&p.target.host),
            port: p.target.port(),
            outlet: p.target.outlet.as_ref().map(|o| match o {
                Outlet::Index(i) => format!("#{i}"),
                Outlet::Id(id) => id.clone(),
            }),
        })
        .collect();
    let s = &config.sensor.options;
    match s.backend {
        Backend::Simulated => {}
        Backend::W1 | Backend::Hal => {
            if let Some(id) = &s.id {
                out.push(Resource::Sensor { id: id.clone() });
            }
            // The cascade's air sensor is a sensor like the other.
            if let Some(c) = &config.chamber {
                out.push(Resource::Sensor { id: c.id.clone() });
            }
        }
    }
    if s.backend == Backend::Hal {
        out.push(Resource::GpioLine {
            chip: s.gpio_chip.clone(),
            line: s.gpio_line,
        });
    }
    out
}

/// An IP address in its one canonical spelling (`0:0::1` is `::1`); a name
/// as written (the lock file lowercases it).
fn canonical_host(host: &str) -> String {
    // The config refuses brackets: an IPv6 host is written bare.
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => host.to_string(),
    }
}

/// `resources` plus, for each plug given by name, a lock on every address
/// the name resolves to now: one instance with `plug.lan`, another with
/// its `192.168.1.50` are then the same plug and the second is refused.
/// A name that does not resolve now keeps its name lock only, and says so
/// (the plug worker resolves again on every connection).
fn with_addresses(resources: Vec<Resource>) -> Vec<Resource> {
    let mut out = resources.clone();
    for r in &resources {
        let Resource::Plug { host, port, outlet } = r else {
            continue;
        };
        if host.parse::<IpAddr>().is_ok() {
            continue;
        }
        match (host.as_str(), *port).to_socket_addrs() {
            Ok(addrs) => {
                for a in addrs {
                    let by_address = Resource::Plug {
                        host: a.ip().to_string(),
                        port: *port,
                        outlet: outlet.clone(),
                    };
                    if !out.contains(&by_address) {
                        out.push(by_address);
                    }
                }
            }
            Err(e) => warn!(
                "{r}: cannot resolve {host} now ({e}): locked by its name only, \
                 so another instance giving its address is not refused"
            ),
        }
    }
    out
}

/// Takes the locks of `config` in its `lock_dir`, named for its instance.
pub(crate) fn take(config: &Config) -> Result<Locks, ServiceError> {
    let holder = crate::instance::unit_name(config.instance.as_ref());
    let wanted = with_addresses(resources(config));
    let locks = lock::acquire(&config.lock_dir, &holder, &wanted).map_err(ServiceError::Lock)?;
    let names: Vec<String> = locks.resources().map(ToString::to_string).collect();
    info!(
        "{holder} holds {} in {}",
        if names.is_empty() {
            "no lock".to_string()
        } else {
            names.join(", ")
        },
        config.lock_dir.display()
    );
    Ok(locks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugs_the_sensor_and_a_hal_line_are_locked() {
        let c = Config::from_json(
            r#"{"mode": "heat_cool",
                "heater": {"host": "10.0.0.5", "outlet": 1},
                "cooler": {"host": "10.0.0.6", "protocol": "klap"},
                "sensor": {"backend": "hal", "id": "28-0316a2797aff", "gpio_line": 17}}"#,
        )
        .unwrap();
        let got: Vec<String> = resources(&c).iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "plug 10.0.0.5:9999 outlet #1",
                "plug 10.0.0.6:80",
                "sensor 28-0316a2797aff",
                "GPIO line /dev/gpiochip0:17"
            ]
        );
        let w1 = Config::from_json(
            r#"{"mode": "heat", "heater": {"host": "h"}, "sensor": {"id": "28-aa"}}"#,
        )
        .unwrap();
        let got: Vec<String> = resources(&w1).iter().map(ToString::to_string).collect();
        assert_eq!(got, ["plug h:9999", "sensor 28-aa"]);
        let chamber = Config::from_json(
            r#"{"mode": "heat", "heater": {"host": "h"}, "sensor": {"id": "28-aa"},
                "chamber_sensor": {"id": "28-bb"}}"#,
        )
        .unwrap();
        let got: Vec<String> = resources(&chamber)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["plug h:9999", "sensor 28-aa", "sensor 28-bb"]);
    }

    #[test]
    fn an_address_has_one_spelling_and_a_name_adds_its_addresses() {
        let c = Config::from_json(
            r#"{"mode": "heat_cool", "heater": {"host": "0:0::1"},
                "cooler": {"host": "127.0.0.1", "outlet": 2}}"#,
        )
        .unwrap();
        let got: Vec<String> = resources(&c).iter().map(ToString::to_string).collect();
        assert_eq!(got, ["plug [::1]:9999", "plug 127.0.0.1:9999 outlet #2"]);
        // An address is not resolved again; `localhost` (from /etc/hosts,
        // no network) adds the loopback address with the same port and outlet.
        let ip = Resource::Plug {
            host: "127.0.0.1".into(),
            port: 80,
            outlet: None,
        };
        assert_eq!(with_addresses(vec![ip.clone()]), vec![ip]);
        let named = Resource::Plug {
            host: "localhost".into(),
            port: 80,
            outlet: Some("#1".into()),
        };
        let got: Vec<String> = with_addresses(vec![named])
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got[0], "plug localhost:80 outlet #1");
        assert!(
            got.contains(&"plug 127.0.0.1:80 outlet #1".to_string()),
            "{got:?}"
        );
    }
}
