//! Who may open a station connection, before authentication: per source
//! address, new connections per second and handshakes in progress; per
//! node, the number of connected stations (refused cleanly below the
//! open-file limit). Also the token bucket behind every rate limit here and
//! the per-station message rate. Each refusal is counted by limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use clap::Args;
use ipnet::IpNet;

use crate::auth::CertificatePolicy;
use crate::metrics::LIMIT_REFUSALS;

/// The connection limits, as flags.
#[derive(Debug, Clone, Args)]
pub struct LimitSettings {
    /// Most stations connected to this node at once; more are refused (503)
    /// before the upgrade. Default: the open-file limit minus 1,024 kept for
    /// the store, the REST API and handshakes in progress.
    #[arg(long, env = "VOLTGATE_MAX_STATIONS")]
    pub max_stations: Option<usize>,

    /// Most handshakes in progress from one source address; more get 429.
    #[arg(long, env = "VOLTGATE_MAX_HANDSHAKES_PER_IP", default_value_t = 64)]
    pub max_handshakes_per_ip: usize,

    /// New station connections per second from one source address (the
    /// burst is the same number); more get 429. 0: no limit.
    #[arg(
        long,
        env = "VOLTGATE_CONNECTIONS_PER_IP_PER_SEC",
        default_value_t = 50
    )]
    pub connections_per_ip_per_sec: u32,

    /// OCPP messages per second one station may send, sustained; a station
    /// above it (after a burst of 5 seconds' worth) is disconnected (1008).
    /// 0: no limit.
    #[arg(long, env = "VOLTGATE_OCPP_MESSAGES_PER_SEC", default_value_t = 20)]
    pub ocpp_messages_per_sec: u32,

    /// Most bytes sent to a station that it has not been seen to read (by
    /// answering a ping sent after them); past it the station is
    /// disconnected (1008). 0: no bound.
    #[arg(long, env = "VOLTGATE_MAX_UNREAD_BYTES", default_value_t = 1024 * 1024)]
    pub max_unread_bytes: u64,

    /// Longest wait at shutdown for REST requests in flight and station
    /// sockets to close, in seconds.
    #[arg(long, env = "VOLTGATE_SHUTDOWN_DRAIN_SECS", default_value_t = 10)]
    pub shutdown_drain_secs: u64,
}

impl LimitSettings {
    /// The defaults, with room for `max_stations` stations.
    pub fn with_max_stations(max_stations: usize) -> Self {
        LimitSettings {
            max_stations: Some(max_stations),
            max_handshakes_per_ip: 64,
            connections_per_ip_per_sec: 50,
            ocpp_messages_per_sec: 20,
            max_unread_bytes: 1024 * 1024,
            shutdown_drain_secs: 10,
        }
    }
}

/// File descriptors kept free of stations (store, REST, handshakes).
pub const RESERVED_FILES: usize = 1_024;

/// A limit a connection ran into (metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Too many new connections per second from the address.
    ConnectionRate,
    /// Too many handshakes in progress from the address.
    Handshakes,
    /// The node holds as many stations as it may.
    Stations,
    /// The station sent messages faster than allowed.
    MessageRate,
    /// The station does not read what it is sent.
    Unread,
}

impl Limit {
    /// Label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            Limit::ConnectionRate => "connections_per_ip",
            Limit::Handshakes => "handshakes_per_ip",
            Limit::Stations => "max_stations",
            Limit::MessageRate => "ocpp_messages_per_station",
            Limit::Unread => "unread_bytes_per_station",
        }
    }

    /// Counts a refusal by this limit.
    pub fn count(self) {
        metrics::counter!(LIMIT_REFUSALS, "limit" => self.label()).increment(1);
    }
}

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    refilled: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            refilled: now,
        }
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// True when the bucket has refilled completely (nothing to remember).
    fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens + elapsed * self.rate >= self.burst
    }
}

/// One source address's state.
struct PerAddress {
    handshakes: usize,
    connections: Option<TokenBucket>,
}

/// Addresses remembered before idle ones are forgotten.
const ADDRESSES_KEPT: usize = 10_000;
/// Locks over the per-station message budgets (stations hash onto them).
const BUDGET_SHARDS: usize = 16;
/// Stations remembered per budget shard before those with a full budget are forgotten.
const BUDGETS_KEPT_PER_SHARD: usize = 8_192;

/// The per-station message budgets, sharded by station id.
type Budgets = Arc<Vec<Mutex<HashMap<String, TokenBucket>>>>;

/// The key of an address for the per-address limits: IPv4 as is, IPv6 by
/// its /64 (one host holds a whole /64; keying by address would let it
/// walk past every limit).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
    }
}

/// The admission state of the OCPP listeners.
pub struct Gate {
    /// Proxies trusted to assert TLS and client certificates.
    pub trusted_proxies: Vec<IpNet>,
    /// What station client certificates must say.
    pub certificate_policy: CertificatePolicy,
    max_stations: usize,
    stations: Arc<AtomicUsize>,
    max_handshakes_per_ip: usize,
    connections_per_ip_per_sec: u32,
    addresses: Arc<Mutex<HashMap<IpAddr, PerAddress>>>,
    messages_per_sec: u32,
    budgets: Budgets,
    closing: AtomicBool,
}

impl Gate {
    /// The gate for these limits.
    pub fn new(
        trusted_proxies: Vec<IpNet>,
        certificate_policy: CertificatePolicy,
        limits: &LimitSettings,
        max_stations: usize,
    ) -> Self {
        Gate {
            trusted_proxies,
            certificate_policy,
            max_stations,
            stations: Arc::new(AtomicUsize::new(0)),
            max_handshakes_per_ip: limits.max_handshakes_per_ip.max(1),
            connections_per_ip_per_sec: limits.connections_per_ip_per_sec,
            addresses: Arc::new(Mutex::new(HashMap::new())),
            messages_per_sec: limits.ocpp_messages_per_sec,
            budgets: Arc::new((0..BUDGET_SHARDS).map(|_| Mutex::default()).collect()),
            closing: AtomicBool::new(false),
        }
    }

    /// From now on, refuse new stations (the node is shutting down).
    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
    }

    /// True once the node is shutting down.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// The message budget of station `id` (None: no limit). It is kept per
    /// station id, not per connection, so reconnecting does not refill it.
    pub fn message_budget(&self, id: &str) -> Option<MessageBudget> {
        if self.messages_per_sec == 0 {
            return None;
        }
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(id, &mut hasher);
        let shard = (std::hash::Hasher::finish(&hasher) % BUDGET_SHARDS as u64) as usize;
        Some(MessageBudget {
            station: id.to_owned(),
            shard,
            rate: f64::from(self.messages_per_sec),
            budgets: self.budgets.clone(),
        })
    }

    /// Lets a handshake from `ip` begin, or says which limit it hit. The
    /// guard ends the handshake when dropped.
    pub fn enter(&self, ip: IpAddr, now: Instant) -> Result<Handshake, Limit> {
        let ip = address_key(ip);
        let mut addresses = self.addresses.lock().unwrap_or_else(|e| e.into_inner());
        if addresses.len() >= ADDRESSES_KEPT {
            addresses.retain(|_, a| {
                a.handshakes > 0 || a.connections.as_ref().is_some_and(|b| !b.is_full(now))
            });
        }
        let rate = f64::from(self.connections_per_ip_per_sec);
        let address = addresses.entry(ip).or_insert_with(|| PerAddress {
            handshakes: 0,
            connections: (rate > 0.0).then(|| TokenBucket::new(rate, rate, now)),
        });
        if address.handshakes >= self.max_handshakes_per_ip {
            return Err(Limit::Handshakes);
        }
        if let Some(bucket) = &mut address.connections {
            if !bucket.take(now) {
                return Err(Limit::ConnectionRate);
            }
        }
        address.handshakes += 1;
        Ok(Handshake {
            ip,
            addresses: self.addresses.clone(),
        })
    }

    /// A place for one more connected station, or `Stations` at the cap.
    /// The slot is given back when dropped (with its connection).
    pub fn station_slot(&self) -> Result<StationSlot, Limit> {
        let taken = self.stations.fetch_add(1, Ordering::AcqRel);
        if taken >= self.max_stations {
            self.stations.fetch_sub(1, Ordering::AcqRel);
            return Err(Limit::Stations);
        }
        Ok(StationSlot {
            stations: self.stations.clone(),
        })
    }

    /// Stations connected (or being admitted) now.
    pub fn stations(&self) -> usize {
        self.stations.load(Ordering::Acquire)
    }
}

/// One station's message budget: `rate` a second sustained, five seconds'
/// worth at once, shared by all its connections.
pub struct MessageBudget {
    station: String,
    shard: usize,
    rate: f64,
    budgets: Budgets,
}

impl MessageBudget {
    /// Spends one message (or frame); false when the station is over budget.
    pub fn take(&self, now: Instant) -> bool {
        let mut shard = self.budgets[self.shard]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if shard.len() >= BUDGETS_KEPT_PER_SHARD && !shard.contains_key(&self.station) {
            shard.retain(|_, bucket| !bucket.is_full(now));
        }
        shard
            .entry(self.station.clone())
            .or_insert_with(|| TokenBucket::new(self.rate, self.rate * 5.0, now))
            .take(now)
    }
}

/// A handshake in progress; ends when dropped.
pub struct Handshake {
    ip: IpAddr,
    addresses: Arc<Mutex<HashMap<IpAddr, PerAddress>>>,
}

impl Drop for Handshake {
    fn drop(&mut self) {
        let mut addresses = self.addresses.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(address) = addresses.get_mut(&self.ip) {
            address.handshakes = address.handshakes.saturating_sub(1);
        }
    }
}

/// One connected station's place under the node's cap.
pub struct StationSlot {
    stations: Arc<AtomicUsize>,
}

impl Drop for StationSlot {
    fn drop(&mut self) {
        self.stations.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn gate(per_ip_per_sec: u32, handshakes: usize, stations: usize) -> Gate {
        let limits = LimitSettings {
            connections_per_ip_per_sec: per_ip_per_sec,
            max_handshakes_per_ip: handshakes,
            ..LimitSettings::with_max_stations(stations)
        };
        Gate::new(Vec::new(), CertificatePolicy::default(), &limits, stations)
    }

    #[test]
    fn buckets_refill_at_their_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2.0, 2.0, start);
        assert!(bucket.take(start) && bucket.take(start));
        assert!(!bucket.take(start));
        assert!(bucket.take(start + Duration::from_millis(500)));
        assert!(!bucket.take(start + Duration::from_millis(600)));
    }

    #[test]
    fn addresses_are_limited_apart() {
        let now = Instant::now();
        let gate = gate(2, 100, 100);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let _first = gate.enter(a, now).unwrap();
        let _second = gate.enter(a, now).unwrap();
        assert_eq!(gate.enter(a, now).err(), Some(Limit::ConnectionRate));
        assert!(gate.enter(b, now).is_ok(), "another address is not slowed");
    }

    #[test]
    fn handshakes_in_progress_are_bounded_and_released() {
        let now = Instant::now();
        let gate = gate(0, 2, 100);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let first = gate.enter(ip, now).unwrap();
        let _second = gate.enter(ip, now).unwrap();
        assert_eq!(gate.enter(ip, now).err(), Some(Limit::Handshakes));
        drop(first);
        assert!(gate.enter(ip, now).is_ok());
    }

    #[test]
    fn a_station_budget_survives_its_reconnects() {
        let now = Instant::now();
        let limits = LimitSettings {
            ocpp_messages_per_sec: 1,
            ..LimitSettings::with_max_stations(10)
        };
        let gate = Gate::new(Vec::new(), CertificatePolicy::default(), &limits, 10);
        let first = gate.message_budget("CS1").unwrap();
        for _ in 0..5 {
            assert!(first.take(now), "a burst of five seconds' worth");
        }
        assert!(!first.take(now));
        let reconnected = gate.message_budget("CS1").unwrap();
        assert!(
            !reconnected.take(now),
            "a new connection does not refill it"
        );
        assert!(
            gate.message_budget("CS2").unwrap().take(now),
            "others keep theirs"
        );
        let off = LimitSettings {
            ocpp_messages_per_sec: 0,
            ..LimitSettings::with_max_stations(10)
        };
        assert!(
            Gate::new(Vec::new(), CertificatePolicy::default(), &off, 10)
                .message_budget("CS1")
                .is_none()
        );
    }

    #[test]
    fn ipv6_hosts_are_limited_by_their_64() {
        let now = Instant::now();
        let gate = gate(1, 100, 100);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let _first = gate.enter(a, now).unwrap();
        assert_eq!(gate.enter(b, now).err(), Some(Limit::ConnectionRate));
        assert!(gate.enter("2001:db8:1:3::1".parse().unwrap(), now).is_ok());
    }

    #[test]
    fn the_station_cap_refuses_and_gives_back() {
        let gate = gate(0, 10, 2);
        let one = gate.station_slot().unwrap();
        let _two = gate.station_slot().unwrap();
        assert_eq!(gate.station_slot().err(), Some(Limit::Stations));
        assert_eq!(gate.stations(), 2);
        drop(one);
        assert!(gate.station_slot().is_ok());
    }
}
