//! Credentials must never reach logs, errors, reports or state files (architecture invariant 7).
//! [`Secret`] holds such a value; its `Debug` and `Display` print a fixed placeholder, and the
//! value is reachable only through [`Secret::expose`], which makes every use easy to audit.

use std::fmt;

/// A sensitive string (an access key secret, a security token).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a sensitive value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value itself. Call it only where the value is used (signing), never to print.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"***\")")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("very-secret-value");
        assert!(!format!("{s:?}").contains("very-secret"));
        assert!(!format!("{s}").contains("very-secret"));
        assert_eq!(s.expose(), "very-secret-value");
    }
}

/// Why a secret (or credentials kept in one, or in the environment) could not be read.
/// `retryable` when asking again later can help (the store was throttling, unavailable or
/// unreachable): the task is delivered again rather than the run failing on a configuration
/// error that is not there. The message names where the value was looked for, never the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SecretError {
    /// What could not be read and where it was looked for, never the value.
    pub message: String,
    /// Whether asking again later may help.
    pub retryable: bool,
}

impl SecretError {
    /// An error asking again will not fix (no such secret, no permission, no text value).
    pub fn permanent(message: impl Into<String>) -> Self {
        SecretError {
            message: message.into(),
            retryable: false,
        }
    }
}
