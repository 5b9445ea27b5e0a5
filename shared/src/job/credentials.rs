//! Where a job's credentials live. A job file names them — a Secrets Manager secret or
//! environment variables — and never holds them (architecture invariant 7), because job files
//! are stored in the state store (`jobs/<job>/job.json`), shown in reports and passed around.
//!
//! References are resolved at run time: [`S3CredentialsRef::resolve`] and
//! [`OssCredentialsRef::resolve`] read the named environment variables, or parse the secret's
//! text once the caller has fetched it from Secrets Manager (that fetch needs the AWS client of
//! the process, which this module does not own).

use schemars::JsonSchema;
use serde::Deserialize;

use super::aliyun_cli::{self, ProfileError};
use super::error::Issue;
use crate::oss::Credentials;
use crate::secret::Secret;
use crate::source::s3::S3Credentials;

/// How requests to the S3 source are signed. Secrets are never written in the job file, only
/// where to find them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum S3CredentialsRef {
    /// The AWS SDK's default chain: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, the shared
    /// profile, web identity, container and instance roles — in Lambda, the function's role.
    #[default]
    DefaultChain,
    /// An AWS Secrets Manager secret, by ARN or name, whose value is a JSON object
    /// `{"access_key_id": "…", "secret_access_key": "…", "session_token": "…"}` (the token only
    /// for temporary credentials).
    Secret(String),
    /// The names of environment variables that hold the key pair.
    Env(S3EnvVars),
}

/// Environment variable *names* (not values) for S3 credentials.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct S3EnvVars {
    /// Variable holding the access key id, e.g. `SRC_AWS_ACCESS_KEY_ID`.
    pub access_key_id_var: String,
    /// Variable holding the secret access key, e.g. `SRC_AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key_var: String,
    /// Variable holding a session token, for temporary credentials.
    #[serde(default)]
    pub session_token_var: Option<String>,
}

/// How requests to an OSS bucket are signed. Secrets are never written in the job file, only
/// where to find them. Default: the chain the Alibaba Cloud tools follow.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OssCredentialsRef {
    /// The first of: `OSS_ACCESS_KEY_ID` / `OSS_ACCESS_KEY_SECRET` (/ `OSS_SESSION_TOKEN`), as
    /// the OSS SDKs and ossutil read them; `ALIBABA_CLOUD_ACCESS_KEY_ID` /
    /// `ALIBABA_CLOUD_ACCESS_KEY_SECRET` (/ `ALIBABA_CLOUD_SECURITY_TOKEN`), as the Alibaba
    /// Cloud SDKs and CLI read them; the Alibaba Cloud CLI's profile (`ALIBABA_CLOUD_PROFILE`,
    /// else the file's current one) in `~/.aliyun/config.json` (or `ALIBABA_CLOUD_CONFIG_FILE`),
    /// modes `AK` and `StsToken`.
    #[default]
    DefaultChain,
    /// A named profile of the Alibaba Cloud CLI's configuration file (`aliyun configure
    /// --profile NAME`), modes `AK` and `StsToken`.
    Profile(String),
    /// An AWS Secrets Manager secret, by ARN or name, whose value is a JSON object
    /// `{"access_key_id": "…", "access_key_secret": "…", "security_token": "…"}` (the token
    /// only for STS credentials). The usual choice in distributed mode.
    Secret(String),
    /// The names of environment variables that hold the AccessKey pair.
    Env(OssEnvVars),
}

/// Environment variable *names* (not values) for OSS credentials.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OssEnvVars {
    /// Variable holding the AccessKey id.
    #[serde(default = "default_oss_id_var")]
    pub access_key_id_var: String,
    /// Variable holding the AccessKey secret.
    #[serde(default = "default_oss_secret_var")]
    pub access_key_secret_var: String,
    /// Variable holding an STS security token; read only when set and not empty.
    #[serde(default = "default_oss_token_var")]
    pub security_token_var: String,
}

impl Default for OssEnvVars {
    fn default() -> Self {
        OssEnvVars {
            access_key_id_var: default_oss_id_var(),
            access_key_secret_var: default_oss_secret_var(),
            security_token_var: default_oss_token_var(),
        }
    }
}

fn default_oss_id_var() -> String {
    "OSS_ACCESS_KEY_ID".to_owned()
}

fn default_oss_secret_var() -> String {
    "OSS_ACCESS_KEY_SECRET".to_owned()
}

fn default_oss_token_var() -> String {
    "OSS_SESSION_TOKEN".to_owned()
}

/// Credentials named by a job could not be loaded. Never carries a secret value.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// An environment variable the job's credentials name is not set; holds its name.
    #[error(
        "environment variable {0} (named in the job's credentials) is not set: export it, or name another variable in the job"
    )]
    MissingVar(String),
    /// The credentials are in a Secrets Manager secret that was not fetched; holds its id.
    #[error(
        "the job's credentials are in Secrets Manager secret {0:?}: fetch its value and pass it to `resolve`"
    )]
    SecretNotFetched(String),
    /// A secret's value is not a JSON object with the fields the credentials need.
    #[error(
        "Secrets Manager secret {id:?} is not a JSON object with string fields {fields}: store the secret as such an object"
    )]
    SecretShape {
        /// The secret's id.
        id: String,
        /// The string fields it must have.
        fields: &'static str,
    },
    /// An Alibaba Cloud CLI profile gave no credentials.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The default chain found nothing; holds where the CLI file was looked for.
    #[error(
        "no OSS credentials found: neither OSS_ACCESS_KEY_ID / OSS_ACCESS_KEY_SECRET nor ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET is set, and there is no Alibaba Cloud CLI configuration ({0}): export one of the pairs, run `aliyun configure`, or name a Secrets Manager secret in the job's credentials"
    )]
    NoneFound(String),
}

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl S3CredentialsRef {
    /// The engine's credentials for this reference. `secret_text` is the fetched value of the
    /// Secrets Manager secret, when the reference names one.
    pub fn resolve(&self, secret_text: Option<&str>) -> Result<S3Credentials, CredentialsError> {
        self.resolve_with(secret_text, &process_env)
    }

    /// [`resolve`](Self::resolve) with a given environment (tests, sandboxed callers).
    pub fn resolve_with(
        &self,
        secret_text: Option<&str>,
        env: Env<'_>,
    ) -> Result<S3Credentials, CredentialsError> {
        match self {
            S3CredentialsRef::DefaultChain => Ok(S3Credentials::DefaultChain),
            S3CredentialsRef::Env(vars) => Ok(S3Credentials::Static {
                access_key_id: required_var(env, &vars.access_key_id_var)?,
                secret_access_key: Secret::new(required_var(env, &vars.secret_access_key_var)?),
                session_token: match &vars.session_token_var {
                    Some(name) => Some(Secret::new(required_var(env, name)?)),
                    None => None,
                },
            }),
            S3CredentialsRef::Secret(id) => {
                const FIELDS: [&str; 3] = ["access_key_id", "secret_access_key", "session_token"];
                let (key, secret, token) = secret_fields(id, secret_text, FIELDS)?;
                Ok(S3Credentials::Static {
                    access_key_id: key.expose().to_owned(),
                    secret_access_key: secret,
                    session_token: token,
                })
            }
        }
    }

    /// The Secrets Manager secret to fetch before resolving, if any.
    pub fn secret_id(&self) -> Option<&str> {
        match self {
            S3CredentialsRef::Secret(id) => Some(id),
            _ => None,
        }
    }

    pub(super) fn check(&self, path: &str, issues: &mut Vec<Issue>) {
        match self {
            S3CredentialsRef::DefaultChain => {}
            S3CredentialsRef::Secret(id) => check_secret_id(&format!("{path}.secret"), id, issues),
            S3CredentialsRef::Env(vars) => {
                let base = format!("{path}.env");
                check_var(&base, "access_key_id_var", &vars.access_key_id_var, issues);
                check_var(
                    &base,
                    "secret_access_key_var",
                    &vars.secret_access_key_var,
                    issues,
                );
                if let Some(token) = &vars.session_token_var {
                    check_var(&base, "session_token_var", token, issues);
                }
            }
        }
    }
}

impl OssCredentialsRef {
    /// The OSS credentials for this reference. `secret_text` is the fetched value of the
    /// Secrets Manager secret, when the reference names one.
    pub fn resolve(&self, secret_text: Option<&str>) -> Result<Credentials, CredentialsError> {
        self.resolve_with(secret_text, &process_env)
    }

    /// [`resolve`](Self::resolve) with a given environment (tests, sandboxed callers).
    pub fn resolve_with(
        &self,
        secret_text: Option<&str>,
        env: Env<'_>,
    ) -> Result<Credentials, CredentialsError> {
        match self {
            OssCredentialsRef::DefaultChain => default_chain(env),
            OssCredentialsRef::Profile(name) => {
                let path = aliyun_cli::config_path(env).ok_or_else(|| {
                    CredentialsError::NoneFound(
                        "neither ALIBABA_CLOUD_CONFIG_FILE nor HOME is set".into(),
                    )
                })?;
                Ok(aliyun_cli::credentials(&path, Some(name), env)?)
            }
            OssCredentialsRef::Env(vars) => {
                let mut credentials = Credentials::new(
                    required_var(env, &vars.access_key_id_var)?,
                    required_var(env, &vars.access_key_secret_var)?,
                );
                if let Some(token) = env(&vars.security_token_var).filter(|t| !t.is_empty()) {
                    credentials = credentials.with_security_token(token);
                }
                Ok(credentials)
            }
            OssCredentialsRef::Secret(id) => {
                const FIELDS: [&str; 3] = ["access_key_id", "access_key_secret", "security_token"];
                let (key, secret, token) = secret_fields(id, secret_text, FIELDS)?;
                Ok(Credentials {
                    access_key_id: key.expose().to_owned(),
                    access_key_secret: secret,
                    security_token: token,
                })
            }
        }
    }

    /// The Secrets Manager secret to fetch before resolving, if any.
    pub fn secret_id(&self) -> Option<&str> {
        match self {
            OssCredentialsRef::Secret(id) => Some(id),
            OssCredentialsRef::Env(_)
            | OssCredentialsRef::DefaultChain
            | OssCredentialsRef::Profile(_) => None,
        }
    }

    pub(super) fn check(&self, path: &str, issues: &mut Vec<Issue>) {
        match self {
            OssCredentialsRef::Secret(id) => check_secret_id(&format!("{path}.secret"), id, issues),
            OssCredentialsRef::DefaultChain => {}
            OssCredentialsRef::Profile(name) => {
                if name.is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
                    issues.push(Issue::text(
                        format!("{path}.profile"),
                        name,
                        "is not a profile name",
                        "write the name given to `aliyun configure --profile NAME`, or use \"default_chain\"",
                    ));
                }
            }
            OssCredentialsRef::Env(vars) => {
                let base = format!("{path}.env");
                check_var(&base, "access_key_id_var", &vars.access_key_id_var, issues);
                check_var(
                    &base,
                    "access_key_secret_var",
                    &vars.access_key_secret_var,
                    issues,
                );
                check_var(
                    &base,
                    "security_token_var",
                    &vars.security_token_var,
                    issues,
                );
            }
        }
    }
}

/// The variable pairs the default chain reads, in order: the OSS SDKs' and ossutil's, then the
/// Alibaba Cloud SDKs' and CLI's.
const OSS_VARIABLES: [[&str; 3]; 2] = [
    [
        "OSS_ACCESS_KEY_ID",
        "OSS_ACCESS_KEY_SECRET",
        "OSS_SESSION_TOKEN",
    ],
    [
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "ALIBABA_CLOUD_SECURITY_TOKEN",
    ],
];

/// [`OssCredentialsRef::DefaultChain`]. A pair that is half set is an error naming the missing
/// half, not a reason to fall through to other credentials.
fn default_chain(env: Env<'_>) -> Result<Credentials, CredentialsError> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    for [id, secret, token] in OSS_VARIABLES {
        if let Some(id) = set(id) {
            let mut credentials = Credentials::new(id, required_var(env, secret)?);
            if let Some(token) = set(token) {
                credentials = credentials.with_security_token(token);
            }
            return Ok(credentials);
        }
    }
    let Some(path) = aliyun_cli::config_path(env) else {
        return Err(CredentialsError::NoneFound(
            "neither ALIBABA_CLOUD_CONFIG_FILE nor HOME is set".into(),
        ));
    };
    match aliyun_cli::credentials(&path, None, env) {
        Err(ProfileError::NoFile(path)) => {
            Err(CredentialsError::NoneFound(format!("no file {path}")))
        }
        other => Ok(other?),
    }
}

fn required_var(env: Env<'_>, name: &str) -> Result<String, CredentialsError> {
    env(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| CredentialsError::MissingVar(name.to_owned()))
}

/// The key id, the secret and the optional token from a secret's JSON text. The error names the
/// fields, never the text: a malformed secret is still a secret.
fn secret_fields(
    id: &str,
    text: Option<&str>,
    names: [&'static str; 3],
) -> Result<(Secret, Secret, Option<Secret>), CredentialsError> {
    let text = text.ok_or_else(|| CredentialsError::SecretNotFetched(id.to_owned()))?;
    let shape = || CredentialsError::SecretShape {
        id: id.to_owned(),
        fields: if names[1] == "secret_access_key" {
            "access_key_id, secret_access_key (and optionally session_token)"
        } else {
            "access_key_id, access_key_secret (and optionally security_token)"
        },
    };
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|_| shape())?;
    let field = |name: &str| match object.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(Some(Secret::new(s.clone()))),
        Some(_) => Err(shape()),
    };
    let [key, secret, token] = names.map(field);
    let (key, secret) = (key?.ok_or_else(shape)?, secret?.ok_or_else(shape)?);
    Ok((key, secret, token?))
}

fn check_secret_id(path: &str, id: &str, issues: &mut Vec<Issue>) {
    let is_arn =
        id.starts_with("arn:") && id.contains(":secretsmanager:") && id.contains(":secret:");
    let is_name = !id.is_empty()
        && id.len() <= 512
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
    if is_arn || (is_name && !id.starts_with("arn:")) {
        return;
    }
    // Not echoed: something that is neither an ARN nor a name may be a pasted secret value.
    issues.push(Issue::new(
        path,
        Some("<hidden>".to_owned()),
        "is neither a Secrets Manager secret ARN nor a secret name",
        "write the secret's ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME) or its name (letters, digits and /_+=.@-); never the secret's value",
    ));
}

fn check_var(base: &str, field: &str, name: &str, issues: &mut Vec<Issue>) {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 256;
    if !valid {
        issues.push(Issue::new(
            format!("{base}.{field}"),
            Some("<hidden>".to_owned()),
            "is not an environment variable name",
            "write the variable's name (letters, digits and `_`, e.g. SRC_AWS_SECRET_ACCESS_KEY), never its value",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn oss_env_reference_reads_the_named_variables() {
        let reference = OssCredentialsRef::Env(OssEnvVars {
            access_key_id_var: "DST_ID".into(),
            access_key_secret_var: "DST_SECRET".into(),
            security_token_var: "DST_TOKEN".into(),
        });
        let lookup = env(&[("DST_ID", "LTAIid"), ("DST_SECRET", "s3cr3t")]);
        let creds = reference.resolve_with(None, &lookup).unwrap();
        assert_eq!(creds.access_key_id, "LTAIid");
        assert_eq!(creds.access_key_secret.expose(), "s3cr3t");
        assert!(creds.security_token.is_none());
        let err = reference.resolve_with(None, &env(&[])).unwrap_err();
        assert!(err.to_string().contains("DST_ID"), "{err}");
    }

    #[test]
    fn secret_text_is_parsed_and_never_echoed() {
        let reference = OssCredentialsRef::Secret("ferry/dest".into());
        let creds = reference
            .resolve_with(
                Some(r#"{"access_key_id":"LTAI1","access_key_secret":"topsecret"}"#),
                &env(&[]),
            )
            .unwrap();
        assert_eq!(creds.access_key_secret.expose(), "topsecret");
        let err = reference
            .resolve_with(
                Some(r#"{"access_key_id":"LTAI1","oops":"topsecret"}"#),
                &env(&[]),
            )
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("topsecret") && err.contains("access_key_secret"),
            "{err}"
        );
        let err = reference.resolve_with(None, &env(&[])).unwrap_err();
        assert!(matches!(err, CredentialsError::SecretNotFetched(_)));
    }

    #[test]
    fn s3_references_map_to_engine_credentials() {
        assert!(matches!(
            S3CredentialsRef::DefaultChain.resolve_with(None, &env(&[])),
            Ok(S3Credentials::DefaultChain)
        ));
        let reference =
            S3CredentialsRef::Secret("arn:aws:secretsmanager:us-east-1:1:secret:x".into());
        let creds = reference
            .resolve_with(
                Some(r#"{"access_key_id":"AKIA","secret_access_key":"sk","session_token":"tok"}"#),
                &env(&[]),
            )
            .unwrap();
        let S3Credentials::Static { session_token, .. } = creds else {
            panic!("static expected");
        };
        assert_eq!(session_token.unwrap().expose(), "tok");
    }

    /// The default chain: OSS's variables, then Alibaba Cloud's, then the CLI's profile; a
    /// half-set pair is an error, and a STS profile carries its token.
    #[test]
    fn the_default_chain_reads_as_the_alibaba_tools_do() {
        let chain = OssCredentialsRef::DefaultChain;
        let both = env(&[
            ("OSS_ACCESS_KEY_ID", "oss-id"),
            ("OSS_ACCESS_KEY_SECRET", "oss-secret"),
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ali-id"),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ali-secret"),
        ]);
        assert_eq!(
            chain.resolve_with(None, &both).unwrap().access_key_id,
            "oss-id"
        );
        let ali = env(&[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ali-id"),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ali-secret"),
            ("ALIBABA_CLOUD_SECURITY_TOKEN", "ali-token"),
            ("HOME", "/nonexistent-home"),
        ]);
        let creds = chain.resolve_with(None, &ali).unwrap();
        assert_eq!(creds.access_key_id, "ali-id");
        assert_eq!(creds.security_token.unwrap().expose(), "ali-token");
        let half = env(&[
            ("OSS_ACCESS_KEY_ID", "oss-id"),
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "a"),
        ]);
        let err = chain.resolve_with(None, &half).unwrap_err().to_string();
        assert!(err.contains("OSS_ACCESS_KEY_SECRET"), "{err}");

        let dir = std::env::temp_dir().join(format!("ferry-aliyun-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(".aliyun")).unwrap();
        let file = dir.join(".aliyun/config.json");
        std::fs::write(
            &file,
            r#"{"current":"sts","profiles":[
                {"name":"sts","mode":"StsToken","access_key_id":"STS.id","access_key_secret":"sts-secret","sts_token":"tok"},
                {"name":"empty","mode":"StsToken","access_key_id":"STS.id","access_key_secret":"sts-secret"},
                {"name":"ecs","mode":"EcsRamRole","ram_role_name":"r"}]}"#,
        )
        .unwrap();
        let home: &'static str = Box::leak(dir.to_str().unwrap().to_owned().into_boxed_str());
        let from_home = move |name: &str| (name == "HOME").then(|| home.to_owned());
        let creds = chain.resolve_with(None, &from_home).unwrap();
        assert_eq!(creds.access_key_id, "STS.id");
        assert_eq!(creds.security_token.unwrap().expose(), "tok");
        let named =
            |name: &str| OssCredentialsRef::Profile(name.into()).resolve_with(None, &from_home);
        let err = named("empty").unwrap_err().to_string();
        assert!(
            err.contains("sts_token") && !err.contains("sts-secret"),
            "{err}"
        );
        let err = named("ecs").unwrap_err().to_string();
        assert!(
            err.contains("\"EcsRamRole\"") && err.contains("mode AK or StsToken"),
            "{err}"
        );
        let err = named("nobody").unwrap_err().to_string();
        assert!(err.contains("sts, empty, ecs"), "{err}");
        std::fs::write(&file, "{ not json, sts-secret").unwrap();
        let err = named("sts").unwrap_err().to_string();
        assert!(
            err.contains("not the CLI's JSON") && !err.contains("sts-secret"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();

        let nothing = env(&[("HOME", "/nonexistent-home")]);
        let err = chain.resolve_with(None, &nothing).unwrap_err().to_string();
        assert!(
            err.contains("/nonexistent-home/.aliyun/config.json")
                && err.contains("aliyun configure"),
            "{err}"
        );
    }
}
