//! The pipeline: planner → work queue → transfer → results queue → verifier (architecture §1).
//!
//! The three roles are plain async functions over the four ports — [`Source`](crate::source),
//! the OSS [`Destination`](crate::transfer::Destination), [`Queue`] and [`StateStore`] — so the
//! Lambda functions and the standalone runner are thin shells around the same code:
//!
//! * [`planner`] — creates a run (job, manifest, progress) and plans it: discovers and splits
//!   the source into key ranges and issues one [`ShardTask`] per range;
//! * [`transfer`] — takes one task, lists its range up to a budget, hands the rest back as a
//!   continuation *before* copying, copies, and sends one [`ChunkResult`];
//! * [`verify`] — the verifier role and what it keeps: checks each copied object at the
//!   destination on its own, records each result exactly once, keeps
//!   [`progress`](verify::progress), detects completion and writes the
//!   [`report`](verify::report) (and its table/CSV forms, [`verify::report_text`]).
//!
//! [`standalone`] runs all three in one process. [`message`] and [`layout`] are the wire and
//! storage formats; [`crate::deploy::connect`] turns a job spec into live clients; [`cleanup`] aborts the
//! multipart uploads a finished run leaves behind.

pub mod cas;
pub mod cleanup;
pub mod follow;
pub mod giant;
pub mod intake;
pub mod layout;
pub mod message;
pub mod planner;
pub mod runs;
pub mod runtime;
pub mod standalone;
pub mod status;
pub mod transfer;
pub mod verify;

use std::sync::Arc;

use crate::queue::Queue;
use crate::state::StateStore;

pub use message::{ChunkResult, ObjectRecord, ResultMessage, ShardTask, Tally, Work};

/// The queues and the state store a deployment uses.
#[derive(Clone)]
pub struct Ports {
    /// Where runs, results, progress and reports are kept.
    pub state: Arc<dyn StateStore>,
    /// Shard tasks, read by transfer workers.
    pub work: Arc<dyn Queue>,
    /// Chunk results, read by the verifier.
    pub results: Arc<dyn Queue>,
}

/// Why a role could not finish a message.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct RoleError {
    /// Trying again may succeed (a queue, store or source call failed transiently). When false,
    /// the message can never succeed and is recorded as failed instead of retried forever.
    pub retryable: bool,
    /// What went wrong, for logs and the failed task's record.
    pub message: String,
}

impl RoleError {
    /// A failure worth retrying (the message goes back to its queue).
    pub fn retry(message: impl Into<String>) -> Self {
        RoleError {
            retryable: true,
            message: message.into(),
        }
    }

    /// A failure that cannot succeed on retry (a bad job, an unreadable message).
    pub fn config(message: impl Into<String>) -> Self {
        RoleError {
            retryable: false,
            message: message.into(),
        }
    }
}

impl From<crate::state::StateError> for RoleError {
    fn from(e: crate::state::StateError) -> Self {
        RoleError {
            retryable: e.kind == crate::state::StateErrorKind::Transient,
            message: e.to_string(),
        }
    }
}

impl From<crate::queue::QueueError> for RoleError {
    fn from(e: crate::queue::QueueError) -> Self {
        RoleError {
            retryable: e.kind == crate::queue::QueueErrorKind::Transient,
            message: e.to_string(),
        }
    }
}

/// A secret that could not be read: asked again when the store may answer later, otherwise a
/// configuration error naming where the value was looked for.
impl From<crate::secret::SecretError> for RoleError {
    fn from(e: crate::secret::SecretError) -> Self {
        match e.retryable {
            true => RoleError::retry(e.message),
            false => RoleError::config(e.message),
        }
    }
}

impl From<message::MessageError> for RoleError {
    fn from(e: message::MessageError) -> Self {
        RoleError::config(e.to_string())
    }
}

/// When a message of a batch is no longer started: the batch shares one invocation deadline,
/// and a message reached with less than `reserve` left is handed back unstarted (the transfer
/// and the verifier both). A deadline counts only when it was usable when the batch began
/// (further away than the reserve): an invocation without one handles every message, since
/// handing them all back would loop for ever.
pub(crate) struct BatchClock {
    deadline: Option<std::time::Instant>,
    reserve: std::time::Duration,
}

impl BatchClock {
    pub(crate) fn new(deadline: Option<std::time::Instant>, reserve: std::time::Duration) -> Self {
        let now = std::time::Instant::now();
        BatchClock {
            deadline: deadline.filter(|d| *d > now + reserve),
            reserve,
        }
    }

    /// Whether the next message must be handed back instead of started.
    pub(crate) fn out_of_time(&self) -> bool {
        let now = std::time::Instant::now();
        self.deadline.is_some_and(|d| d <= now + self.reserve)
    }
}
