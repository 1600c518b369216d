//! How much a station has been sent that it has not been seen to read.
//!
//! A pong proves the station read everything voltgate sent before the ping
//! it answers (frames arrive in order), so the bytes sent since the last
//! answered ping are unread as far as voltgate knows. When they pass half
//! the bound, a probe ping goes out (a reading station answers within a
//! round trip); past the whole bound the station is not reading and is
//! disconnected, so a silent reader cannot make its outbound buffer grow
//! without limit. Pure: the actor feeds it and acts on the answers.

use std::collections::VecDeque;

/// Pings remembered while unanswered (older ones are forgotten).
const MOST_OUTSTANDING_PINGS: usize = 16;

/// The outbound ledger of one connection.
#[derive(Debug)]
pub struct OutboundLedger {
    /// Bytes sent so far.
    sent: u64,
    /// Bytes the station has shown it read (sent before an answered ping).
    read: u64,
    /// Unanswered pings: (id, bytes sent when it went out), oldest first.
    pings: VecDeque<(u64, u64)>,
    next_ping: u64,
    /// Most unread bytes allowed.
    bound: u64,
}

/// What the actor should do after a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing.
    Fine,
    /// Send a probe ping (`OutboundLedger::ping`) to learn what was read.
    Probe,
    /// The station is not reading: disconnect it.
    NotReading,
}

impl OutboundLedger {
    /// A ledger allowing `bound` unread bytes (0: no bound).
    pub fn new(bound: u64) -> Self {
        OutboundLedger {
            sent: 0,
            read: 0,
            pings: VecDeque::new(),
            next_ping: 1,
            bound,
        }
    }

    /// Records `bytes` sent and says what to do.
    pub fn sent(&mut self, bytes: usize) -> Verdict {
        self.sent += bytes as u64;
        if self.bound == 0 {
            return Verdict::Fine;
        }
        let unread = self.unread();
        if unread > self.bound {
            Verdict::NotReading
        } else if unread > self.bound / 2 && !self.probing() {
            Verdict::Probe
        } else {
            Verdict::Fine
        }
    }

    /// A ping's payload, remembered until its pong.
    pub fn ping(&mut self) -> [u8; 8] {
        let id = self.next_ping;
        self.next_ping += 1;
        if self.pings.len() == MOST_OUTSTANDING_PINGS {
            self.pings.pop_front();
        }
        self.pings.push_back((id, self.sent));
        id.to_be_bytes()
    }

    /// A pong arrived. Its payload names the ping it answers; a station that
    /// answers with another payload is taken to answer its oldest ping.
    pub fn pong(&mut self, payload: &[u8]) {
        let named = <[u8; 8]>::try_from(payload)
            .ok()
            .map(u64::from_be_bytes)
            .and_then(|id| self.pings.iter().position(|(p, _)| *p == id));
        let answered = match named {
            Some(index) => index,
            None if self.pings.is_empty() => return,
            None => 0,
        };
        // Everything up to the answered ping was read.
        for _ in 0..=answered {
            if let Some((_, sent_then)) = self.pings.pop_front() {
                self.read = self.read.max(sent_then);
            }
        }
    }

    /// Bytes sent and not yet shown read.
    pub fn unread(&self) -> u64 {
        self.sent - self.read
    }

    /// True while a ping sent after the last read mark is unanswered.
    fn probing(&self) -> bool {
        self.pings.back().is_some_and(|(_, at)| *at > self.read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_station_stays_under_the_bound() {
        let mut ledger = OutboundLedger::new(1_000);
        assert_eq!(ledger.sent(400), Verdict::Fine);
        assert_eq!(ledger.sent(200), Verdict::Probe, "past half: probe");
        let probe = ledger.ping();
        assert_eq!(ledger.sent(100), Verdict::Fine, "one probe at a time");
        ledger.pong(&probe);
        assert_eq!(ledger.unread(), 100, "what was sent after the probe");
        for _ in 0..100 {
            if ledger.sent(50) == Verdict::Probe {
                let ping = ledger.ping();
                ledger.pong(&ping);
            }
        }
        assert!(ledger.unread() <= 1_000);
    }

    #[test]
    fn a_silent_station_crosses_the_bound() {
        let mut ledger = OutboundLedger::new(1_000);
        assert_eq!(ledger.sent(600), Verdict::Probe);
        let _unanswered = ledger.ping();
        assert_eq!(ledger.sent(300), Verdict::Fine);
        assert_eq!(ledger.sent(200), Verdict::NotReading);
    }

    #[test]
    fn pongs_with_other_payloads_answer_the_oldest_ping() {
        let mut ledger = OutboundLedger::new(1_000);
        ledger.sent(100);
        let _first = ledger.ping();
        ledger.sent(100);
        let second = ledger.ping();
        ledger.sent(100);
        ledger.pong(b"");
        assert_eq!(ledger.unread(), 200, "the first ping was answered");
        ledger.pong(&second);
        assert_eq!(ledger.unread(), 100);
        ledger.pong(b"stray");
        assert_eq!(ledger.unread(), 100, "a pong for nothing changes nothing");
    }

    #[test]
    fn no_bound_means_no_verdicts() {
        let mut ledger = OutboundLedger::new(0);
        assert_eq!(ledger.sent(usize::MAX / 2), Verdict::Fine);
    }
}
