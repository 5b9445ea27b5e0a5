//! One file per family of OSS operations, each an `impl OssClient` block with one method per
//! operation: it builds the request (method, resource, query, headers, body) and reads the
//! answer into a public result type. Sending, signing and retrying live in `client.rs`.

pub mod bucket;
pub mod clock;
pub mod copy;
pub mod list;
pub mod multipart;
pub mod object;
pub mod restore;
pub mod tagging;
pub mod website;
