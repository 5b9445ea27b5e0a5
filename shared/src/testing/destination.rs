//! The `Destination` conformance suite: what the copier, the verifier and the clean-up rely on
//! from the destination.
//!
//! Keys go behind the prefix; a PUT stores the bytes whose CRC-64 it reports, and a HEAD says
//! the same size and CRC-64; a multipart upload lists the parts it holds and completes into the
//! concatenation, with the combined CRC-64; an aborted upload is gone from the upload listing
//! and its parts with it; a copy inside the service carries the bytes; a listing sees what was
//! written; a deleted or never-written key is not found.
//!
//! The caller hands the suite a destination on an empty bucket. ferry's tests run it against
//! the OSS emulator, signed with V4 and with V1, with and without a key prefix.

use std::time::Duration;

use futures_util::TryStreamExt;

use super::data::seeded;
use crate::crc64;
use crate::oss::types::{CopySource, ObjectOptions};
use crate::oss::{
    CompleteOptions, CompleteParts, CompletedPart, CopyObjectOptions, ListObjectsOptions,
    ListUploadsOptions, RequestBody,
};
use crate::transfer::Destination;

/// Every conformance run must finish within this.
const SUITE_LIMIT: Duration = Duration::from_secs(120);

/// OSS's smallest part but the last.
const PART: usize = 100 * 1024;

/// Runs every case against `dest`, whose bucket holds nothing under its prefix. Panics (with
/// the case's message) when the destination breaks a rule; bounded in time.
pub async fn conformance(dest: &Destination) {
    let suite = async {
        keys_go_behind_the_prefix(dest);
        a_put_is_described_by_its_head(dest).await;
        multipart_uploads_complete_into_their_parts(dest).await;
        aborted_uploads_are_gone(dest).await;
        copies_inside_the_service_carry_the_bytes(dest).await;
        listings_see_what_was_written(dest).await;
        deleted_and_missing_keys_are_not_found(dest).await;
    };
    tokio::time::timeout(SUITE_LIMIT, suite)
        .await
        .expect("the destination conformance suite finished in time");
}

fn keys_go_behind_the_prefix(dest: &Destination) {
    let key = dest.key_for("x/y");
    assert_eq!(
        key,
        format!("{}x/y", dest.prefix()),
        "key_for prepends the prefix"
    );
}

async fn a_put_is_described_by_its_head(dest: &Destination) {
    let key = dest.key_for("put/one");
    let body = seeded(1, 5_000);
    let put = dest
        .put_object(
            &key,
            RequestBody::from(body.clone()),
            &ObjectOptions::default(),
        )
        .await
        .expect("put");
    assert_eq!(put.crc64, crc64::checksum(&body), "the PUT's CRC-64");
    let head = dest.head_object(&key).await.expect("head");
    assert_eq!(head.content_length, body.len() as u64, "HEAD size");
    assert_eq!(head.crc64, Some(put.crc64), "HEAD CRC-64");
}

async fn multipart_uploads_complete_into_their_parts(dest: &Destination) {
    let key = dest.key_for("multi/whole");
    let (first, second) = (seeded(2, PART), seeded(3, 1_234));
    let options = ObjectOptions::default();
    let id = dest
        .initiate_multipart_upload(&key, &options)
        .await
        .expect("initiate");
    let mut done = Vec::new();
    for (number, part) in [(1, &first), (2, &second)] {
        let out = dest
            .upload_part(&key, &id, number, RequestBody::from(part.clone()))
            .await
            .expect("upload part");
        assert_eq!(out.crc64, crc64::checksum(part), "part {number}'s CRC-64");
        done.push(CompletedPart {
            part_number: number,
            etag: out.etag,
        });
    }
    let held = dest.list_all_parts(&key, &id).await.expect("list parts");
    let sizes: Vec<(u32, u64)> = held.iter().map(|p| (p.part_number, p.size)).collect();
    assert_eq!(
        sizes,
        [(1, first.len() as u64), (2, second.len() as u64)],
        "the upload lists the parts it holds"
    );
    let complete = dest
        .complete_multipart_upload(
            &key,
            &id,
            &CompleteParts::List(done),
            &CompleteOptions::default(),
        )
        .await
        .expect("complete");
    let expected = crc64::combine(
        crc64::checksum(&first),
        crc64::checksum(&second),
        second.len() as u64,
    );
    assert_eq!(
        complete.crc64,
        Some(expected),
        "the completed object's CRC-64"
    );
    let head = dest.head_object(&key).await.expect("head");
    assert_eq!(head.content_length, (first.len() + second.len()) as u64);
    assert_eq!(head.crc64, Some(expected), "HEAD of the completed object");
}

async fn aborted_uploads_are_gone(dest: &Destination) {
    let key = dest.key_for("multi/aborted");
    let id = dest
        .initiate_multipart_upload(&key, &ObjectOptions::default())
        .await
        .expect("initiate");
    dest.upload_part(&key, &id, 1, RequestBody::from(seeded(4, 10)))
        .await
        .expect("upload part");
    let listed = open_uploads(dest).await;
    assert!(
        listed.contains(&(key.clone(), id.clone())),
        "the open upload is listed"
    );
    dest.abort_multipart_upload(&key, &id).await.expect("abort");
    assert!(
        !open_uploads(dest)
            .await
            .contains(&(key.clone(), id.clone())),
        "an aborted upload is not listed"
    );
    let err = dest.list_all_parts(&key, &id).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some("NoSuchUpload"),
        "parts of an aborted upload: {err}"
    );
}

async fn open_uploads(dest: &Destination) -> Vec<(String, String)> {
    let options = ListUploadsOptions {
        prefix: Some(dest.prefix().to_owned()).filter(|p| !p.is_empty()),
        max_uploads: Some(2),
        ..Default::default()
    };
    let pages: Vec<_> = dest
        .list_multipart_uploads_pages(options)
        .try_collect()
        .await
        .expect("list uploads");
    pages
        .into_iter()
        .flat_map(|p| p.uploads)
        .map(|u| (u.key, u.upload_id))
        .collect()
}

async fn copies_inside_the_service_carry_the_bytes(dest: &Destination) {
    let (from, to) = (dest.key_for("copy/from"), dest.key_for("copy/to"));
    let body = seeded(5, 3_000);
    dest.put_object(
        &from,
        RequestBody::from(body.clone()),
        &ObjectOptions::default(),
    )
    .await
    .expect("put");
    let source = CopySource {
        bucket: dest.bucket().to_owned(),
        key: from,
        version_id: None,
    };
    dest.copy_object(&to, &source, &CopyObjectOptions::default())
        .await
        .expect("copy");
    let head = dest.head_object(&to).await.expect("head of the copy");
    assert_eq!(head.content_length, body.len() as u64, "the copy's size");
    assert_eq!(
        head.crc64,
        Some(crc64::checksum(&body)),
        "the copy's CRC-64"
    );
}

async fn listings_see_what_was_written(dest: &Destination) {
    let options = ListObjectsOptions {
        prefix: Some(dest.key_for("")),
        max_keys: Some(1000),
        ..Default::default()
    };
    let page = dest.list_objects_v2(&options).await.expect("list");
    let keys: Vec<String> = page.objects.into_iter().map(|o| o.key).collect();
    let want: Vec<String> = ["copy/from", "copy/to", "multi/whole", "put/one"]
        .iter()
        .map(|k| dest.key_for(k))
        .collect();
    assert_eq!(keys, want, "the listing holds every written key, in order");
}

async fn deleted_and_missing_keys_are_not_found(dest: &Destination) {
    let key = dest.key_for("put/one");
    dest.delete_object(&key).await.expect("delete");
    let err = dest.head_object(&key).await.unwrap_err();
    assert!(err.is_not_found(), "HEAD after delete: {err}");
    dest.delete_object(&key)
        .await
        .expect("deleting again succeeds");
    let err = dest.head_object(&dest.key_for("never")).await.unwrap_err();
    assert!(err.is_not_found(), "HEAD of a key never written: {err}");
}
