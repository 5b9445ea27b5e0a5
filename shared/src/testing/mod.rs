//! Conformance suites for the ports (docs/architecture.md §1), behind the `testing` feature.
//!
//! Each suite states, as code, what the pipeline relies on from every adapter of one port, and
//! panics with the broken rule's message. ferry's own tests run each against every adapter it
//! ships (see the table in docs/architecture.md §1); an adapter someone adds runs the same
//! suite. Every suite is bounded in time and needs only the adapter and an empty place to work.

pub mod destination;
pub mod queue;
pub mod source;
pub mod state;
