//! Profiles of the Alibaba Cloud CLI's configuration file, as `aliyun configure` writes them
//! (`~/.aliyun/config.json`), so a user who signs in with the CLI needs nothing else.
//!
//! The file holds `{"current": "<name>", "profiles": [{"name", "mode", "access_key_id",
//! "access_key_secret", "sts_token", …}]}`. ferry reads the `AK` and `StsToken` modes. Other
//! modes (`RamRoleArn`, `EcsRamRole`, `OIDC`, …) get an error that names the mode and what to
//! use instead, never a silent fallback to other credentials.
//!
//! The file is found at `ALIBABA_CLOUD_CONFIG_FILE` when set, else `$HOME/.aliyun/config.json`;
//! the profile is the one asked for, else `ALIBABA_CLOUD_PROFILE`, else the file's `current`.

use std::path::PathBuf;

use serde::Deserialize;

use crate::oss::Credentials;

/// Why a CLI profile gave no credentials. Never carries a key or token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProfileError {
    /// The configuration file is not there.
    #[error(
        "the Alibaba Cloud CLI configuration file {0} does not exist: run `aliyun configure`, or set ALIBABA_CLOUD_CONFIG_FILE to the file"
    )]
    NoFile(String),
    /// The file cannot be read or is not the CLI's JSON.
    #[error("the Alibaba Cloud CLI configuration file {path} cannot be read: {problem}")]
    Unreadable {
        /// The file.
        path: String,
        /// What is wrong (never the file's text).
        problem: String,
    },
    /// No profile has that name.
    #[error(
        "the Alibaba Cloud CLI configuration file {path} has no profile {name:?} (it has: {known}): name one of those, or run `aliyun configure --profile {name}`"
    )]
    NoProfile {
        /// The file.
        path: String,
        /// The profile asked for.
        name: String,
        /// The profiles it has.
        known: String,
    },
    /// The profile's mode is not one ferry reads.
    #[error(
        "profile {name:?} in {path} uses mode {mode:?}, which ferry does not read: use a profile of mode AK or StsToken, or keep the keys in a Secrets Manager secret named in the job"
    )]
    Mode {
        /// The file.
        path: String,
        /// The profile.
        name: String,
        /// Its mode.
        mode: String,
    },
    /// The profile lacks a key it needs.
    #[error(
        "profile {name:?} in {path} has no {field}: run `aliyun configure --profile {name}` again"
    )]
    Incomplete {
        /// The file.
        path: String,
        /// The profile.
        name: String,
        /// The missing field.
        field: &'static str,
    },
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    current: String,
    #[serde(default)]
    profiles: Vec<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    name: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    access_key_secret: String,
    #[serde(default)]
    sts_token: String,
}

/// Where the CLI's configuration file is, from the environment `env`; `None` when neither
/// `ALIBABA_CLOUD_CONFIG_FILE` nor `HOME` is set.
pub fn config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    set("ALIBABA_CLOUD_CONFIG_FILE")
        .map(PathBuf::from)
        .or_else(|| set("HOME").map(|home| PathBuf::from(home).join(".aliyun/config.json")))
}

/// The credentials of profile `name` (or of the profile the environment or the file names) in
/// the file at `path`.
pub fn credentials(
    path: &std::path::Path,
    name: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Credentials, ProfileError> {
    let shown = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ProfileError::NoFile(shown));
        }
        Err(e) => {
            return Err(ProfileError::Unreadable {
                path: shown,
                problem: e.to_string(),
            });
        }
    };
    // serde_json's message names a line and column, never the text.
    let file: ConfigFile = serde_json::from_str(&text).map_err(|e| ProfileError::Unreadable {
        path: shown.clone(),
        problem: format!("not the CLI's JSON ({e})"),
    })?;
    let wanted = name
        .map(str::to_owned)
        .or_else(|| env("ALIBABA_CLOUD_PROFILE").filter(|v| !v.is_empty()))
        .unwrap_or_else(|| match file.current.as_str() {
            "" => "default".to_owned(),
            current => current.to_owned(),
        });
    let Some(profile) = file.profiles.iter().find(|p| p.name == wanted) else {
        let known: Vec<&str> = file.profiles.iter().map(|p| p.name.as_str()).collect();
        return Err(ProfileError::NoProfile {
            path: shown,
            name: wanted,
            known: if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            },
        });
    };
    profile_credentials(profile, &shown)
}

fn profile_credentials(profile: &Profile, path: &str) -> Result<Credentials, ProfileError> {
    let token = match profile.mode.as_str() {
        "AK" | "" => None,
        "StsToken" => Some(profile.sts_token.as_str()),
        other => {
            return Err(ProfileError::Mode {
                path: path.to_owned(),
                name: profile.name.clone(),
                mode: other.to_owned(),
            });
        }
    };
    let missing = |field| ProfileError::Incomplete {
        path: path.to_owned(),
        name: profile.name.clone(),
        field,
    };
    if profile.access_key_id.is_empty() {
        return Err(missing("access_key_id"));
    }
    if profile.access_key_secret.is_empty() {
        return Err(missing("access_key_secret"));
    }
    let credentials = Credentials::new(&profile.access_key_id, profile.access_key_secret.as_str());
    match token {
        None => Ok(credentials),
        Some("") => Err(missing("sts_token")),
        Some(token) => Ok(credentials.with_security_token(token)),
    }
}
