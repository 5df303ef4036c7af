//! Per-address totals of a target driven at several addresses (`[target]
//! urls`): what each address was sent, how its requests ended, how many
//! connections went to it and its latency.
//!
//! Takes the address index a connection was opened to (`addr` first, then
//! the further addresses, in the scenario's order), carried with the
//! connection, so that charging a request costs an index and no lookup.
//! A run with one address keeps nothing here: the list stays empty, and
//! every charge is one bounds check that finds nothing.

use hdrhistogram::Histogram;

use super::{Counts, add, new_histogram};
use crate::outcome::Outcome;

/// What one address of the target saw.
#[derive(Debug, Clone)]
pub struct AddressTotals {
    /// Requests written to connections to this address.
    pub sent: u64,
    /// Outcomes of the arrivals whose last attempt went to this address
    /// (a failed connect: the address it tried).
    pub counts: Counts,
    /// Connections opened to this address (TCP connects that succeeded).
    pub connections_opened: u64,
    /// Latency from the intended send time of the requests sent to this
    /// address (all classes but `not_sent` and `connect_error`, as the
    /// run's own), us.
    pub latency_us: Histogram<u64>,
}

impl AddressTotals {
    /// Empty totals of one address.
    pub fn new() -> Self {
        AddressTotals {
            sent: 0,
            counts: Counts::default(),
            connections_opened: 0,
            latency_us: new_histogram(),
        }
    }

    /// Adds another shard's totals of the same address.
    pub fn merge(&mut self, other: &AddressTotals) {
        self.sent += other.sent;
        self.counts.merge(&other.counts);
        self.connections_opened += other.connections_opened;
        add(&mut self.latency_us, &other.latency_us);
    }

    pub(super) fn outcome(&mut self, outcome: Outcome, latency_us: u64, sent: bool) {
        self.counts.add(outcome);
        if sent {
            self.latency_us.saturating_record(latency_us);
        }
    }
}

impl Default for AddressTotals {
    fn default() -> Self {
        Self::new()
    }
}

/// The totals of every address, indexed as the driver's address list;
/// empty with a single address.
pub type Addresses = Vec<AddressTotals>;

/// Adds `other`'s per-address totals to `into`; an empty side (a fresh
/// total, or a single address) takes the other's.
pub(super) fn merge(into: &mut Addresses, other: &Addresses) {
    if into.is_empty() {
        into.clone_from(other);
        return;
    }
    for (a, b) in into.iter_mut().zip(other) {
        a.merge(b);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Connected, Recorder, Totals};
    use crate::outcome::{Class, Outcome};

    const MS: u64 = 1_000_000;

    #[test]
    fn each_request_is_charged_to_its_address_and_none_to_a_single_one() {
        let mut r = Recorder::new(0, 1000 * MS, 0).with_addresses(2);
        r.connected(
            MS,
            &Connected {
                connect_ns: 1_000,
                tls: None,
                addr: 1,
            },
        );
        r.dispatched(MS, 0);
        r.sent(MS, 0, 1);
        r.outcome_at(2 * MS, 0, Some(1), Outcome::Response(200), MS, Some(MS));
        r.dispatched(3 * MS, 0);
        r.outcome_at(3 * MS, 0, Some(0), Outcome::ConnectError, 0, None);
        r.dispatched(4 * MS, 0);
        r.outcome_at(4 * MS, 0, None, Outcome::NotSent, 0, None);
        let (t, _) = r.finish(5 * MS, 0);
        assert_eq!(t.addresses.len(), 2);
        assert_eq!(t.addresses[1].sent, 1);
        assert_eq!(t.addresses[1].connections_opened, 1);
        assert_eq!(t.addresses[1].counts.class(Class::Success), 1);
        assert_eq!(t.addresses[1].latency_us.len(), 1);
        assert_eq!(t.addresses[0].counts.class(Class::ConnectError), 1);
        assert_eq!(t.addresses[0].latency_us.len(), 0, "never sent");
        let charged: u64 = t.addresses.iter().map(|a| a.counts.total()).sum();
        assert_eq!(charged, 2, "the not_sent went to no address");
        assert_eq!(t.counts.total(), 3);

        let mut one = Recorder::new(0, 1000 * MS, 0).with_addresses(1);
        one.dispatched(MS, 0);
        one.sent(MS, 0, 0);
        one.outcome_at(2 * MS, 0, Some(0), Outcome::Response(200), MS, Some(MS));
        let (t, _) = one.finish(3 * MS, 0);
        assert!(
            t.addresses.is_empty(),
            "one address keeps no per-address totals"
        );
    }

    #[test]
    fn shards_merge_address_by_address() {
        let shard = |addr: usize| {
            let mut r = Recorder::new(0, 1000 * MS, 0).with_addresses(2);
            r.dispatched(MS, 0);
            r.sent(MS, 0, addr);
            r.outcome_at(2 * MS, 0, Some(addr), Outcome::Response(204), MS, Some(MS));
            r.finish(3 * MS, 0).0
        };
        let mut all = Totals::new(0);
        for addr in [0, 1, 1] {
            all.merge(&shard(addr));
        }
        let sent: Vec<u64> = all.addresses.iter().map(|a| a.sent).collect();
        assert_eq!(sent, [1, 2]);
        assert_eq!(all.addresses[1].latency_us.len(), 2);
    }
}
