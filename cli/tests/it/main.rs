//! The `ferry` binary's tests, one binary with a module per concern (each test binary links
//! the AWS SDK, so CI pays for every one).

mod credentials;
mod plan;
mod progress;
mod run_restart;
