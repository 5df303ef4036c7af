//! What became of one arrival: the leaf type every other module shares.
//!
//! Every scheduled arrival ends in exactly one [`Outcome`]. A failed request is
//! an outcome, never an error: the driver records it and goes on.

/// The fate of one scheduled arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A complete response with this exact status code.
    Response(u16),
    /// The client's deadline passed first; the request was dropped and its
    /// connection closed, so the server sees a real client abort.
    ClientTimeout,
    /// No connection could be made (refused, unreachable, handshake failed).
    ConnectError,
    /// The connection failed mid-exchange: reset, closed early, not HTTP.
    IoError,
    /// Never sent: the connection cap was reached when it was due.
    NotSent,
}

/// The classes outcomes are counted and histogrammed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Any 2xx response.
    Success,
    /// 429 Too Many Requests.
    TooMany,
    /// 503 Service Unavailable.
    Unavailable,
    /// 504 Gateway Timeout.
    GatewayTimeout,
    /// Any other 1xx/3xx/4xx/5xx response.
    OtherStatus,
    /// See [`Outcome::ClientTimeout`].
    ClientTimeout,
    /// See [`Outcome::ConnectError`].
    ConnectError,
    /// See [`Outcome::IoError`].
    IoError,
    /// See [`Outcome::NotSent`].
    NotSent,
}

impl Class {
    /// Every class, in the order reports show them.
    pub const ALL: [Class; 9] = [
        Class::Success,
        Class::TooMany,
        Class::Unavailable,
        Class::GatewayTimeout,
        Class::OtherStatus,
        Class::ClientTimeout,
        Class::ConnectError,
        Class::IoError,
        Class::NotSent,
    ];

    /// The name used in CSV columns and JSON keys.
    pub fn name(self) -> &'static str {
        match self {
            Class::Success => "2xx",
            Class::TooMany => "429",
            Class::Unavailable => "503",
            Class::GatewayTimeout => "504",
            Class::OtherStatus => "other_status",
            Class::ClientTimeout => "client_timeout",
            Class::ConnectError => "connect_error",
            Class::IoError => "io_error",
            Class::NotSent => "not_sent",
        }
    }

    /// True for the classes of complete responses (any status).
    pub fn is_response(self) -> bool {
        matches!(
            self,
            Class::Success
                | Class::TooMany
                | Class::Unavailable
                | Class::GatewayTimeout
                | Class::OtherStatus
        )
    }

    /// Position in [`Class::ALL`], for array-indexed counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl Outcome {
    /// The class this outcome is counted under.
    pub fn class(self) -> Class {
        match self {
            Outcome::Response(s) if (200..300).contains(&s) => Class::Success,
            Outcome::Response(429) => Class::TooMany,
            Outcome::Response(503) => Class::Unavailable,
            Outcome::Response(504) => Class::GatewayTimeout,
            Outcome::Response(_) => Class::OtherStatus,
            Outcome::ClientTimeout => Class::ClientTimeout,
            Outcome::ConnectError => Class::ConnectError,
            Outcome::IoError => Class::IoError,
            Outcome::NotSent => Class::NotSent,
        }
    }

    /// True when the request reached the wire (every outcome but `NotSent`
    /// and `ConnectError`).
    pub fn was_sent(self) -> bool {
        !matches!(self, Outcome::NotSent | Outcome::ConnectError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_status_codes() {
        assert_eq!(Outcome::Response(204).class(), Class::Success);
        assert_eq!(Outcome::Response(429).class(), Class::TooMany);
        assert_eq!(Outcome::Response(503).class(), Class::Unavailable);
        assert_eq!(Outcome::Response(504).class(), Class::GatewayTimeout);
        assert_eq!(Outcome::Response(404).class(), Class::OtherStatus);
        assert_eq!(Outcome::Response(500).class(), Class::OtherStatus);
        for (i, c) in Class::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
    }
}
