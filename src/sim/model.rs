//! The simulated hardware: each [`Model`] a simulated plug can be, with the
//! facts the servers need about it (names, outlets, meter, default
//! credentials) and the [`Wire`] its TCP port speaks. A leaf of `sim/`.

use std::str::FromStr;

use crate::kasa::credentials::{default_for, Credentials, KlapVersion};

/// The simulated hardware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// A single plug, `HS100(UK)`, legacy protocol on TCP.
    Hs100,
    /// A single plug with an energy meter, `HS110(EU)`.
    Hs110,
    /// A six-outlet strip with a meter per outlet, `HS300(US)`.
    Hs300,
    /// Tapo P100 (fw 1.4): SMART over KLAP v2, countdown only.
    P100,
    /// Tapo P110: SMART over KLAP v2, countdown and auto-off.
    P110,
    /// Tapo P300 three-outlet strip: SMART over KLAP v2, outlets with countdown and auto-off.
    P300,
    /// Kasa KP125M: SMART over KLAP v2, countdown and auto-off.
    Kp125m,
    /// Kasa EP40M two-outlet outdoor strip: SMART over KLAP v2, outlets with countdown.
    Ep40m,
    /// Kasa HS100(UK) hw 4.1: the legacy JSON inside KLAP v1.
    Hs100Klap,
    /// Tapo P110 (EU) fw 1.2.3: SMART over AES (login v2), countdown and auto-off.
    P110Aes,
    /// Kasa EP25 (US) hw 2.6: SMART over AES (login v2), countdown and auto-off.
    Ep25,
    /// Tapo P110 on firmware 1.4.x: SMART over TPAP (md5-crypt pre-hash,
    /// AES-128-CCM), countdown and auto-off.
    P110Tpap,
    /// Kasa KP125M on firmware 1.4.1: SMART over TPAP (sha256-crypt
    /// pre-hash, ChaCha20-Poly1305), countdown and auto-off.
    Kp125mTpap,
}

/// How a model's TCP port speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    /// 4-byte length + XOR autokey (port 9999 on real plugs).
    Xor,
    /// HTTP with KLAP (port 80 on real plugs).
    Klap,
    /// HTTP with AES "securePassthrough" (port 80 on real plugs).
    Aes,
    /// HTTP with TPAP (port 80 on real plugs).
    Tpap,
}

impl Wire {
    /// The `encrypt_type` of the 20002 answer (`XOR` for the legacy port).
    pub(crate) fn scheme(self) -> &'static str {
        match self {
            Wire::Xor => "XOR",
            Wire::Klap => "KLAP",
            Wire::Aes => "AES",
            Wire::Tpap => "TPAP",
        }
    }
}

impl Model {
    /// Every model, in the order `--model` lists them.
    pub(crate) const ALL: [Model; 13] = [
        Model::Hs100,
        Model::Hs110,
        Model::Hs300,
        Model::P100,
        Model::P110,
        Model::P300,
        Model::Kp125m,
        Model::Ep40m,
        Model::Hs100Klap,
        Model::P110Aes,
        Model::Ep25,
        Model::P110Tpap,
        Model::Kp125mTpap,
    ];

    /// The `--model` name.
    pub(crate) fn cli_name(self) -> &'static str {
        match self {
            Model::Hs100 => "hs100",
            Model::Hs110 => "hs110",
            Model::Hs300 => "hs300",
            Model::P100 => "p100",
            Model::P110 => "p110",
            Model::P300 => "p300",
            Model::Kp125m => "kp125m",
            Model::Ep40m => "ep40m",
            Model::Hs100Klap => "hs100-klap",
            Model::P110Aes => "p110-aes",
            Model::Ep25 => "ep25",
            Model::P110Tpap => "p110-tpap",
            Model::Kp125mTpap => "kp125m-tpap",
        }
    }

    /// The model string in the sysinfo or device info.
    pub fn model_name(self) -> &'static str {
        match self {
            Model::Hs100 | Model::Hs100Klap => "HS100(UK)",
            Model::Hs110 => "HS110(EU)",
            Model::Hs300 => "HS300(US)",
            Model::P100 => "P100",
            Model::P110 | Model::P110Aes | Model::P110Tpap => "P110",
            Model::P300 => "P300",
            Model::Kp125m | Model::Kp125mTpap => "KP125M",
            Model::Ep40m => "EP40M",
            Model::Ep25 => "EP25",
        }
    }

    /// The model with its region, as the 20002 discovery answer names it.
    pub(crate) fn discovery_model(self) -> &'static str {
        match self {
            Model::P100 => "P100(US)",
            Model::P110 => "P110(UK)",
            Model::P300 => "P300(EU)",
            Model::Kp125m => "KP125M(US)",
            Model::Ep40m => "EP40M(US)",
            Model::P110Aes | Model::P110Tpap => "P110(EU)",
            Model::Ep25 => "EP25(US)",
            Model::Kp125mTpap => "KP125M(US)",
            other => other.model_name(),
        }
    }

    /// Whether it speaks the SMART JSON (otherwise the legacy JSON).
    pub fn is_smart(self) -> bool {
        matches!(
            self,
            Model::P100
                | Model::P110
                | Model::P300
                | Model::Kp125m
                | Model::Ep40m
                | Model::P110Aes
                | Model::Ep25
                | Model::P110Tpap
                | Model::Kp125mTpap
        )
    }

    /// What its TCP port speaks.
    pub(crate) fn wire(self) -> Wire {
        if matches!(self, Model::P110Aes | Model::Ep25) {
            Wire::Aes
        } else if matches!(self, Model::P110Tpap | Model::Kp125mTpap) {
            Wire::Tpap
        } else if self.is_smart() || self == Model::Hs100Klap {
            Wire::Klap
        } else {
            Wire::Xor
        }
    }

    /// The KLAP hash version of a KLAP model.
    pub(crate) fn klap_version(self) -> KlapVersion {
        if self.is_smart() {
            KlapVersion::V2
        } else {
            KlapVersion::V1
        }
    }

    /// `device_type` in discovery (`mic_type` in a legacy sysinfo).
    pub(crate) fn device_type(self) -> &'static str {
        match self {
            Model::P100 | Model::P110 | Model::P300 | Model::P110Aes | Model::P110Tpap => {
                "SMART.TAPOPLUG"
            }
            Model::Kp125m | Model::Ep40m | Model::Ep25 | Model::Kp125mTpap => "SMART.KASAPLUG",
            _ => "IOT.SMARTPLUGSWITCH",
        }
    }

    /// The credentials the device accepts when never bound to an account.
    /// AES devices take the `TAPO` default whatever their brand: it is the
    /// only one python-kasa's AES transport tries.
    pub fn default_credentials(self) -> Credentials {
        match self {
            Model::P100 | Model::P110 | Model::P300 | Model::P110Tpap => default_for("TAPO"),
            _ if self.wire() == Wire::Aes => default_for("TAPO"),
            _ => default_for("KASA"),
        }
    }

    pub(super) fn outlets(self) -> usize {
        match self {
            Model::Hs300 => 6,
            Model::P300 => 3,
            Model::Ep40m => 2,
            _ => 1,
        }
    }

    pub(super) fn has_emeter(self) -> bool {
        matches!(self, Model::Hs110 | Model::Hs300)
    }
}

impl FromStr for Model {
    type Err = String;
    fn from_str(s: &str) -> Result<Model, String> {
        let s = s.to_ascii_lowercase();
        Model::ALL
            .into_iter()
            .find(|m| m.cli_name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Model::ALL.iter().map(|m| m.cli_name()).collect();
                format!("expected one of {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_parse() {
        for m in Model::ALL {
            assert_eq!(m.cli_name().parse::<Model>(), Ok(m));
        }
        assert_eq!("HS100-KLAP".parse::<Model>(), Ok(Model::Hs100Klap));
        assert!("p999".parse::<Model>().unwrap_err().contains("kp125m"));
        assert_eq!("kp125m-tpap".parse::<Model>(), Ok(Model::Kp125mTpap));
    }

    #[test]
    fn model_facts() {
        assert_eq!(Model::Hs100Klap.wire(), Wire::Klap);
        assert_eq!(Model::Hs100Klap.klap_version(), KlapVersion::V1);
        assert!(!Model::Hs100Klap.is_smart());
        assert_eq!(Model::P300.outlets(), 3);
        assert_eq!(Model::Ep40m.outlets(), 2);
        assert_eq!(Model::P110.klap_version(), KlapVersion::V2);
        assert_eq!(Model::Kp125m.device_type(), "SMART.KASAPLUG");
        assert_eq!(
            Model::P100.default_credentials().username,
            "test@tp-link.net"
        );
        assert_eq!(Model::Hs100.wire(), Wire::Xor);
        assert_eq!(Model::P110Aes.wire(), Wire::Aes);
        assert_eq!(Model::Ep25.wire(), Wire::Aes);
        assert!(Model::Ep25.is_smart());
        assert_eq!(Model::Ep25.device_type(), "SMART.KASAPLUG");
        assert_eq!(Model::P110Aes.discovery_model(), "P110(EU)");
        // AES devices take the only default python-kasa's AES transport tries.
        assert_eq!(Model::Ep25.default_credentials(), default_for("TAPO"));
        assert_eq!("p110-aes".parse::<Model>(), Ok(Model::P110Aes));
    }
}
