//! # oss-emulator — an Alibaba Cloud OSS protocol server for tests, the demo and benchmarks
//!
//! A real HTTP server (hyper, over TCP) that speaks the OSS API closely enough for the official
//! OSS SDKs, ferry's own client, `aws-sdk-s3` and rclone: signatures are checked, errors look
//! like OSS errors, bodies stream, checksums (MD5, CRC-64/XZ) are kept for every object and
//! part. It follows the OSS protocol as Alibaba Cloud's OSS API documentation and the official
//! SDKs define it: signatures (V1, V4), the object, listing, multipart, copy and restore APIs,
//! CRC-64, errors, limits, endpoints and storage classes.
//!
//! ## Embedding
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use oss_emulator::{Emulator, FaultRule};
//! use std::time::Duration;
//!
//! let emu = Emulator::builder()
//!     .credentials("AK", "SK")
//!     .region("cn-hangzhou")          // signatures must use this region
//!     .data_dir(None)                 // Some(dir) keeps data on disk across restarts
//!     .restore_delay(Duration::from_millis(200))
//!     .clock_offset(chrono::TimeDelta::zero()) // the server's clock minus real time
//!     .fault_seed(42)
//!     .start()
//!     .await?;
//! emu.create_bucket("bucket-a")?;
//! emu.put_object("bucket-a", "k", b"hello".to_vec()).await?;
//! let id = emu.add_fault(FaultRule::error("PutObject", 503).rate(0.1).count(3))?;
//! println!("{} {}", emu.endpoint(), emu.addr());      // http://127.0.0.1:PORT
//! assert_eq!(emu.counters().operation("PutObject"), 0);
//! emu.remove_fault(id);
//! emu.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! [`Emulator`] also has `object_info`, `object_bytes`, `keys`, `put_object_with`
//! ([`PutOptions`]: storage class, content type, metadata), `seed_objects` (bulk in-memory
//! insertion for large test buckets, no HTTP), `delete_bucket` (with contents),
//! `complete_restore`, `faults`, `clear_faults`, `set_fault_seed`, `reset_counters`,
//! `set_restore_delay`, `set_clock_offset`, `clock_offset`, `now`, `region`, `access_key_id`,
//! `bucket_names`.
//!
//! ## Clock
//!
//! Each instance has its own clock, real time plus an offset
//! ([`EmulatorBuilder::clock_offset`], [`Emulator::set_clock_offset`], `PUT /-/admin/clock`,
//! `--clock-offset-ms`; default zero), to test clients whose local clock is wrong: with an
//! offset of −20 minutes a client signing with its own clock is 20 minutes fast for this server.
//! The instance's time is used for everything time-based: the `Date` response header, the
//! request-time check (`RequestTimeTooSkewed`) and presigned-URL expiry, Last-Modified of
//! objects written (PutObject, CopyObject, CompleteMultipartUpload, `put_object`,
//! `seed_objects`), multipart Initiated and part LastModified times, bucket CreationDate, and
//! restore progress. Emulators in one process do not share it.
//!
//! ## Binary
//!
//! `oss-emulator --listen 127.0.0.1:0 --access-key-id AK --access-key-secret SK
//! [--region cn-hangzhou] [--data-dir DIR] [--restore-delay-ms 1000] [--fault SPEC]…
//! [--fault-seed N] [--domain NAME]… [--bucket NAME]… [--clock-offset-ms N]` prints `listening on http://ADDR:PORT`
//! as its first stdout line and serves until SIGTERM/SIGINT. `--fault` takes
//! `op=PutObject,status=503,rate=0.05[,count=N][,kind=error|latency|reset|truncate]`
//! `[,latency-ms=N][,after-bytes=N][,qos-delay-ms=N][,code=C][,bucket=B][,key-prefix=P][,phase=before|after]`.
//!
//! ## Addressing and authentication
//!
//! Virtual-hosted (`Host: bucket.127.0.0.1:PORT`, `bucket.localhost:PORT`, `bucket.<--domain>`)
//! and path style (`/bucket/key` when the Host is an IP, `localhost` or a configured domain).
//! Accepted signatures: OSS V4 header and presigned URL, OSS V1 header and presigned URL (both
//! verified with `ferry::oss::sign`), AWS SigV4 header and presigned URL (S3 dialect). The
//! AccessKey id and the scope's region must match (the AccessKey can be rotated while the server
//! runs: [`Emulator::rotate_credentials`] or `PUT /-/admin/credentials`); request times more than
//! 15 minutes off the instance's clock (see [Clock](#clock)) are 403 `RequestTimeTooSkewed`
//! ("The difference between the request time and the current time is too large.", with
//! `MaxAllowedSkewMilliseconds`, `RequestTime` and `ServerTime`); an STS token is accepted if non-empty and signed; anonymous requests
//! are `AccessDenied`. A wrong OSS V4 region is 400 `InvalidArgument` ("Invalid signing
//! region"); a wrong SigV4 region is 400 `AuthorizationHeaderMalformed`. `SignatureDoesNotMatch`
//! carries `StringToSign`, `SignatureProvided` (V4 also `CanonicalRequest`; V1 also
//! `StringToSignBytes`, `OSSAccessKeyId`).
//!
//! ## Operations
//!
//! OSS names (also used by counters and fault rules): ListBuckets, PutBucket, DeleteBucket,
//! HeadBucket, GetBucketInfo, GetBucketLocation, GetBucketVersioning (never versioned),
//! PutBucketWebsite, GetBucketWebsite,
//! DeleteBucketWebsite, ListObjects, ListObjectsV2, ListMultipartUploads,
//! DeleteMultipleObjects, PutObject, CopyObject, GetObject, HeadObject, DeleteObject,
//! InitiateMultipartUpload, UploadPart, UploadPartCopy, CompleteMultipartUpload,
//! AbortMultipartUpload, ListParts, RestoreObject, PutObjectTagging, GetObjectTagging,
//! DeleteObjectTagging; anything else is `Unknown` → 501 `NotImplemented`. A GetObject for a
//! missing key under a `Mirror` routing rule of the bucket's website configuration is served by
//! back-to-origin, as OSS does ([`ops::mirror`]). Object tags follow
//! OSS's rules wherever they arrive (`x-oss-tagging` on PutObject, InitiateMultipartUpload and
//! CopyObject with `x-oss-tagging-directive: Replace`, or the `<Tagging>` body of
//! PutObjectTagging): at most 10, unique keys of 1–128 characters, values of at most 256,
//! letters, digits, spaces and `+ - = . _ : /`; HEAD and GET show their number in
//! `x-oss-tagging-count`. PutObjectTagging replaces the whole set without touching
//! Last-Modified; refused tags are `InvalidTag` (more than 10: `BadRequest`) there and
//! `InvalidArgument` in the header (see [`ops::tagging`]). Objects have no versions, so
//! `versionId` is ignored. Requests signed with SigV4 get the S3 dialect of the same operations
//! (CreateBucket = PutBucket, CreateMultipartUpload = InitiateMultipartUpload, DeleteObjects =
//! DeleteMultipleObjects): S3-namespaced XML, `x-amz-meta-*` (same stored metadata as
//! `x-oss-meta-*`), S3 storage-class names (STANDARD↔Standard, STANDARD_IA↔IA,
//! GLACIER↔Archive, DEEP_ARCHIVE↔ColdArchive), lower-case ETags, `aws-chunked` bodies decoded,
//! signed payload hashes checked. Both dialects share one store.
//!
//! Errors are OSS `<Error>` documents (Code, Message, RequestId, HostId, EC, RecommendDoc and
//! extras) with `x-oss-request-id` and `x-oss-ec` headers; HEAD errors have no body and carry
//! the document Base64-encoded in `x-oss-err`. S3 errors have Code, Message, RequestId,
//! Resource. Every response has `x-oss-request-id`.
//!
//! ## Admin API (unsigned JSON on the same port)
//!
//! Only path-style requests (Host without a bucket label) reach it; bucket names cannot start
//! with `-`, so it never shadows a bucket.
//!
//! | route | body | answer |
//! |---|---|---|
//! | `GET /-/admin/health` | | `{"status":"ok"}` |
//! | `GET /-/admin/counters` | | [`CounterSnapshot`]: `{"total":N,"by_operation":{"PutObject":N},"by_status":{"200":N,"reset":N},"by_operation_status":{"PutObject":{"503":N}},"faults_injected":{"PutObject":N},"by_object":[{"bucket":"b","key":"k","operation":"PutObject","count":N}]}` |
//! | `DELETE /-/admin/counters` | | 204, counters zeroed |
//! | `GET /-/admin/faults` | | `{"seed":N,"faults":[{"id":1,"rule":{…},"fired":N}]}` |
//! | `POST /-/admin/faults` | a [`FaultRule`] | 201 `{"id":N}` (400 `{"error":…}` if invalid) |
//! | `DELETE /-/admin/faults` | | 204, all rules removed |
//! | `DELETE /-/admin/faults/{id}` | | 204, or 404 |
//! | `PUT /-/admin/faults/seed` | `{"seed":N}` | 204, RNG restarted from N |
//! | `GET /-/admin/buckets` | | `{"buckets":["a","b"]}` |
//! | `PUT /-/admin/buckets/{name}` | optional `{"storage_class":"IA"}` | 201 `{"bucket":…,"created":true}` or 200 `…false` |
//! | `DELETE /-/admin/buckets/{name}` | | 204 (bucket and contents removed), 404 |
//! | `GET /-/admin/config` | | `{"region":…,"endpoint":…,"storage":"memory"\|"disk","restore_delay_ms":N,"clock_offset_ms":N}` |
//! | `PUT /-/admin/config` | `{"restore_delay_ms":N}` | 204 |
//! | `GET /-/admin/clock` | | `{"offset_ms":N,"now_ms":N,"now":"<RFC 1123>"}`: the instance's clock |
//! | `PUT /-/admin/clock` | `{"offset_ms":-1200000}` | 204, the instance's clock set to real time + offset (as [`Emulator::set_clock_offset`]); 400 without `offset_ms` |
//! | `PUT /-/admin/credentials` | `{"access_key_id":…,"access_key_secret":…}` | 204, the AccessKey rotated (as [`Emulator::rotate_credentials`]); 400 if either is empty |
//!
//! A fault rule in JSON: `{"op":"PutObject","kind":"error","status":503,"rate":0.5,"count":3}`;
//! fields `op` (name or `*`, default `*`), `kind` (`error`|`latency`|`reset`|`truncate`|`listing`;
//! may be omitted when `status` or `latency_ms` is given), `status`, `code`, `message`,
//! `qos_delay_ms` (adds `x-oss-qos-delay-time`), `latency_ms`, `after_bytes` (truncate),
//! `rate` (0–1, default 1), `count` (fire at most N times), `bucket`, `key_prefix`, `phase`
//! (`before` default, or `after`: run the operation, then lose the response), `listing`
//! (`"unsorted"`, `"ignore-start-after"` or `{"extra-key":"bad-%FF"}`: a ListObjects answer
//! that breaks the listing contract; see [`ListingQuirk`]). See [`faults`].
//!
//! ## Storage
//!
//! In memory by default (objects as lists of received chunks); with a data directory, data
//! files plus JSON sidecars (see `store::disk`). Listings are byte-wise lexicographic.

pub mod admin;
pub mod auth;
pub mod body;
pub mod counters;
pub mod emulator;
pub mod error;
pub mod faults;
pub mod ops;
pub mod process;
pub mod reply;
pub mod request;
pub mod routing;
pub mod server;
pub mod state;
pub mod store;
pub mod time;
pub mod xml;

pub use counters::{CounterSnapshot, ObjectCount};
pub use emulator::{Emulator, EmulatorBuilder, ObjectInfo, PutOptions, StartError, test_secret};
pub use error::ApiError;
pub use faults::{FaultEntry, FaultError, FaultKind, FaultPhase, FaultRule, ListingQuirk};
pub use store::model::StorageClass;
