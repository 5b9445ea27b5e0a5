//! Disk persistence (`--data-dir`): data files plus JSON sidecars, so a restarted emulator
//! serves what it stored before.
//!
//! Layout under the data directory:
//! ```text
//! blobs/<id>                              object and part data (one file per upload or part)
//! buckets/<bucket>/bucket.json            BucketInfo (incl. the website document)
//! buckets/<bucket>/objects/<sha256(key)>.json   ObjectMeta + the blob files it consists of
//! buckets/<bucket>/uploads/<upload-id>.json     UploadMeta + its parts
//! ```
//! Sidecars are written to a temporary name and renamed, so a crash leaves the old or the new
//! version. Data files no sidecar mentions are removed at start-up.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::blob::{Blob, BlobFile, BlobRef, Segment};
use super::model::{BucketInfo, ObjectMeta, PartMeta, UploadMeta};
use super::{Bucket, Object, Part, Upload};

#[derive(Serialize, Deserialize)]
struct ObjectRecord {
    meta: ObjectMeta,
    blobs: Vec<BlobRef>,
}

#[derive(Serialize, Deserialize)]
struct PartRecord {
    meta: PartMeta,
    blobs: Vec<BlobRef>,
}

#[derive(Serialize, Deserialize)]
struct UploadRecord {
    meta: UploadMeta,
    parts: Vec<PartRecord>,
}

/// The data directory.
#[derive(Debug)]
pub struct Disk {
    root: PathBuf,
}

impl Disk {
    /// Opens (creating if needed) a data directory and loads every bucket from it.
    pub fn open(root: &Path) -> io::Result<(Disk, BTreeMap<String, Bucket>)> {
        std::fs::create_dir_all(root.join("blobs"))?;
        std::fs::create_dir_all(root.join("buckets"))?;
        let disk = Disk {
            root: root.to_owned(),
        };
        let mut files: HashMap<String, Arc<BlobFile>> = HashMap::new();
        let mut buckets = BTreeMap::new();
        for entry in std::fs::read_dir(root.join("buckets"))? {
            let dir = entry?.path();
            if !dir.join("bucket.json").exists() {
                continue;
            }
            let bucket = disk.load_bucket(&dir, &mut files)?;
            buckets.insert(bucket.info.name.clone(), bucket);
        }
        disk.remove_orphans(&files.keys().cloned().collect())?;
        Ok((disk, buckets))
    }

    fn load_bucket(
        &self,
        dir: &Path,
        files: &mut HashMap<String, Arc<BlobFile>>,
    ) -> io::Result<Bucket> {
        let info: BucketInfo = read_json(&dir.join("bucket.json"))?;
        let mut bucket = Bucket::new(info);
        for path in json_files(&dir.join("objects"))? {
            let rec: ObjectRecord = read_json(&path)?;
            let blob = self.blob_from_refs(&rec.blobs, files);
            bucket.objects.insert(
                rec.meta.key.clone(),
                Object {
                    meta: rec.meta,
                    blob,
                },
            );
        }
        for path in json_files(&dir.join("uploads"))? {
            let rec: UploadRecord = read_json(&path)?;
            let mut upload = Upload {
                meta: rec.meta,
                parts: BTreeMap::new(),
            };
            for p in rec.parts {
                let blob = self.blob_from_refs(&p.blobs, files);
                upload
                    .parts
                    .insert(p.meta.number, Part { meta: p.meta, blob });
            }
            bucket.uploads.insert(upload.meta.upload_id.clone(), upload);
        }
        Ok(bucket)
    }

    fn blob_from_refs(&self, refs: &[BlobRef], files: &mut HashMap<String, Arc<BlobFile>>) -> Blob {
        let segments = refs
            .iter()
            .map(|r| {
                let file = files
                    .entry(r.id.clone())
                    .or_insert_with(|| BlobFile::new(r.id.clone(), self.blob_path(&r.id), true))
                    .clone();
                Segment::File { file, len: r.len }
            })
            .collect();
        Blob::from_segments(segments)
    }

    fn remove_orphans(&self, known: &HashSet<String>) -> io::Result<()> {
        for entry in std::fs::read_dir(self.root.join("blobs"))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !known.contains(&name) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    /// A fresh, uncommitted data file.
    pub fn new_blob_file(&self) -> Arc<BlobFile> {
        let id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let path = self.blob_path(&id);
        BlobFile::new(id, path, false)
    }

    fn blob_path(&self, id: &str) -> PathBuf {
        self.root.join("blobs").join(id)
    }

    fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.root.join("buckets").join(bucket)
    }

    pub fn save_bucket(&self, info: &BucketInfo) -> io::Result<()> {
        let dir = self.bucket_dir(&info.name);
        std::fs::create_dir_all(dir.join("objects"))?;
        std::fs::create_dir_all(dir.join("uploads"))?;
        write_json(&dir.join("bucket.json"), info)
    }

    pub fn remove_bucket(&self, name: &str) -> io::Result<()> {
        match std::fs::remove_dir_all(self.bucket_dir(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        let name = hex::encode(Sha256::digest(key.as_bytes()));
        self.bucket_dir(bucket)
            .join("objects")
            .join(format!("{name}.json"))
    }

    pub fn save_object(&self, bucket: &str, obj: &Object) -> io::Result<()> {
        let rec = ObjectRecord {
            meta: obj.meta.clone(),
            blobs: obj.blob.refs(),
        };
        write_json(&self.object_path(bucket, &obj.meta.key), &rec)
    }

    pub fn remove_object(&self, bucket: &str, key: &str) -> io::Result<()> {
        remove_if_present(&self.object_path(bucket, key))
    }

    fn upload_path(&self, bucket: &str, upload_id: &str) -> PathBuf {
        self.bucket_dir(bucket)
            .join("uploads")
            .join(format!("{upload_id}.json"))
    }

    pub fn save_upload(&self, bucket: &str, upload: &Upload) -> io::Result<()> {
        let parts = upload
            .parts
            .values()
            .map(|p| PartRecord {
                meta: p.meta.clone(),
                blobs: p.blob.refs(),
            })
            .collect();
        let rec = UploadRecord {
            meta: upload.meta.clone(),
            parts,
        };
        write_json(&self.upload_path(bucket, &upload.meta.upload_id), &rec)
    }

    pub fn remove_upload(&self, bucket: &str, upload_id: &str) -> io::Result<()> {
        remove_if_present(&self.upload_path(bucket, upload_id))
    }
}

fn json_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(out)
}

fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<T> {
    let text = std::fs::read(path)?;
    serde_json::from_slice(&text).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let text = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    let tmp = path.with_extension(format!("tmp-{:08x}", fastrand::u32(..)));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
