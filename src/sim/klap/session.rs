//! What the simulated device's KLAP server keeps between requests: its
//! sessions ([`Session`]) in the table every HTTP server of the simulator
//! keys by session cookie ([`Sessions`], which the AES and TPAP servers
//! use for theirs too), and the random bytes seeds and ids are drawn from.
//!
//! It holds data only, so the plug's state (`sim/state.rs`) can own it
//! while the server (`klap/mod.rs`) uses that state.

use std::time::Instant;

use crate::kasa::transport::klap::{KlapCipher, SEED_LEN};

/// Sessions kept at once; the oldest goes first (a real device keeps few).
const MAX_SESSIONS: usize = 16;

/// One KLAP session, from `handshake1` on.
pub(crate) struct Session {
    pub(super) local: [u8; SEED_LEN],
    pub(super) remote: [u8; SEED_LEN],
    /// Whether the `badauth` fault was in force at handshake1.
    pub(super) bad_auth: bool,
    /// Set by a good handshake2.
    pub(super) cipher: Option<KlapCipher>,
    pub(super) requests: u32,
}

/// The sessions of one simulated device over KLAP, AES or TPAP (`S`), by
/// the id in their session cookie (or token).
pub(crate) struct Sessions<S> {
    list: Vec<(String, S)>,
}

impl<S> Default for Sessions<S> {
    fn default() -> Self {
        Sessions { list: Vec::new() }
    }
}

impl<S> Sessions<S> {
    /// Opens a session, closing the oldest when `MAX_SESSIONS` are open.
    pub(crate) fn open(&mut self, id: String, session: S) {
        if self.list.len() >= MAX_SESSIONS {
            self.list.remove(0);
        }
        self.list.push((id, session));
    }

    pub(crate) fn find(&mut self, id: Option<&str>) -> Option<&mut S> {
        let id = id?;
        self.list.iter_mut().find(|(i, _)| i == id).map(|(_, s)| s)
    }

    pub(crate) fn remove(&mut self, id: Option<&str>) {
        self.list.retain(|(i, _)| Some(i.as_str()) != id);
    }
}

/// 16 fresh random bytes (seeds, session ids, tokens, salts).
pub(crate) fn random16() -> [u8; 16] {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // Tests only need the seeds to differ between sessions.
        let t = Instant::now().elapsed().as_nanos() ^ std::process::id() as u128;
        b = t.to_le_bytes();
    }
    b
}
