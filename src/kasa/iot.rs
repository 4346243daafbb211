//! The legacy "IOT" JSON protocol (DESIGN §3) as a [`Device`]: `get_sysinfo`,
//! `set_relay_state` (with the child context for a strip outlet) and the
//! `count_down` dead-man rule, over any [`Transport`] — the XOR transport on
//! port 9999, or KLAP v1 for the newer firmware that closed that port.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::device::{DeadmanKind, Device, Outlet, Protocol, Status};
use super::error::KasaError;
use super::protocol::{self, CountdownRule, Emeter, SysInfo};
use super::transport::Transport;
use crate::msg::plug::deadman_secs;

/// The name of the dead-man countdown rule on the plug.
pub(crate) const DEADMAN_RULE_NAME: &str = "kasa-thermostat deadman";

/// A legacy plug, or one outlet of a legacy strip.
pub struct IotDevice<T> {
    transport: T,
    protocol: Protocol,
    outlet: Option<Outlet>,
    /// The outlet's full child id, once resolved from a sysinfo.
    child_id: Option<String>,
}

impl<T: Transport> IotDevice<T> {
    /// The device behind `transport`, addressing `outlet` on a strip.
    /// `protocol` names the transport in use, for messages.
    pub fn new(transport: T, outlet: Option<Outlet>, protocol: Protocol) -> IotDevice<T> {
        IotDevice {
            transport,
            protocol,
            outlet,
            child_id: None,
        }
    }

    fn addr(&self) -> String {
        self.transport.address().to_string()
    }

    /// Sends one request and picks `module.method` out of the reply,
    /// checking `err_code` at both levels.
    pub fn call(
        &mut self,
        module: &str,
        method: &str,
        params: Value,
        deadline: Instant,
    ) -> Result<Value, KasaError> {
        let req = protocol::request(self.child_id.as_deref(), module, method, params);
        let reply = self.transport.request(&req, deadline)?;
        protocol::extract(&reply, module, method)
            .cloned()
            .map_err(|e| KasaError::from_reply(self.transport.address(), e))
    }

    /// `system.get_sysinfo`, parsed.
    pub fn sysinfo(&mut self, deadline: Instant) -> Result<SysInfo, KasaError> {
        let reply = self
            .transport
            .request(&protocol::sysinfo_request(), deadline)?;
        SysInfo::from_reply(&reply).map_err(|e| KasaError::from_reply(self.transport.address(), e))
    }

    /// The state of the target, resolving the outlet's child id on the way.
    fn state(&mut self, deadline: Instant) -> Result<(bool, SysInfo), KasaError> {
        let info = self.sysinfo(deadline)?;
        let outlet_err = |source| KasaError::Outlet {
            addr: self.addr(),
            source,
        };
        if let Some(o) = &self.outlet {
            self.child_id = Some(info.child_id(o).map_err(outlet_err)?);
        }
        let on = info
            .state_of(self.outlet.as_ref())
            .map_err(|source| KasaError::Outlet {
                addr: self.addr(),
                source,
            })?;
        Ok((on, info))
    }

    /// A strip outlet is addressed by its child id, learned from a sysinfo.
    fn resolve(&mut self, deadline: Instant) -> Result<(), KasaError> {
        if self.outlet.is_some() && self.child_id.is_none() {
            self.state(deadline)?;
        }
        Ok(())
    }

    /// `count_down.get_rules` of the target.
    pub fn countdown_rules(&mut self, deadline: Instant) -> Result<Vec<CountdownRule>, KasaError> {
        self.resolve(deadline)?;
        let req = protocol::request(
            self.child_id.as_deref(),
            "count_down",
            "get_rules",
            json!({}),
        );
        let reply = self.transport.request(&req, deadline)?;
        protocol::parse_countdown_rules(&reply)
            .map_err(|e| KasaError::from_reply(self.transport.address(), e))
    }

    /// `emeter.get_realtime` of the target, in W, V, A and kWh.
    pub fn emeter(&mut self, deadline: Instant) -> Result<Emeter, KasaError> {
        self.resolve(deadline)?;
        let req = protocol::request(
            self.child_id.as_deref(),
            "emeter",
            "get_realtime",
            json!({}),
        );
        let reply = self.transport.request(&req, deadline)?;
        Emeter::from_reply(&reply).map_err(|e| KasaError::from_reply(self.transport.address(), e))
    }
}

impl<T: Transport> Device for IotDevice<T> {
    fn address(&self) -> &str {
        self.transport.address()
    }

    fn protocol(&self) -> Protocol {
        self.protocol
    }

    fn read(&mut self, deadline: Instant) -> Result<Status, KasaError> {
        let (on, info) = self.state(deadline)?;
        Ok(Status {
            on,
            rssi: info.rssi,
            model: info.model,
        })
    }

    fn set(&mut self, on: bool, deadline: Instant) -> Result<(), KasaError> {
        self.resolve(deadline)?;
        self.call(
            "system",
            "set_relay_state",
            json!({ "state": u8::from(on) }),
            deadline,
        )
        .map(drop)
    }

    /// A plug holds one countdown rule (`add_rule` on a full table answers
    /// `-10 table is full`), so the old rules go first, in their own request:
    /// the order of two methods inside one request is up to the firmware.
    fn arm_deadman(
        &mut self,
        delay: Duration,
        deadline: Instant,
    ) -> Result<DeadmanKind, KasaError> {
        self.resolve(deadline)?;
        let secs = deadman_secs(delay);
        self.call("count_down", "delete_all_rules", json!({}), deadline)?;
        let params = json!({"enable": 1, "delay": secs, "act": 0, "name": DEADMAN_RULE_NAME});
        self.call("count_down", "add_rule", params, deadline)?;
        Ok(DeadmanKind::Countdown { secs })
    }

    fn clear_deadman(&mut self, deadline: Instant) -> Result<(), KasaError> {
        self.resolve(deadline)?;
        self.call("count_down", "delete_all_rules", json!({}), deadline)
            .map(drop)
    }

    fn info(&mut self, deadline: Instant) -> Result<Value, KasaError> {
        let reply = self
            .transport
            .request(&protocol::sysinfo_request(), deadline)?;
        protocol::extract(&reply, "system", "get_sysinfo")
            .cloned()
            .map_err(|e| KasaError::from_reply(self.transport.address(), e))
    }

    fn close(&mut self) {
        self.transport.close();
    }
}
