//! The emulator's integration tests, as one test binary (one link instead of fourteen): each
//! module is one part of the protocol — authentication, per-instance clocks, buckets, objects,
//! object tagging, listing, multipart, copy and restore, the S3 dialect, fault injection, the
//! disk store — or one peer speaking to it (aws-sdk-s3, rclone, the binary itself). Helpers
//! live in [`common`]. Run one with `cargo test -p oss-emulator --test it MODULE::`.

mod common;

mod admin_faults;
mod auth;
mod aws_sdk;
mod binary;
mod buckets;
mod clock;
mod copy_restore;
mod disk;
mod listing;
mod multipart;
mod objects;
mod rclone;
mod s3;
mod seed;
mod tagging;
